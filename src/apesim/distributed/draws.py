"""What a worker computes for one draw of a sweep: the draw's whole simulation by the local
run's own code, returned as the bytes of its two Parquet files and its summary. No Dask
imported; the client installs the files as an ordinary simulation."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from apesim.engine.simulate import SimulationParameters
from apesim.protocol import parse_protocol
from apesim.results.summary import Summary
from apesim.runner import local_tables
from apesim.workspace import layout


@dataclass(frozen=True)
class DrawFiles:
    """A simulated draw: its tables' file bytes, its summary statistics and the seconds
    the worker took."""

    index: int
    patients: bytes
    visits: bytes
    summary: Summary
    seconds: float

    def write_into(self, folder: Path) -> Summary:
        """Put the tables into a run's staging folder (a `runner.TablesStep`)."""
        (folder / layout.PATIENTS).write_bytes(self.patients)
        (folder / layout.VISITS).write_bytes(self.visits)
        return self.summary


def simulate_draw(
    index: int, protocol_text: str, source: str, params: SimulationParameters
) -> DrawFiles:
    """Simulate one draw from its exact protocol text, as `ape run` would."""
    started = time.perf_counter()
    lp = parse_protocol(protocol_text, source)
    with tempfile.TemporaryDirectory(prefix="ape-draw-") as tmp:
        folder = Path(tmp)
        summary = local_tables(lp, params)(folder)
        return DrawFiles(
            index,
            (folder / layout.PATIENTS).read_bytes(),
            (folder / layout.VISITS).read_bytes(),
            summary,
            time.perf_counter() - started,
        )
