"""The tables of a run computed on a Dask cluster: fixed blocks of patients simulated on the
workers, written here in patient order as they arrive, and their tallies added up.

The client holds at most one block (and the writer's queue) at a time: it asks for the
result of the next block in order and no other, while at most `window` blocks are queued or
held on the workers. The Parquet files are those a local run writes (the same rows in the
same order into the same `TableWriter`), and the summary is the local one (exact integer
tallies). A block lost with its worker is computed again by Dask from the same streams.
"""

from __future__ import annotations

import secrets
from collections import deque
from pathlib import Path
from typing import Any

from apesim.distributed.blocks import BlockResult, plan_blocks, simulate_block
from apesim.distributed.cluster import DistributedError, connect
from apesim.distributed.options import ClusterOptions
from apesim.engine.simulate import Chunk, SimulationParameters
from apesim.engine.tables import compile_protocol
from apesim.errors import ApeError
from apesim.progress import ProgressCallback
from apesim.protocol import LoadedProtocol
from apesim.results.summary import Summary
from apesim.results.tally import Tally, summary_of
from apesim.runner import ChunkWriter, TablesStep

BLOCKS_PER_WORKER = 2  # blocks queued or held per worker beyond the one being written


def distributed_tables(
    lp: LoadedProtocol,
    params: SimulationParameters,
    options: ClusterOptions,
    *,
    progress: ProgressCallback | None = None,
) -> TablesStep:
    """The `runner.run_into` step that computes the tables on the cluster of `options`."""

    def step(folder: Path) -> Summary:
        with connect(options) as client:
            return write_blocks(client, folder, lp, params, options.block_size, progress)

    return step


def write_blocks(
    client: Any,
    folder: Path,
    lp: LoadedProtocol,
    params: SimulationParameters,
    block_size: int,
    progress: ProgressCallback | None = None,
) -> Summary:
    """Simulate the run's blocks on the client's cluster and write them into `folder`."""
    cp = compile_protocol(lp.protocol)
    [cp_future] = client.scatter([cp], broadcast=True, hash=False)  # sent once per worker
    blocks = deque(plan_blocks(params.patients, block_size))
    window = max(2, BLOCKS_PER_WORKER * len(client.scheduler_info()["workers"]))
    pending: deque[Any] = deque()
    total = Tally()

    def submit() -> None:
        while blocks and len(pending) < window:
            start, stop = blocks.popleft()
            pending.append(
                client.submit(
                    simulate_block,
                    cp_future,
                    params,
                    start,
                    stop,
                    key=f"ape-block-{start}-{stop}-{secrets.token_hex(4)}",
                    pure=False,
                )
            )

    try:
        with ChunkWriter(folder) as writer:
            submit()
            while pending:
                result = _result(pending.popleft())
                submit()
                writer.put(Chunk(patients=result.patients, visits=result.visits))
                total.add(result.tally)
                del result
                if progress is not None:
                    progress(min(total.patients, params.patients), params.patients)
            writer.finish()
    except BaseException:
        client.cancel(list(pending), force=True)
        raise
    finally:
        client.cancel([cp_future], force=True)
    return summary_of(total, params.years)


def _result(future: Any) -> BlockResult:
    try:
        result = future.result()
    except ApeError:
        raise
    except Exception as exc:  # a worker's exception, or KilledWorker after every retry
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DistributedError(
            f"a block failed on the cluster ({type(exc).__name__}: {first[:200]})"
        ) from None
    assert isinstance(result, BlockResult)
    return result
