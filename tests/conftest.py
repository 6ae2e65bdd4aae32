"""Shared fixtures: real workspaces in tmp_path and small simulations run by the real engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord

SHARED = Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No test touches the user's real workspace or keys, and every audit event has a known
    user."""
    monkeypatch.setenv("APE_WORKSPACE", str(tmp_path / "default-workspace"))
    monkeypatch.setenv("APE_USER", "tester@example.org")
    monkeypatch.setenv("APE_KEYS", str(tmp_path / "default-keys"))


@pytest.fixture
def endless() -> Path:
    """A file with no size that never ends (/dev/zero): what a stat-then-read check misses."""
    path = Path("/dev/zero")
    if not path.exists():
        pytest.skip("no /dev/zero here")
    return path


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    return Workspace(tmp_path / "ws")


@pytest.fixture
def small_sim(workspace: Workspace) -> SimulationRecord:
    """200 patients x 2 years of the treat-and-extend protocol."""
    return api.run_simulation(
        workspace,
        "v1_aflibercept_treat_and_extend",
        SimulationParameters(patients=200, years=2.0, seed=7),
        name="small",
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The Dask tests run last: a Dask client leaves process-wide threads behind (its
    offload executor, its event loop), and the reader's tests of a single-threaded caller
    (which forks its worker directly) need a process with no other thread."""
    items.sort(key=lambda item: "distributed" in Path(str(item.path)).parts)
