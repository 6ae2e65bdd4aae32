"""The `.apebatch` container: written STORED with its index last, read strictly (each
negative test changes one thing and is named for the rule)."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apesim.errors import PackageError, WorkspaceError
from apesim.package import format as fmt
from apesim.package.batch import BatchWriter, batch_file, open_batch
from apesim.package.signature import SigningKey, key_id

CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


def write(packages: dict[str, bytes]) -> bytes:
    sink = io.BytesIO()
    writer = BatchWriter(sink, CREATED)
    for i, (name, data) in enumerate(packages.items()):
        writer.add(name, f"sim-{i}", data)
    writer.finish()
    return sink.getvalue()


def forge(entries: dict[str, bytes], *, method: int = zipfile.ZIP_STORED) -> bytes:
    """A ZIP of exactly these entries (the negative tests' batches)."""
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w") as zf:
        for name, data in entries.items():
            zf.writestr(name, data, compress_type=method)
    return sink.getvalue()


def index(members: list[dict[str, Any]], **changes: Any) -> bytes:
    raw = {
        "format": fmt.BATCH_FORMAT_NAME,
        "batch_version": "1.0",
        "ape_version": "0.1.0",
        "created_date": "2026-03-04T05:06:07Z",
        "created_by": "tester",
        "packages": members,
        **changes,
    }
    return json.dumps(raw).encode()


def listed(name: str, data: bytes, sim_id: str = "sim-0") -> dict[str, Any]:
    return {
        "name": name,
        "sim_id": sim_id,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


def refused(data: bytes) -> PackageError:
    with pytest.raises(PackageError) as caught:
        batch = open_batch(memoryview(data), "b.apebatch")
        for member in batch.index.members:
            batch.package(member)
    return caught.value


PKG = "packages/APE_simulation_a_20260304.zip"


def test_round_trip_gives_every_package_byte_for_byte(valid_package: bytes) -> None:
    other = valid_package + b""  # the same bytes under a second name
    batch = open_batch(memoryview(write({"a.zip": valid_package, "b.zip": other})), "b")
    assert [m.name for m in batch.index.members] == ["packages/a.zip", "packages/b.zip"]
    assert [batch.package(m) for m in batch.index.members] == [valid_package, other]
    assert batch.index.members[0].sha256 == hashlib.sha256(valid_package).hexdigest()


def test_every_entry_is_stored_and_the_index_comes_last(valid_package: bytes) -> None:
    with zipfile.ZipFile(io.BytesIO(write({"a.zip": valid_package}))) as zf:
        infos = zf.infolist()
    assert [i.filename for i in infos] == ["packages/a.zip", "index.json"]
    assert {i.compress_type for i in infos} == {zipfile.ZIP_STORED}


def test_the_same_packages_and_date_give_the_same_batch(valid_package: bytes) -> None:
    assert write({"a.zip": valid_package}) == write({"a.zip": valid_package})


def test_refuses_a_malformed_signature_entry(valid_package: bytes) -> None:
    data = forge(
        {
            PKG: valid_package,
            f"signatures/{'0' * 64}.dsse.json": b"{}",
            "index.json": index([listed(PKG, valid_package)]),
        }
    )
    assert refused(data).code == "signature.malformed"


def test_refuses_a_package_whose_digest_is_not_the_indexs(valid_package: bytes) -> None:
    entry = listed(PKG, valid_package) | {"sha256": "0" * 64}
    data = forge({PKG: valid_package, "index.json": index([entry])})
    assert refused(data).code == "batch.checksum"


def test_refuses_a_package_whose_size_is_not_the_indexs(valid_package: bytes) -> None:
    entry = listed(PKG, valid_package) | {"size": len(valid_package) + 1}
    data = forge({PKG: valid_package, "index.json": index([entry])})
    assert refused(data).code == "batch.size"


def test_refuses_a_package_the_index_does_not_list(valid_package: bytes) -> None:
    data = forge({PKG: valid_package, "index.json": index([])})
    assert refused(data).code == "batch.unlisted"


def test_refuses_an_index_naming_a_package_that_is_not_there(valid_package: bytes) -> None:
    data = forge({"index.json": index([listed(PKG, valid_package)])})
    assert refused(data).code == "batch.missing"


def test_refuses_a_batch_without_an_index(valid_package: bytes) -> None:
    assert refused(forge({PKG: valid_package})).code == "batch.index"


def test_refuses_a_compressed_entry(valid_package: bytes) -> None:
    data = forge(
        {PKG: valid_package, "index.json": index([listed(PKG, valid_package)])},
        method=zipfile.ZIP_DEFLATED,
    )
    assert refused(data).code == "batch.method"


def test_refuses_an_entry_outside_the_batchs_names(valid_package: bytes) -> None:
    data = forge(
        {PKG: valid_package, "../evil.zip": b"x", "index.json": index([listed(PKG, valid_package)])}
    )
    assert refused(data).code == "batch.names"


def test_refuses_a_newer_major_version(valid_package: bytes) -> None:
    raw = index([listed(PKG, valid_package)], batch_version="2.0")
    assert refused(forge({PKG: valid_package, "index.json": raw})).code == "version.newer_major"


def test_refuses_an_index_entry_of_the_wrong_type(valid_package: bytes) -> None:
    entry = listed(PKG, valid_package) | {"size": True}
    assert refused(forge({PKG: valid_package, "index.json": index([entry])})).code == "batch.index"


def test_refuses_bytes_after_the_end_record(valid_package: bytes) -> None:
    good = forge({PKG: valid_package, "index.json": index([listed(PKG, valid_package)])})
    assert refused(good + b"tail").code == "zip.appended"


# -- signatures over the index (issue 10's scheme) --------------------------------------------


def _key(name: str) -> SigningKey:
    return SigningKey(name, Ed25519PrivateKey.generate())


def test_a_signed_batch_names_its_signer(valid_package: bytes) -> None:
    alice = _key("alice")
    sink = io.BytesIO()
    writer = BatchWriter(sink, CREATED)
    writer.add("a.zip", "sim-a", valid_package)
    writer.finish([alice])
    batch = open_batch(memoryview(sink.getvalue()), "b")
    [sig] = batch.signatures
    assert sig.key_id == key_id(alice.private.public_key()) and sig.signer == "alice"
    assert sig.member == f"signatures/{sig.key_id}.dsse.json"


def test_refuses_a_signature_over_another_index(valid_package: bytes) -> None:
    """The signature of a batch of two, put into a batch of one of them: the index it
    signed is not this one."""
    sink = io.BytesIO()
    writer = BatchWriter(sink, CREATED)
    writer.add("a.zip", "sim-a", valid_package)
    writer.add("b.zip", "sim-b", valid_package)
    writer.finish([_key("alice")])
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as zf:
        [signature] = [n for n in zf.namelist() if n.startswith("signatures/")]
        signed = zf.read(signature)
    data = forge(
        {
            "packages/a.zip": valid_package,
            "index.json": index([listed("packages/a.zip", valid_package, "sim-a")]),
            signature: signed,
        }
    )
    assert refused(data).code == "signature.digest"


def test_refuses_a_signature_that_was_altered(valid_package: bytes) -> None:
    sink = io.BytesIO()
    writer = BatchWriter(sink, CREATED)
    writer.add("a.zip", "sim-a", valid_package)
    writer.finish([_key("alice")])
    with zipfile.ZipFile(io.BytesIO(sink.getvalue())) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    [name] = [n for n in entries if n.startswith("signatures/")]
    envelope = json.loads(entries[name])
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    entries[name] = json.dumps(envelope).encode()
    assert refused(forge(entries)).code == "signature.invalid"


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_folder_of_the_batchs_name_is_refused_and_kept(tmp_path: Path, overwrite: bool) -> None:
    target = tmp_path / "sims.apebatch"
    target.mkdir()
    (target / "kept.txt").write_text("mine")
    with (
        pytest.raises(WorkspaceError, match="is a folder"),
        batch_file(target, overwrite=overwrite),
    ):
        pass
    assert [p.name for p in tmp_path.iterdir()] == ["sims.apebatch"]  # no partial file left
    assert (target / "kept.txt").read_text() == "mine"
