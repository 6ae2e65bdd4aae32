"""Running a sweep: the draws not yet in the workspace, each an ordinary simulation (its
own seed, its exact protocol), in this process or on a Dask cluster; a re-run resumes."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from apesim.distributed.options import ClusterOptions
from apesim.progress import ProgressCallback
from apesim.runner import run_into
from apesim.sweep.plan import Draw, SweepPlan
from apesim.sweep.store import completed_draws, load_plan, save_plan
from apesim.workspace.store import Workspace


@dataclass(frozen=True)
class SweepRun:
    """What a run of a sweep did: its id and folder, the draws planned, found complete
    already (skipped) and run now, and the seconds it took."""

    sweep_id: str
    folder: Path
    planned: int
    skipped: int
    ran: int
    seconds: float

    def to_json(self) -> dict[str, object]:
        return {
            "sweep_id": self.sweep_id,
            "planned": self.planned,
            "skipped": self.skipped,
            "ran": self.ran,
            "seconds": round(self.seconds, 3),
        }


def run_sweep(
    ws: Workspace,
    plan: SweepPlan,
    *,
    cluster: ClusterOptions | None = None,
    progress: ProgressCallback | None = None,
) -> SweepRun:
    """Run every draw of `plan` that the workspace does not hold yet; `progress(done,
    total)` in draws, counting the ones found complete."""
    started = time.perf_counter()
    folder = save_plan(ws, plan)
    done = completed_draws(ws.list(), load_plan(ws, plan.sweep_id))
    todo = [d for d in plan.draws if d.index not in done]
    total, finished = len(plan.draws), len(done)
    if progress is not None:
        progress(finished, total)

    def advance() -> None:
        nonlocal finished
        finished += 1
        if progress is not None:
            progress(finished, total)

    if cluster is None:
        for draw in todo:
            run_into(
                ws,
                plan.protocols[draw.index],
                plan.parameters(draw),
                name=plan.draw_name(draw),
            )
            advance()
    elif todo:
        from apesim.distributed.draws import DrawFiles
        from apesim.distributed.sweep import run_draws  # Dask: for a distributed sweep only

        def install(draw: Draw, files: DrawFiles) -> None:
            run_into(
                ws,
                plan.protocols[draw.index],
                plan.parameters(draw),
                name=plan.draw_name(draw),
                tables=files.write_into,
                simulated_seconds=files.seconds,
            )
            advance()

        run_draws(plan, todo, cluster, install)
    return SweepRun(
        sweep_id=plan.sweep_id,
        folder=folder,
        planned=total,
        skipped=len(done),
        ran=len(todo),
        seconds=time.perf_counter() - started,
    )
