"""A run on a real Dask LocalCluster (worker processes on loopback) writes the files of a
plain run, byte for byte, whatever the number of workers and the block size; a worker killed
mid-run changes nothing; a run that fails leaves nothing."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from apesim import api
from apesim.distributed.cluster import DistributedError, connect, workers_reachable
from apesim.workspace import Workspace
from tests.distributed.conftest import RunningCluster, digests, leftovers

dask = pytest.importorskip("dask")

TE = "aflibercept_treat_and_extend"  # model 2.0
V1 = "v1_prn_monthly"  # model 1.0
PARAMS = api.SimulationParameters(patients=800, years=2.0, seed=21, recruitment_months=6)


def _plain(tmp_path: Path, protocol: str = TE) -> dict[str, str]:
    ws = Workspace(tmp_path / "plain")
    record = api.run_simulation(ws, protocol, PARAMS, name="run")
    return digests(ws, record.sim_id, tmp_path / "plain-out")


def _distributed(
    tmp_path: Path, label: str, cluster: api.ClusterOptions, protocol: str = TE
) -> dict[str, str]:
    ws = Workspace(tmp_path / label)
    done: list[int] = []
    record = api.run_simulation(
        ws, protocol, PARAMS, name="run", cluster=cluster, progress=lambda d, t: done.append(d)
    )
    assert done[-1] == PARAMS.patients and done == sorted(done)
    return digests(ws, record.sim_id, tmp_path / f"{label}-out")


@pytest.mark.usefixtures("pinned_identity")
def test_every_file_and_the_package_equal_a_plain_run_for_1_2_3_workers(
    tmp_path: Path, running_cluster: RunningCluster
) -> None:
    plain = _plain(tmp_path)
    assert {"patients.parquet", "visits.parquet", "summary_stats.json", "package"} <= set(plain)
    # One block, blocks that cut row groups and chunks anywhere, blocks of a few patients;
    # local clusters of 1 and 3 workers (--workers), and a running one of 2 (--scheduler).
    for label, cluster in (
        ("w1", api.ClusterOptions(workers=1, block_size=5_000)),
        ("w2", api.ClusterOptions(scheduler=running_cluster.address, block_size=97)),
        ("w3", api.ClusterOptions(workers=3, block_size=250)),
    ):
        assert _distributed(tmp_path, label, cluster) == plain, cluster


@pytest.mark.usefixtures("pinned_identity")
def test_a_model_1_protocol_distributes_the_same(
    tmp_path: Path, running_cluster: RunningCluster
) -> None:
    """Whichever model the protocol selects: blocks go through the engine's entry point."""
    plain = _plain(tmp_path, V1)
    cluster = api.ClusterOptions(scheduler=running_cluster.address, block_size=130)
    assert _distributed(tmp_path, "v1", cluster, V1) == plain


@pytest.mark.usefixtures("pinned_identity")
def test_a_worker_killed_mid_run_gives_the_same_files(
    tmp_path: Path, running_cluster: RunningCluster
) -> None:
    plain = _plain(tmp_path)
    # Armed: the first worker to finish a block kills itself (SIGKILL) before returning it;
    # its nanny starts a new one and Dask computes the lost block again.
    running_cluster.fault_marker.unlink()
    cluster = api.ClusterOptions(scheduler=running_cluster.address, block_size=50)
    assert _distributed(tmp_path, "killed", cluster) == plain
    assert running_cluster.fault_marker.exists()  # a worker did die mid-run


def test_a_block_failing_on_every_try_fails_the_run_and_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APE_FAULT", "distributed.block")  # every worker dies at every block
    ws = Workspace(tmp_path / "ws")
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": 0}),
        pytest.raises(DistributedError) as caught,
    ):
        api.run_simulation(ws, TE, PARAMS, cluster=api.ClusterOptions(workers=1, block_size=400))
    assert caught.value.code == "distributed.failed"
    assert "\n" not in str(caught.value)
    assert ws.list() == []
    assert leftovers(ws) == []


def test_an_unreachable_scheduler_is_one_line_and_leaves_nothing(tmp_path: Path) -> None:
    port = _closed_port()
    ws = Workspace(tmp_path / "ws")
    cluster = api.ClusterOptions(scheduler=f"tcp://127.0.0.1:{port}", connect_timeout=1.0)
    with pytest.raises(DistributedError, match=rf"cannot reach .*127\.0\.0\.1:{port}"):
        api.run_simulation(ws, TE, PARAMS, cluster=cluster)
    assert ws.list() == []
    assert leftovers(ws) == []


def _closed_port() -> int:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_client_that_reaches_the_workers_takes_the_results_from_them(
    running_cluster: RunningCluster,
) -> None:
    with connect(api.ClusterOptions(scheduler=running_cluster.address)) as client:
        assert client.direct_to_workers is True
        workers = list(client.scheduler_info()["workers"])
        assert len(workers) == 2
        unreachable = [*workers, f"tcp://127.0.0.1:{_closed_port()}"]
        assert not workers_reachable(client, unreachable, timeout=0.5)


@pytest.mark.usefixtures("pinned_identity")
def test_workers_the_client_cannot_reach_send_the_same_files_through_the_scheduler(
    tmp_path: Path, running_cluster: RunningCluster, monkeypatch: pytest.MonkeyPatch
) -> None:
    plain = _plain(tmp_path)
    monkeypatch.setattr("apesim.distributed.cluster.workers_reachable", lambda *a: False)
    cluster = api.ClusterOptions(scheduler=running_cluster.address, block_size=300)
    assert _distributed(tmp_path, "via-scheduler", cluster) == plain
