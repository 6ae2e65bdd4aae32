"""Distributed runs against real Dask clusters (worker processes on loopback), and what
makes two runs' files comparable byte for byte: the run's identity (id, time, runtime)
pinned, as it is the only thing two runs of the same protocol and parameters do not share."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace

import pytest

from apesim import api, runner
from apesim.workspace import Workspace

CREATED = datetime(2026, 11, 30, 1, 2, 3, tzinfo=UTC)


class _Clock:
    @staticmethod
    def now(tz: object = None) -> datetime:
        return CREATED


@pytest.fixture
def pinned_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every run gets the same id, creation time and runtime."""
    monkeypatch.setattr(runner, "new_sim_id", lambda created: "sim-20261130-010203-abcdef")
    monkeypatch.setattr(runner, "datetime", _Clock)
    monkeypatch.setattr(runner, "time", SimpleNamespace(perf_counter=lambda: 0.0))


def digests(ws: Workspace, sim_id: str, out: Path) -> dict[str, str]:
    """SHA-256 of every file of the simulation's folder, and of its exported package."""
    record = ws.get(sim_id)
    folder = ws.path(record)
    found = {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }
    result = api.export_package(ws, sim_id, out, created=CREATED)
    found["package"] = hashlib.sha256(Path(result.path).read_bytes()).hexdigest()
    return found


def leftovers(ws: Workspace) -> list[Path]:
    """Files a run left: staged folders and simulations (the registry aside)."""
    return [p for p in ws.root.rglob("*") if p.is_file() and p.suffix != ".sqlite"]


@dataclass(frozen=True)
class RunningCluster:
    """A running cluster's scheduler address, and the file whose removal arms its workers'
    `distributed.block` fault: the next worker to finish a block dies (once)."""

    address: str
    fault_marker: Path


@pytest.fixture(scope="session")
def running_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningCluster]:
    """A cluster of 2 worker processes on loopback, as `--scheduler` or APE_DASK_SCHEDULER
    would name an existing one; shared by the tests (a cluster takes seconds to start)."""
    pytest.importorskip("distributed")
    from apesim.distributed.cluster import local_cluster

    marker = tmp_path_factory.mktemp("faults") / "fired"
    marker.touch()  # disarmed: the fault fires only where it can create this file
    with local_cluster(
        2, env={"APE_FAULT": "distributed.block", "APE_FAULT_ONCE": str(marker)}
    ) as cluster:
        yield RunningCluster(cluster.scheduler_address, marker)
