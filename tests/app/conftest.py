"""Fixtures for the app tests: Streamlit's AppTest on the real app files and a real
workspace (the per-test APE_WORKSPACE that tests/conftest.py sets); for the browser tests,
Debian's chromium and a page whose requests off this machine are recorded and stopped."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from streamlit.testing.v1 import AppTest

from apesim.package import export_package, import_package
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import HOME, TIMEOUT, OpenPage, run_small
from tests.app.browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS, WIDTH, OffMachine

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page


@pytest.fixture
def ws() -> Workspace:
    """The workspace the app opens: APE_WORKSPACE, set per test by tests/conftest.py."""
    return Workspace()


@pytest.fixture
def open_page() -> OpenPage:
    """Start the app at Home, optionally viewing `sim_id`, then switch to `page`."""

    def start(page: str | None = None, *, sim_id: str | None = None) -> AppTest:
        at = AppTest.from_file(HOME, default_timeout=TIMEOUT)
        if sim_id is not None:
            at.session_state["sim_id"] = sim_id
        at.run()
        assert not at.exception, at.exception
        if page is not None:
            at.switch_page(page).run()
            assert not at.exception, at.exception
        return at

    return start


@pytest.fixture
def ran(ws: Workspace) -> SimulationRecord:
    """A simulation run in the app's workspace."""
    return run_small(ws)


@pytest.fixture
def package_bytes(tmp_path: Path) -> bytes:
    """A package of a simulation run in another workspace (as a colleague would send it)."""
    other = Workspace(tmp_path / "colleague")
    record = run_small(other, name="from a colleague", protocol="v1_prn_monthly", seed=11)
    buffer = io.BytesIO()
    export_package(other, record.sim_id, buffer)
    return buffer.getvalue()


@pytest.fixture
def imported(ws: Workspace, package_bytes: bytes) -> SimulationRecord:
    """A simulation imported into the app's workspace from a package file."""
    return import_package(ws, package_bytes, source_name="colleague.zip")


@pytest.fixture
def chromium() -> Iterator[Browser]:
    """Debian's chromium, headless, driven by Playwright; closed after the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def off_machine() -> OffMachine:
    """The record of the requests `browser_page` makes off this machine (none leave)."""
    return OffMachine()


@pytest.fixture
def browser_page(chromium: Browser, off_machine: OffMachine) -> Page:
    """A page of a new browser context that accepts downloads, with every request recorded
    in `off_machine` and those off this machine stopped."""
    context = chromium.new_context(viewport={"width": WIDTH, "height": 1000}, accept_downloads=True)
    context.set_default_timeout(TIMEOUT_MS)
    context.route("**/*", off_machine.route)
    context.on("request", off_machine.record)
    return context.new_page()
