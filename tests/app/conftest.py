"""Fixtures for the app tests: Streamlit's AppTest on the real app files and a real
workspace (the per-test APE_WORKSPACE that tests/conftest.py sets)."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apesim.package import export_package, import_package
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import HOME, TIMEOUT, OpenPage, run_small


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
