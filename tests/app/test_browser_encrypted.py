"""In a real browser (Debian's chromium): the Audit Trail's download, signed with the
workspace's default key (opened with its passphrase, typed into the page) and encrypted for
an age recipient typed into "Encrypt for…", is a
`.zip.age` that the recipient's identity opens into a valid package signed by that key
(Streamlit's test harness cannot read downloaded bytes)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import pyrage
from pyrage import x25519

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import format as fmt
from apesim.package import validate_package
from apesim.workspace import Workspace
from tests.app.browser import MARKS, OffMachine, Server, settle

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = MARKS


def test_download_encrypted_for_a_recipient(
    browser_page: Page, off_machine: OffMachine, tmp_path: Path
) -> None:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    ws = Workspace(tmp_path / "ws")
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(300, 2.0, 4), name="sealed"
    )
    identity = x25519.Identity.generate()
    lab = api.generate_key("lab", passphrase="lab only")  # in APE_KEYS: the server's too
    api.set_signature_policy(ws, signing_key="lab")
    server = Server(ws.root, "alice@example.org", tmp_path / "server.log")
    try:
        server.wait_healthy()
        page = browser_page
        page.goto(server.url)
        page.get_by_role("button", name="Open Analysis Overview").click()  # the latest
        page.get_by_role("tab", name="Audit Trail").click()
        page.get_by_text("Estimated size").wait_for()
        page.get_by_text("is protected by a passphrase").wait_for()
        secret = page.get_by_label("Passphrase of the default key lab")
        secret.fill("lab only")
        secret.press("Enter")
        page.get_by_text("Signed with the workspace's default key").wait_for()
        settle(page)
        box = page.get_by_test_id("stTextArea").locator("textarea")
        box.fill(str(identity.to_public()))
        box.press("Control+Enter")
        page.get_by_text("will be encrypted (age) for 1 recipient").wait_for()
        settle(page)
        for attempt in range(2):  # a click during the rerun Ctrl+Enter set off is lost
            try:
                with page.expect_download(timeout=30_000) as info:
                    page.get_by_role("button", name="Download Simulation Package").click()
                break
            except PlaywrightTimeout:
                if attempt:
                    raise
                settle(page)
        download = info.value
        sealed = tmp_path / download.suggested_filename
        download.save_as(sealed)
    finally:
        server.stop()
    assert sealed.name.endswith(".zip.age") and record.sim_id in sealed.name
    data = sealed.read_bytes()
    assert data.startswith(fmt.AGE_MAGIC)
    report = validate_package(pyrage.decrypt(data, [identity]), trust={lab.key_id or "": "lab"})
    assert report.validated is not None and report.validated.sim_id == record.sim_id
    assert report.verdict is not None and report.verdict.trusted_names == {lab.key_id: "lab"}
    exported = ws.read_audit(ws.get(record.sim_id))[-1]
    assert exported.details["encrypted_for"] == [str(identity.to_public())]
    assert exported.details["signed_by"] == [lab.key_id]
    assert off_machine.requested == [], off_machine.requested
