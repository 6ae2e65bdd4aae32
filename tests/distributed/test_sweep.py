"""A sweep on a real Dask LocalCluster: each draw's tables and statistics are those of the
same sweep run in this process, and a re-run on the cluster runs only the draws missing."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from apesim import api
from apesim.workspace import Workspace, layout
from tests.distributed.conftest import RunningCluster
from tests.sweep.conftest import write_sweep

pytest.importorskip("distributed")

FILES = (layout.PATIENTS, layout.VISITS, layout.SUMMARY, layout.PROTOCOL, layout.PARAMETERS)


def _draw_files(ws: Workspace) -> dict[str, dict[str, str]]:
    return {
        r.name: {
            name: hashlib.sha256((ws.path(r) / name).read_bytes()).hexdigest() for name in FILES
        }
        for r in ws.list()
    }


def test_a_sweep_on_the_cluster_gives_the_draws_of_a_local_sweep_and_resumes(
    tmp_path: Path, running_cluster: RunningCluster
) -> None:
    sweep_file = write_sweep(tmp_path)
    local = Workspace(tmp_path / "local")
    api.run_sweep(local, api.plan_sweep(local, sweep_file))

    ws = Workspace(tmp_path / "cluster")
    plan = api.plan_sweep(ws, sweep_file)
    cluster = api.ClusterOptions(scheduler=running_cluster.address)
    done: list[int] = []
    result = api.run_sweep(ws, plan, cluster=cluster, progress=lambda d, t: done.append(d))
    assert (result.ran, result.skipped) == (6, 0)
    assert done == [0, 1, 2, 3, 4, 5, 6]
    assert _draw_files(ws) == _draw_files(local)

    for index in (1, 4):
        ws.delete(next(r.sim_id for r in ws.list() if r.name == plan.draw_name(plan.draws[index])))
    again = api.run_sweep(ws, plan, cluster=cluster)
    assert (again.ran, again.skipped) == (2, 4)
    assert _draw_files(ws) == _draw_files(local)
