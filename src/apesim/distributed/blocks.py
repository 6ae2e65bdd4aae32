"""Fixed patient blocks, and what a worker computes for one: the block's tables from the
engine's per-patient streams, and their tally. No Dask imported: this is the code a worker
runs, and it is the local engine's, so a block is the same wherever it is computed."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from apesim import __version__, faults
from apesim.engine.models import MODELS
from apesim.engine.simulate import SimulationParameters, effective_chunk_size, simulate_chunk
from apesim.engine.tables import CompiledProtocol
from apesim.results.stats import tally_block
from apesim.results.tally import Tally


def plan_blocks(patients: int, block_size: int) -> list[tuple[int, int]]:
    """The blocks [start, stop) of a run: `block_size` patients each, the last one shorter.
    Fixed by the run and the block size, never by the number of workers."""
    return [(a, min(a + block_size, patients)) for a in range(0, patients, block_size)]


@dataclass(frozen=True)
class BlockResult:
    """A block's tables, in patient order, and their tally."""

    start: int
    stop: int
    patients: pa.Table
    visits: pa.Table
    tally: Tally


def simulate_block(
    cp: CompiledProtocol, params: SimulationParameters, start: int, stop: int
) -> BlockResult:
    """Simulate patients start..stop-1 of a run (in the engine's chunks, so a worker's memory
    stays that of the local engine plus the block's tables) and tally them."""
    step = effective_chunk_size(cp, params, stop - start)
    chunks = [simulate_chunk(cp, params, a, min(a + step, stop)) for a in range(start, stop, step)]
    patients = pa.concat_tables(c.patients for c in chunks)
    visits = pa.concat_tables(c.visits for c in chunks)
    del chunks
    tally = tally_block(patients, visits, params.years)
    faults.point("distributed.block")
    return BlockResult(start, stop, patients, visits, tally)


def worker_versions() -> str:
    """What a worker runs: APE's version and its models' engine versions (they must be the
    client's)."""
    engines = ", ".join(f"{m.label} {m.engine_version}" for m in MODELS.values())
    return f"apesim {__version__} ({engines})"
