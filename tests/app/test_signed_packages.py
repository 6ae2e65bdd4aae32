"""The app and format 1.1: the import preview shows the signature verdict prominently and
refuses what the workspace's policy refuses; an encrypted package opens with its passphrase
or identity; the download signs with the default key and encrypts for recipients."""

from __future__ import annotations

import io
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from pyrage import x25519
from streamlit.testing.v1 import AppTest

from apesim import api
from apesim.package import export_package
from apesim.package.encryption import Encryption
from apesim.package.signature import SigningKey, key_id, public_key_text
from apesim.workspace import Workspace
from tests.app.apptools import (
    OVERVIEW,
    PROTOCOLS,
    OpenPage,
    button,
    manage,
    open_tab,
    run_small,
    texts,
    visible,
)

ALICE = SigningKey("alice", Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32))


def _package(tmp_path: Path, **options: object) -> bytes:
    other = Workspace(tmp_path / "colleague")
    record = run_small(other, name="from a colleague", protocol="prn_monthly", seed=11)
    buffer = io.BytesIO()
    export_package(other, record.sim_id, buffer, **options)  # type: ignore[arg-type]
    return buffer.getvalue()


def _open_import(open_page: OpenPage) -> AppTest:
    at = open_page(PROTOCOLS)
    manage(at, "Import Simulation")
    return at


def test_a_trusted_signature_is_shown_with_the_trusted_name(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    api.trust_key(ws, public_key_text(ALICE.private.public_key()), "Alice (trial lead)")
    at = _open_import(open_page)
    data = _package(tmp_path, sign=[ALICE])
    at.file_uploader(key="package_upload").upload("signed.zip", data).run()
    assert not at.exception, at.exception
    shown = visible(" ".join(s.value for s in at.success))
    assert "Signed by Alice (trial lead), trusted in this workspace" in shown
    assert key_id(ALICE.private.public_key())[:16] in shown


def test_an_unknown_signer_is_a_warning_with_the_way_to_trust_it(
    open_page: OpenPage, tmp_path: Path
) -> None:
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("signed.zip", _package(tmp_path, sign=[ALICE]))
    at.run()
    warned = visible(" ".join(w.value for w in at.warning))
    assert "does not trust" in warned and "ape keys trust ape-ed25519:" in warned


def test_an_unsigned_package_is_not_importable_when_the_workspace_requires_a_signature(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    api.set_signature_policy(ws, require_signature=True)
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("plain.zip", _package(tmp_path)).run()
    assert "Not signed" in texts(at) or any("Not signed" in i.value for i in at.info)
    assert any("requires a trusted signature" in e.value for e in at.error)
    assert button(at, "Import this simulation").disabled
    assert ws.list() == []


def test_an_encrypted_package_opens_with_its_passphrase_and_imports(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    data = _package(tmp_path, encrypt=Encryption(passphrase="open sesame"))
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("sealed.zip.age", data).run()
    assert any("encrypted (age)" in i.value for i in at.info)
    at.text_input[0].input("wrong")
    button(at, "Open the package").click().run()
    assert any("does not open it" in e.value for e in at.error)
    at.text_input[0].input("open sesame")
    button(at, "Open the package").click().run()
    assert not at.exception, at.exception
    assert "is a valid" in texts(at)
    button(at, "Import this simulation").click().run()
    [record] = ws.list()
    assert record.source_file == "sealed.zip.age"
    assert list((ws.root / ".staging").iterdir()) == []


def test_an_encrypted_package_opens_with_a_pasted_identity(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    identity = x25519.Identity.generate()
    data = _package(tmp_path, encrypt=Encryption((str(identity.to_public()),)))
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("sealed.zip.age", data).run()
    at.text_area[0].input(f"# mine\n{identity}\n")
    button(at, "Open the package").click().run()
    assert not at.exception, at.exception
    assert "is a valid" in texts(at)


def _signing_caption(at: AppTest) -> str:
    return " ".join(visible(c.value) for c in at.caption if "igned" in c.value)


def test_the_download_is_signed_with_an_unprotected_default_key_without_asking(
    open_page: OpenPage, ws: Workspace
) -> None:
    record = run_small(ws, name="mine")
    api.generate_key("lab")
    api.set_signature_policy(ws, signing_key="lab")
    at = open_tab(open_page(OVERVIEW, sim_id=record.sim_id), "Audit Trail")
    assert "Signed with the workspace's default key lab" in _signing_caption(at)
    assert not [t for t in at.text_input if t.label.startswith("Passphrase")]


def test_a_default_key_with_a_passphrase_signs_once_its_passphrase_is_given(
    open_page: OpenPage, ws: Workspace
) -> None:
    record = run_small(ws, name="mine")
    api.generate_key("lab", passphrase="open sesame")
    api.set_signature_policy(ws, signing_key="lab")
    at = open_tab(open_page(OVERVIEW, sim_id=record.sim_id), "Audit Trail")
    assert "protected by a passphrase; give it above" in _signing_caption(at)
    field = at.text_input(key="signing_passphrase")
    assert field.label == "Passphrase of the default key lab"
    field.input("wrong").run()
    assert "Not signed: the passphrase of the key 'lab' is wrong" in _signing_caption(at)
    at.text_input(key="signing_passphrase").input("open sesame").run()
    assert not at.exception, at.exception
    assert "Signed with the workspace's default key lab" in _signing_caption(at)
