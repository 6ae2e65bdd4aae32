"""Signed packages (format 1.1): sign -> verify -> import, verdicts against a trust list,
tampering and forgery, two signatures, signatures beside the package, the audit trail."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apesim import api
from apesim.errors import ApeError, PackageIntegrityError
from apesim.package import export_package, import_package, inspect_package, validate_package
from apesim.package import format as fmt
from apesim.package.countersign import countersign
from apesim.package.signature import SigningKey, key_id, sign_manifest
from apesim.results.parquet_io import read_table, write_table
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.package.conftest import snapshot
from tests.package.corpus import members, rebuild, redescribed

CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
ALICE = SigningKey("alice", Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32))
BOB = SigningKey("bob", Ed25519PrivateKey.from_private_bytes(bytes([2]) * 32))
MALLORY = SigningKey("alice", Ed25519PrivateKey.from_private_bytes(bytes([3]) * 32))


def kid(key: SigningKey) -> str:
    return key_id(key.private.public_key())


TRUST_ALICE = {kid(ALICE): "Alice (trial lead)"}


def export(ws: Workspace, sim: SimulationRecord, *keys: SigningKey) -> bytes:
    sink = io.BytesIO()
    export_package(ws, sim.sim_id, sink, created=CREATED, sign=keys)
    return sink.getvalue()


@pytest.fixture
def signed(workspace: Workspace, small_sim: SimulationRecord) -> bytes:
    return export(workspace, small_sim, ALICE)


def test_sign_verify_import(signed: bytes, workspace: Workspace, tmp_path: Path) -> None:
    assert members(signed).keys() >= {f"signatures/{kid(ALICE)}.dsse.json"}
    report = validate_package(signed, trust=TRUST_ALICE, require_signature=True)
    assert report.verdict is not None and report.verdict.status == "trusted"
    assert report.verdict.trusted_names == {kid(ALICE): "Alice (trial lead)"}
    assert [s.signer for s in report.signatures] == ["alice"]
    check = next(c for c in report.checks if c.code == "signatures")
    assert check.passed

    other = Workspace(tmp_path / "other")
    record = import_package(other, signed, trust=TRUST_ALICE, require_signature=True)
    imported = other.read_audit(other.get(record.sim_id))[-1]
    assert imported.details["signature"] == {
        "status": "trusted",
        "key_ids": [kid(ALICE)],
        "trusted_as": ["Alice (trial lead)"],
    }


def test_export_records_the_signing_key(workspace: Workspace, small_sim: SimulationRecord) -> None:
    export(workspace, small_sim, ALICE)
    exported = workspace.read_audit(workspace.get(small_sim.sim_id))[-1]
    assert exported.action == "exported" and exported.details["signed_by"] == [kid(ALICE)]


def test_a_signed_export_is_reproducible(
    signed: bytes, workspace: Workspace, small_sim: SimulationRecord
) -> None:
    assert export(workspace, small_sim, ALICE) == signed


def test_an_unknown_key_is_flagged_not_refused(signed: bytes) -> None:
    report = validate_package(signed, trust={})
    assert report.verdict is not None and report.verdict.status == "unknown"
    hint = report.verdict.hint()
    assert hint is not None and f"ape keys trust {report.signatures[0].public_key}" in hint


def test_an_unknown_key_is_refused_when_a_signature_is_required(signed: bytes) -> None:
    with pytest.raises(PackageIntegrityError) as caught:
        validate_package(signed, trust={kid(BOB): "Bob"}, require_signature=True)
    assert caught.value.code == "signature.untrusted"


def test_an_unsigned_package_is_refused_when_a_signature_is_required(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    unsigned = export(workspace, small_sim)
    assert validate_package(unsigned).verdict.status == "unsigned"  # type: ignore[union-attr]
    with pytest.raises(PackageIntegrityError) as caught:
        validate_package(unsigned, trust=TRUST_ALICE, require_signature=True)
    assert caught.value.code == "signature.required"


def test_the_workspace_setting_requires_a_signature(
    workspace: Workspace, small_sim: SimulationRecord, tmp_path: Path
) -> None:
    unsigned = export(workspace, small_sim)
    other = Workspace(tmp_path / "strict")
    api.set_signature_policy(other, require_signature=True)
    before = snapshot(other.root)
    with pytest.raises(PackageIntegrityError) as caught:
        import_package(other, unsigned)
    assert caught.value.code == "signature.required"
    assert snapshot(other.root) == before


def _forged(package: bytes) -> dict[str, bytes]:
    """The package's files after a forger changed a table (the metadata's runtime) and made
    the self-description again to match (`redescribed`); `rebuild` then renews every
    checksum and the manifest."""
    files = members(package)
    table = read_table(io.BytesIO(files[fmt.METADATA]))
    column = table.schema.get_field_index("runtime_seconds")
    table = table.set_column(column, table.schema.field(column), pa.array([99.5]))  # faster
    sink = io.BytesIO()
    write_table(sink, table)
    files[fmt.METADATA] = sink.getvalue()
    return redescribed(files)


def test_a_forger_keeping_the_old_signature_is_refused_naming_the_table(signed: bytes) -> None:
    forged = rebuild(_forged(signed))
    with pytest.raises(PackageIntegrityError) as caught:
        validate_package(forged, trust=TRUST_ALICE)
    assert caught.value.code == "signature.digest"
    assert "data/metadata.parquet differs from the one that was signed" in str(caught.value)


def test_a_forger_stripping_the_signature_is_refused_under_require_and_flagged_otherwise(
    signed: bytes, tmp_path: Path
) -> None:
    files = {n: d for n, d in _forged(signed).items() if not n.startswith("signatures/")}
    forged = rebuild(files)
    with pytest.raises(PackageIntegrityError) as caught:
        import_package(Workspace(tmp_path / "a"), forged, trust=TRUST_ALICE, require_signature=True)
    assert caught.value.code == "signature.required"
    ws = Workspace(tmp_path / "b")
    record = import_package(ws, forged, trust=TRUST_ALICE)
    assert ws.read_audit(ws.get(record.sim_id))[-1].details["signature"]["status"] == "unsigned"


def test_a_forger_signing_with_their_own_key_is_refused_under_require_and_flagged_otherwise(
    signed: bytes,
) -> None:
    files = {n: d for n, d in _forged(signed).items() if not n.startswith("signatures/")}
    name, data = sign_manifest(
        json.loads(rebuild_manifest(files)), MALLORY.private, "alice", "2026-03-04T05:06:07Z"
    )
    files[fmt.MANIFEST] = rebuild_manifest(files)
    files[name] = data
    forged = rebuild(files, refresh=False)
    with pytest.raises(PackageIntegrityError) as caught:
        validate_package(forged, trust=TRUST_ALICE, require_signature=True)
    assert caught.value.code == "signature.untrusted"
    report = validate_package(forged, trust=TRUST_ALICE)
    assert report.verdict is not None and report.verdict.status == "unknown"
    assert "not in the trust list" in report.verdict.summary()  # the claimed name is not enough


def rebuild_manifest(files: dict[str, bytes]) -> bytes:
    return members(rebuild(files))[fmt.MANIFEST]


def test_two_signatures_are_listed_and_either_may_be_trusted(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    both = export(workspace, small_sim, ALICE, BOB)
    report = validate_package(both, trust={kid(BOB): "Bob"}, require_signature=True)
    assert sorted(s.key_id for s in report.signatures) == sorted([kid(ALICE), kid(BOB)])
    assert report.verdict is not None and report.verdict.trusted_names == {kid(BOB): "Bob"}


def test_a_countersignature_keeps_the_first_signature_valid(signed: bytes) -> None:
    both = countersign(signed, BOB, datetime(2026, 5, 6, tzinfo=UTC))
    assert both.startswith(signed[: len(signed) - 2000])  # the earlier members are untouched
    report = validate_package(both, trust={kid(ALICE): "Alice", kid(BOB): "Bob"})
    assert {s.signer: s.signed for s in report.signatures} == {
        "alice": "2026-03-04T05:06:07Z",
        "bob": "2026-05-06T00:00:00Z",
    }
    with pytest.raises(ApeError) as caught:
        countersign(both, BOB, datetime(2026, 5, 7, tzinfo=UTC))
    assert caught.value.code == "signature.exists"


def test_a_countersignature_of_a_1_0_package_is_refused() -> None:
    old = (Path(__file__).parent / "golden" / "v1.0" / "package.zip").read_bytes()
    with pytest.raises(ApeError) as caught:
        countersign(old, BOB, datetime(2026, 5, 6, tzinfo=UTC))
    assert caught.value.code == "signature.version"


def test_a_signature_beside_the_package_counts(
    workspace: Workspace, small_sim: SimulationRecord, tmp_path: Path
) -> None:
    result = export_package(
        workspace, small_sim.sim_id, tmp_path, created=CREATED, sign=[ALICE], beside=True
    )
    assert result.path is not None
    beside = api.signatures_beside(result.path)
    assert [name for name, _ in beside] == [result.path.name + ".dsse.json"]
    unsigned = rebuild(
        {n: d for n, d in members(result.path.read_bytes()).items() if "signatures/" not in n},
        refresh=False,
    )
    report = inspect_package(unsigned, trust=TRUST_ALICE, beside=beside)
    assert report.ok and report.verdict is not None and report.verdict.status == "trusted"


def test_a_signature_beside_another_package_is_refused(
    signed: bytes, workspace: Workspace, small_sim: SimulationRecord
) -> None:
    other = api.run_simulation(
        workspace, "aflibercept_treat_and_extend", api.SimulationParameters(50, 1.0, 3)
    )
    theirs = members(export(workspace, other, ALICE))
    name = next(n for n in theirs if n.startswith("signatures/"))
    report = inspect_package(signed, trust=TRUST_ALICE, beside=[("their.dsse.json", theirs[name])])
    assert report.error is not None and report.error.code == "signature.digest"
    assert str(report.error).startswith("their.dsse.json:")


def _sampled_offsets(package: bytes, count: int) -> list[int]:
    """`count` offsets spread over the package, and every byte of every member's local
    header (name included), of the central directory and of the end record."""
    step = max(1, len(package) // count)
    offsets = set(range(0, len(package), step))
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        infos = zf.infolist()
        for info in infos:
            offsets.update(range(info.header_offset, info.header_offset + 30 + len(info.filename)))
    directory = struct.unpack_from("<I", package, len(package) - 6)[0]  # no archive comment
    offsets.update(range(directory, len(package)))
    return sorted(offsets)


def test_every_sampled_byte_flip_of_a_signed_package_is_refused(signed: bytes) -> None:
    """A signature vouches for every byte: a flip in a member's content or name breaks a
    checksum or the manifest, one in a ZIP header (a date, a version, the attributes) breaks
    the canonical-headers rule (`zip.noncanonical`). Checked in-process for speed; the worker
    runs the same stages."""
    offsets = _sampled_offsets(signed, 120)
    assert len(offsets) > 600
    for at in offsets:
        flipped = bytearray(signed)
        flipped[at] ^= 0x01
        report = inspect_package(bytes(flipped), trust=TRUST_ALICE, isolate=False)
        assert report.error is not None, f"offset {at}: a flipped byte was accepted"


def test_a_signed_package_whose_member_dates_were_rewritten_is_refused(signed: bytes) -> None:
    """Only the headers change (every member re-dated alike, contents untouched)."""
    with zipfile.ZipFile(io.BytesIO(signed)) as zf:
        redated = io.BytesIO()
        with zipfile.ZipFile(redated, "w") as out:
            for info in zf.infolist():
                data = zf.read(info)
                info.date_time = (
                    (2001, 1, 1, 0, 0, 0) if info.filename == fmt.MANIFEST else (info.date_time)
                )
                out.writestr(info, data, compresslevel=9)
    report = inspect_package(redated.getvalue(), trust=TRUST_ALICE)
    assert report.error is not None and report.error.code == "zip.noncanonical"
    assert fmt.MANIFEST in str(report.error)


def test_a_countersigned_package_keeps_its_own_signature_date_and_reads(signed: bytes) -> None:
    other = SigningKey("bob", Ed25519PrivateKey.generate())
    again = countersign(signed, other, datetime(2031, 5, 6, 7, 8, 9, tzinfo=UTC))
    report = inspect_package(again, trust=TRUST_ALICE)
    assert report.error is None and len(report.signatures) == 2


_P = 2**255 - 19
_Y8 = int.from_bytes(
    bytes.fromhex("26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05"), "little"
)


@pytest.mark.parametrize("sign", [0, 1])
@pytest.mark.parametrize("y", [0, 1, _P - 1, _Y8, _P - _Y8, _P, _P + 1])
def test_a_public_key_of_small_order_is_refused(y: int, sign: int) -> None:
    """Under such a key the signature (R = identity, S = 0) verifies for many messages, so
    anyone could sign as its holder: it is never a key to trust or to verify with."""
    import base64

    from apesim.package.signature import PUBLIC_KEY_PREFIX, parse_public_key

    raw = (y | sign << 255).to_bytes(32, "little")
    with pytest.raises(ValueError, match="small order"):
        parse_public_key(PUBLIC_KEY_PREFIX + base64.b64encode(raw).decode())


def test_trusting_a_key_of_small_order_is_refused(tmp_path: Path) -> None:
    from apesim.errors import KeyringError

    weak = "ape-ed25519:" + "A" * 43 + "="  # y = 0: a point of order 4
    with pytest.raises(KeyringError) as caught:
        api.trust_key(Workspace(tmp_path / "ws"), weak, "Mallory")
    assert caught.value.code == "trust.invalid" and "small order" in str(caught.value)
