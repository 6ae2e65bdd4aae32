"""A valid package built from a real small simulation, shared by the package tests."""

from __future__ import annotations

import io
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package
from apesim.workspace import Workspace

CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.fixture(scope="session")
def valid_package(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    """The bytes of a package of 200 patients x 2 years (built once per session)."""
    ws = Workspace(tmp_path_factory.mktemp("source-ws"))
    record = api.run_simulation(
        ws, "v1_aflibercept_treat_and_extend", SimulationParameters(200, 2.0, 11), name="source"
    )
    sink = io.BytesIO()
    export_package(ws, record.sim_id, sink, created=CREATED)
    return sink.getvalue()


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content: to show that nothing changed."""
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }
