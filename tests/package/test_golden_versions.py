"""Golden packages of each format version, as files: a package of format 1.0 (written by
APE before signatures existed) still verifies and imports, and a signed package of format
1.1 (signed with a fixed test key) still verifies, imports, and carries exactly the
signature this APE would write for its manifest (the signature format has not moved)."""

from __future__ import annotations

import json
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apesim.package import import_package, validate_package
from apesim.package.signature import key_id, parse_public_key, sign_manifest, verify_envelope
from apesim.workspace import Workspace
from tests.package.corpus import members

GOLDEN = Path(__file__).parent / "golden"


def test_a_1_0_package_still_verifies_and_imports(tmp_path: Path) -> None:
    package = GOLDEN / "v1.0" / "package.zip"
    report = validate_package(package)
    assert report.format == "APE 1.0" and report.warnings == []
    assert report.verdict is not None and report.verdict.status == "unsigned"
    ws = Workspace(tmp_path / "ws")
    record = import_package(ws, package)
    assert ws.get(record.sim_id).patients == 100


def test_a_signed_1_1_package_still_verifies_and_imports(tmp_path: Path) -> None:
    package = GOLDEN / "v1.1" / "signed.zip"
    public = (GOLDEN / "v1.1" / "golden.pub").read_text().split()[0]
    kid = key_id(parse_public_key(public))
    report = validate_package(package, trust={kid: "golden"}, require_signature=True)
    assert report.format == "APE 1.1"
    assert report.verdict is not None and report.verdict.trusted_names == {kid: "golden"}
    ws = Workspace(tmp_path / "ws")
    import_package(ws, package, trust={kid: "golden"}, require_signature=True)


def test_the_golden_signature_is_the_one_this_ape_writes() -> None:
    files = members((GOLDEN / "v1.1" / "signed.zip").read_bytes())
    manifest = json.loads(files["manifest.json"])
    signatures = [n for n in files if n.startswith("signatures/")]
    assert len(signatures) == 1
    found = verify_envelope(signatures[0], files[signatures[0]], manifest)
    assert found.signer == "golden" and found.signed == "2026-01-02T03:04:05Z"
    # The test key is fixed (32 bytes of 1) and Ed25519 is deterministic: same bytes again.
    key = Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32)
    assert sign_manifest(manifest, key, "golden", found.signed) == (
        signatures[0],
        files[signatures[0]],
    )
