"""The run pipeline: the writer thread writes the bytes a sequential run writes, the
statistics from the chunks in memory are those of the files, and a failure on either thread
stops both and leaves nothing."""

from __future__ import annotations

import errno
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from apesim import api, runner
from apesim.engine import SimulationParameters, simulate
from apesim.engine.tables import compile_protocol
from apesim.errors import StorageError
from apesim.protocol import resolve_protocol
from apesim.results.parquet_io import TableWriter, read_table
from apesim.results.schema import PATIENTS_SCHEMA, VISITS_SCHEMA
from apesim.results.stats import compute_summary, summary_json
from apesim.workspace import Workspace, layout

TE = "v1_aflibercept_treat_and_extend"
PARAMS = SimulationParameters(patients=300, years=2.0, seed=5, recruitment_months=3.0)


def _writer_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "ape-writer"]


def _leftovers(ws: Workspace) -> list[Path]:
    """Files left by runs: staged folders and simulations."""
    return [p for p in ws.root.rglob("*") if p.is_file() and p.suffix != ".sqlite"]


def test_a_run_writes_the_bytes_of_a_sequential_write(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    # Small chunks: many hand-overs to the writer, and row groups cut across chunks.
    record = api.run_simulation(ws, TE, PARAMS, chunk_size=7)
    folder = ws.path(record)
    cp = compile_protocol(resolve_protocol(TE).protocol)
    expected = tmp_path / "sequential"
    expected.mkdir()
    with (
        TableWriter(expected / layout.PATIENTS, PATIENTS_SCHEMA) as pw,
        TableWriter(expected / layout.VISITS, VISITS_SCHEMA) as vw,
    ):
        for chunk in simulate(cp, PARAMS, chunk_size=50):
            pw.write(chunk.patients)
            vw.write(chunk.visits)
    for name in (layout.PATIENTS, layout.VISITS):
        assert (folder / name).read_bytes() == (expected / name).read_bytes(), name
    # The statistics from the chunks in memory are those of the files read back.
    patients, visits = read_table(folder / layout.PATIENTS), read_table(folder / layout.VISITS)
    again = summary_json(compute_summary(patients, visits, PARAMS.years))
    assert (folder / layout.SUMMARY).read_text(encoding="utf-8") == again
    assert not _writer_threads()


def test_a_writer_failure_is_raised_on_the_run_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(tmp_path / "ws")
    writes = 0
    original = TableWriter.write

    def full_disk(self: TableWriter, table: Any) -> None:
        """The disk fills up during the visits table (written by the writer thread)."""
        nonlocal writes
        if table.schema.equals(VISITS_SCHEMA):
            writes += 1
            if writes > 3:
                raise OSError(errno.ENOSPC, "No space left on device")
        original(self, table)

    monkeypatch.setattr(TableWriter, "write", full_disk)
    with pytest.raises(StorageError) as caught:
        api.run_simulation(ws, TE, PARAMS, chunk_size=10)
    assert caught.value.code == "storage.no_space"
    assert not _writer_threads()
    assert ws.list() == []
    assert _leftovers(ws) == []


def test_an_engine_failure_stops_the_writer_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(tmp_path / "ws")
    real = runner.simulate

    def failing(*args: Any, **kwargs: Any) -> Iterator[Any]:
        for i, chunk in enumerate(real(*args, **kwargs)):
            if i == 5:
                raise RuntimeError("the engine failed")
            yield chunk

    monkeypatch.setattr(runner, "simulate", failing)
    with pytest.raises(RuntimeError, match="the engine failed"):
        api.run_simulation(ws, TE, PARAMS, chunk_size=10)
    assert not _writer_threads()
    assert ws.list() == []
    assert _leftovers(ws) == []
