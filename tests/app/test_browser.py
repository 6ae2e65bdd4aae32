"""End to end in a real browser: Playwright drives Debian's chromium against two real
`streamlit run` servers, each on its own temporary workspace.

Alice runs a simulation, downloads its package from the Audit Trail and compares it with a
second run; Bob imports the downloaded file through Protocol Manager → Manage → Import
Simulation, sees the imported banner and the disabled run button, and reads the same
summary numbers as Alice. A screenshot of every page goes to the test's output folder
(and to $APE_SCREENSHOTS too, if set: `APE_SCREENSHOTS=docs/screenshots` refreshes the
README's pictures).
"""

from __future__ import annotations

import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from apesim import api
from apesim.workspace import Workspace
from tests.app.browser import MARKS, TIMEOUT_MS, OffMachine, Server, Shots, settle

if TYPE_CHECKING:
    from playwright.sync_api import Page

pytestmark = MARKS


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[tuple[Server, Server]]:
    alice = Server(tmp_path / "alice-ws", "alice@example.org", tmp_path / "alice.log")
    bob = Server(tmp_path / "bob-ws", "bob@example.org", tmp_path / "bob.log")
    try:
        alice.wait_healthy()
        bob.wait_healthy()
        yield alice, bob
    finally:
        alice.stop()
        bob.stop()


def _table_shows_at(page, across: float) -> bool:  # type: ignore[no-untyped-def]
    """Whether the first data frame is what shows (not something over it) at the middle of
    its header row, `across` of the way from its left edge to its right."""
    return bool(
        page.evaluate(
            "(across) => { const t = document.querySelector('[data-testid=\"stDataFrame\"]');"
            " const r = t.getBoundingClientRect();"
            " const el = document.elementFromPoint(r.left + across * r.width, r.top + 15);"
            " return el !== null && t.contains(el); }",
            across,
        )
    )


def _nav(page, label: str) -> None:  # type: ignore[no-untyped-def]
    page.get_by_test_id("stSidebarNav").get_by_text(label, exact=True).click()


def _heading(page, text: str) -> None:  # type: ignore[no-untyped-def]
    page.locator("h1").filter(has_text=text).first.wait_for(timeout=TIMEOUT_MS)
    settle(page)


def _metrics(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The headline metrics, once the page has drawn them (a rerun can clear them)."""
    page.get_by_test_id("stMetric").filter(has_text="Vision change at end").first.wait_for(
        timeout=TIMEOUT_MS
    )
    settle(page)
    out = {}
    for metric in page.get_by_test_id("stMetric").all():
        label = metric.get_by_test_id("stMetricLabel").inner_text().strip()
        out[label] = metric.get_by_test_id("stMetricValue").inner_text().strip()
    return out


def _summary_table(page) -> dict[str, str]:  # type: ignore[no-untyped-def]
    """The 'All summary statistics' table of the Analysis Overview, opened."""
    page.get_by_text("All summary statistics").click()
    table = page.get_by_test_id("stTable").first
    table.wait_for(timeout=TIMEOUT_MS)
    rows = {}
    for row in table.locator("tbody tr").all():
        cells = [c.inner_text().strip() for c in row.locator("th, td").all()]
        rows[cells[0]] = cells[-1]
    page.get_by_text("All summary statistics").click()
    table.wait_for(state="hidden", timeout=TIMEOUT_MS)
    return rows


def _protocol_label(key: str) -> str:
    """How the Run Simulation page names a shipped protocol."""
    info = api.get_protocol(key).protocol
    return f"{info.name} {info.version} (shipped)"


def _run(page, protocol: str, patients: int, years: float, name: str) -> None:  # type: ignore[no-untyped-def]
    _nav(page, "Run Simulation")
    _heading(page, "Run Simulation")
    page.get_by_test_id("stSelectbox").filter(has_text="Protocol").click()
    page.get_by_role("option", name=protocol).click()
    page.get_by_label("Patients").fill(str(patients))
    page.get_by_label("Years").fill(str(years))
    page.get_by_label("Name").fill(name)
    page.get_by_role("button", name="Run simulation").click()
    _heading(page, name)


def test_run_download_import_in_a_browser(
    servers: tuple[Server, Server], browser_page: Page, off_machine: OffMachine, tmp_path: Path
) -> None:
    from playwright.sync_api import expect

    alice, bob = servers
    shots = Shots(tmp_path / "screenshots")
    page = browser_page
    context = page.context
    try:
        # -- Alice: an empty workspace offers the demo; she runs her own instead.
        page.goto(alice.url)
        page.get_by_text("Your workspace is empty").wait_for()
        expect(page.get_by_role("button", name="Run the demo simulation")).to_be_visible()
        shots.take(page, "01_home_empty")
        assert off_machine.requested == [], off_machine.requested  # from the first page
        _run(page, _protocol_label("v1_aflibercept_treat_and_extend"), 2000, 3, "Alice T&E")
        original_metrics = _metrics(page)
        original_summary = _summary_table(page)
        assert original_summary["Patients"] == "2,000"
        shots.take(page, "03_overview_vision")
        page.get_by_role("tab", name="Treatment patterns").click()
        page.get_by_text("Time between injections").first.wait_for()
        shots.take(page, "04_overview_treatment")
        page.get_by_role("tab", name="Patients").click()
        page.get_by_label("Patient (0–1999)").fill("7")
        page.get_by_label("Patient (0–1999)").press("Tab")
        page.get_by_text("Patient 7: vision").first.wait_for()
        shots.take(page, "05_overview_patients")

        # -- the package, from the Audit Trail, in one click
        page.get_by_role("tab", name="Audit Trail").click()
        page.get_by_text("Estimated size").wait_for()
        [sim] = Workspace(alice.workspace).list()
        trail = api.load_simulation(Workspace(alice.workspace), sim.sim_id).audit_events
        actions = [e.action for e in trail()]
        assert "exported" not in actions  # nothing is made before the click
        with page.expect_download() as info:
            page.get_by_role("button", name="Download Simulation Package").click()
        download = info.value
        package = tmp_path / download.suggested_filename
        download.save_as(package)
        assert package.name.startswith("APE_simulation_") and package.suffix == ".zip"
        assert zipfile.is_zipfile(package)
        assert sim.sim_id in package.name
        events = trail()
        assert [e.action for e in events] == [*actions, "exported"]
        assert events[-1].details["package_sha256"] == api.inspect_package(package).sha256
        page.get_by_role("tab", name="Patients").click()  # back: the trail shows it
        page.get_by_role("tab", name="Audit Trail").click()
        page.get_by_text("Last downloaded:").wait_for()
        page.get_by_text("Event 2 · simulation_run").click()
        page.get_by_text('"runtime_seconds"').wait_for()  # its details, whole
        page.wait_for_timeout(500)  # the expander's opening animation, before the shot
        shots.take(page, "06_overview_audit_trail")

        # -- Alice compares with a PRN run
        _run(page, _protocol_label("v1_prn_monthly"), 2000, 3, "Alice PRN")
        _nav(page, "Compare")
        _heading(page, "Compare simulations")
        page.get_by_test_id("stTable").first.wait_for()
        shots.take(page, "08_compare")
        _nav(page, "Home")
        page.get_by_text("Simulations in this workspace (2)").wait_for()
        shots.take(page, "11_home_with_simulations")
        _nav(page, "Protocol Manager")
        _heading(page, "Protocol Manager")
        page.get_by_text("Show the raw YAML").click()
        page.get_by_test_id("stCode").first.wait_for()
        shots.take(page, "02_protocol_manager")

        # -- Bob imports the file through Protocol Manager → Manage → Import Simulation
        page = context.new_page()
        page.goto(bob.url)
        page.get_by_text("Your workspace is empty").wait_for()
        _nav(page, "Protocol Manager")
        _heading(page, "Protocol Manager")
        page.get_by_role("button", name="Manage").click()
        page.get_by_role("button", name="Import Simulation").wait_for()
        settle(page)
        # the open menu covers no part of the protocol table
        for where in (0.05, 0.5, 0.95):  # its first column, middle, last column
            assert _table_shows_at(page, where), f"the menu covers the table at {where}"
        page.get_by_role("button", name="Import Simulation").click()
        page.get_by_role("heading", name="Import Simulation").wait_for()
        settle(page)
        # the one-package uploader (the one for several files sits in an expander)
        page.locator(
            '[data-testid="stFileUploader"] input[type="file"]:not([multiple])'
        ).set_input_files(package)
        page.get_by_text("simulation package.").first.wait_for()  # "is a valid … package."
        page.get_by_role("button", name="Import this simulation").wait_for()
        # one file: the uploader (with its "+" and "91.5KB") gives way to the file's line
        size = f"{package.stat().st_size / 1000:.1f} kB"
        page.get_by_text(f"{package.name} · {size}").wait_for()
        expect(page.get_by_test_id("stFileUploader")).to_have_count(0)
        settle(page)
        expect(page.get_by_text("✗ failed")).to_have_count(0)
        assert page.get_by_text("✓ passed").count() >= 5
        assert Workspace(bob.workspace).list() == []  # nothing before the confirm
        shots.take(page, "07_import_preview")
        page.get_by_role("button", name="Import this simulation").click()
        _heading(page, "Alice T&E")
        banner = page.get_by_text("Viewing imported simulation from")
        expect(banner).to_be_visible()
        assert sim.created_utc[:10] in banner.inner_text()
        [bobs] = Workspace(bob.workspace).list()
        assert bobs.imported and bobs.sim_id == sim.sim_id

        # the same numbers as Alice saw
        assert _metrics(page) == original_metrics
        assert _summary_table(page) == original_summary
        shots.take(page, "09_overview_imported")

        # and the run button is disabled, saying why
        _nav(page, "Run Simulation")
        _heading(page, "Run Simulation")
        expect(page.get_by_role("button", name="Run simulation")).to_be_disabled()
        # the form shows the imported simulation's settings, and none can be edited
        for label, value in (("Patients", "2000"), ("Years", "3.00"), ("Name", "Alice T&E")):
            expect(page.get_by_label(label)).to_be_disabled()
            expect(page.get_by_label(label)).to_have_value(value)
        expect(page.get_by_text("Run is disabled.")).to_be_visible()
        expect(page.get_by_text("Viewing imported simulation from")).to_be_visible()
        shots.take(page, "10_run_disabled_imported")
    except Exception:
        for i, open_page in enumerate(context.pages):
            open_page.screenshot(path=str(shots.folder / f"failure_{i}.png"), full_page=True)
        raise
    assert len(shots.taken) == 11
    # APE is used in hospitals without internet: no page asks for anything off this machine
    assert off_machine.requested == [], off_machine.requested
    assert off_machine.seen > 50  # the recording saw the pages' own requests
    for server in servers:
        log = server.log_path.read_text(encoding="utf-8", errors="replace")
        assert "Traceback" not in log, log
