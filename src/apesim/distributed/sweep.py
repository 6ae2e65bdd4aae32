"""A sweep's draws on a Dask cluster: each draw simulated whole on a worker (draws are
independent, so they finish in any order) and installed here as it arrives."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from apesim.distributed.cluster import DistributedError, connect
from apesim.distributed.draws import DrawFiles, simulate_draw
from apesim.distributed.options import ClusterOptions
from apesim.sweep.plan import Draw, SweepPlan

DRAWS_PER_WORKER = 3  # draws queued or held per worker


def run_draws(
    plan: SweepPlan,
    todo: list[Draw],
    options: ClusterOptions,
    install: Callable[[Draw, DrawFiles], None],
) -> None:
    """Simulate `todo` on the cluster and `install` each draw as it completes; the first
    draw that fails stops the sweep (the draws installed stay: a re-run resumes)."""
    from distributed import as_completed

    with connect(options) as client:
        window = max(2, DRAWS_PER_WORKER * len(client.scheduler_info()["workers"]))
        queue = list(reversed(todo))
        by_key: dict[str, Draw] = {}

        def submit() -> Any:
            draw = queue.pop()
            lp = plan.protocols[draw.index]
            future = client.submit(
                simulate_draw, draw.index, lp.text, lp.source, plan.parameters(draw), pure=False
            )
            by_key[future.key] = draw
            return future

        running = as_completed([submit() for _ in range(min(window, len(queue)))], loop=client.loop)
        try:
            for future in running:
                draw = by_key.pop(future.key)
                try:
                    files = future.result()
                except Exception as exc:
                    first = str(exc).splitlines()[0] if str(exc) else ""
                    raise DistributedError(
                        f"draw {draw.index} failed on the cluster"
                        f" ({type(exc).__name__}: {first[:200]})"
                    ) from None
                future.release()
                if queue:
                    running.add(submit())
                install(draw, files)
        except BaseException:
            client.cancel(list(running.futures), force=True)
            raise
