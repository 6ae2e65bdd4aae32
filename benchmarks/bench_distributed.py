"""Distributed runs and sweeps on Dask: overhead, memory per process, sweep throughput.

1. `ape run` of 1,000,000 patients x 5 years as whole processes: plain, and with
   `--workers 2` (a local cluster of 2 worker processes started by the command), and
   `--scheduler` against a cluster already running; each as a ratio to plain, in wall time
   and in CPU time of all its processes (target of issue 14: at most 1.3x plain on this
   2-core machine, where the point is the overhead). `--before SRC` runs the same commands
   with an earlier APE's source folder too (PYTHONPATH), interleaved, for a before/after in
   the same run; `--repeat N` keeps the best of N of each.
2. Memory of 10,000,000 patients x 10 years (`--quick`: 1,000,000 x 10) on a running cluster
   of 2 workers: the peak resident memory of each worker process (ru_maxrss, asked of the
   workers after the run) and of the client (`ape run --scheduler`, from wait4). Targets:
   every worker under 2 GiB and the client under 1 GiB.
3. A sweep of 200 draws of 10,000 patients x 5 years (`--quick`: 40 draws): draws per
   second in this process and on a cluster of 2 workers, and the overhead per draw beyond
   one draw's simulation alone (`api.run_simulation`, timed in the same process).

    .venv/bin/python benchmarks/bench_distributed.py
    .venv/bin/python benchmarks/bench_distributed.py --quick
    .venv/bin/python benchmarks/bench_distributed.py --only overhead --repeat 3
    .venv/bin/python benchmarks/bench_distributed.py --only overhead --before /tmp/ape-before/src
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PROTOCOL = "aflibercept_treat_and_extend"
APE = Path(sys.executable).with_name("ape")
MIB = 2**20
TARGET_RATIO = 1.3
TARGET_WORKER = 2 * 2**30
TARGET_CLIENT = 2**30


def _ape(argv: list[str], workspace: Path, src: Path | None = None) -> tuple[float, int, float]:
    """Run `ape` as a child (with the APE of the source folder `src` if given); (wall
    seconds, peak resident bytes of that process, CPU seconds of it and of the children it
    waited for, such as the workers of `--workers`)."""
    env = {**os.environ, "APE_WORKSPACE": str(workspace)}
    env.pop("APE_DASK_SCHEDULER", None)
    if src is not None:
        env["PYTHONPATH"] = str(src)
    started = time.perf_counter()
    proc = subprocess.Popen([str(APE), *argv], env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"ape {' '.join(argv)} failed")
    return wall, usage.ru_maxrss * 1024, usage.ru_utime + usage.ru_stime


def _warm() -> None:
    """What a worker imports for its first block or draw (about 1-2 s of CPU here)."""
    import apesim.distributed.blocks
    import apesim.distributed.draws  # noqa: F401


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _worker_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _cluster() -> Any:
    """A running cluster of 2 workers, as `--workers 2` starts them."""
    from apesim.distributed.cluster import local_cluster

    return local_cluster(2)


@dataclass
class Best:
    """The best wall and CPU seconds of the repeats of one command."""

    wall: float = float("inf")
    cpu: float = float("inf")
    peak: int = 0

    def add(self, wall: float, cpu: float, peak: int = 0) -> None:
        self.wall, self.cpu, self.peak = (
            min(self.wall, wall),
            min(self.cpu, cpu),
            max(self.peak, peak),
        )


def overhead(
    tmp: Path, patients: int, years: float, repeat: int = 1, before: Path | None = None
) -> None:
    from distributed import Client

    print(f"\n## 1. `ape run` {patients:,} patients x {years:g} years, whole process")
    run = ["run", "-p", PROTOCOL, "-n", str(patients), "-y", str(years), "--seed", "42"]
    apes: dict[str, Path | None] = {"": None} if before is None else {"": None, " (before)": before}
    plain = {k: Best() for k in apes}
    local = {k: Best() for k in apes}
    ext = {k: Best() for k in apes}
    client_cpu = {k: float("inf") for k in apes}
    started = time.perf_counter()
    with _cluster() as cluster, Client(cluster.scheduler_address, set_as_default=False) as c:
        start_s = time.perf_counter() - started
        c.run(_warm)  # a cluster that has run APE before: its workers imported APE already
        for i in range(repeat):
            for tag, src in apes.items():
                sub = tmp / f"{i}{tag.strip(' ()')}"
                wall, peak, cpu = _ape(run, sub / "plain", src)
                plain[tag].add(wall, cpu, peak)
                wall, _, cpu = _ape([*run, "--workers", "2"], sub / "local", src)
                local[tag].add(wall, cpu)
                before_cpu, here = c.run(_cpu), _cpu()
                addr = ["--scheduler", cluster.scheduler_address]
                wall, _, cpu = _ape([*run, *addr], sub / "ext", src)
                workers_cpu = sum(v - before_cpu[k] for k, v in c.run(_cpu).items())
                # This process runs the scheduler and the nannies: their CPU counts too.
                ext[tag].add(wall, cpu + workers_cpu + _cpu() - here)
                client_cpu[tag] = min(client_cpu[tag], cpu)
    best = f"best of {repeat}, " if repeat > 1 else ""
    print(
        f"load average {os.getloadavg()[0]:.1f} at the end; {best}CPU = all processes"
        " (for --scheduler: the client, the workers, and the scheduler and nannies here)"
    )
    print("| run | wall | x plain | CPU | x plain |")
    print("|---|---:|---:|---:|---:|")
    for tag in apes:
        p, lo, ex = plain[tag], local[tag], ext[tag]
        print(
            f"| plain{tag} (peak {p.peak / MIB:,.0f} MiB) | {p.wall:.2f} s | 1.00 |"
            f" {p.cpu:.2f} s | 1.00 |"
        )
        print(
            f"| --workers 2{tag} (starts its cluster) | {lo.wall:.2f} s | {lo.wall / p.wall:.2f} |"
            f" {lo.cpu:.2f} s | {lo.cpu / p.cpu:.2f} |"
        )
        print(
            f"| --scheduler{tag} (2 warm workers running) | {ex.wall:.2f} s |"
            f" {ex.wall / p.wall:.2f} | {ex.cpu:.2f} s (client {client_cpu[tag]:.2f}) |"
            f" {ex.cpu / p.cpu:.2f} |"
        )
    print(f"(the running cluster took {start_s:.1f} s to start in this process)")
    p, lo = plain[""], local[""]
    verdict = "met" if lo.wall <= TARGET_RATIO * p.wall else "NOT met"
    print(
        f"RATIO `ape run --workers 2` / plain: wall {lo.wall / p.wall:.2f}x"
        f" (target <= {TARGET_RATIO}x: {verdict}), CPU {lo.cpu / p.cpu:.2f}x"
    )


def memory(tmp: Path, patients: int, years: float) -> None:
    print(f"\n## 2. Memory, {patients:,} patients x {years:g} years on 2 workers")
    with _cluster() as cluster:
        from distributed import Client

        run = [
            "run",
            "-p",
            PROTOCOL,
            "-n",
            str(patients),
            "-y",
            str(years),
            "--seed",
            "42",
            "--scheduler",
            cluster.scheduler_address,
        ]
        wall, client_peak, _ = _ape(run, tmp / "mem")
        with Client(cluster.scheduler_address, set_as_default=False) as client:
            workers = client.run(_worker_peak)
    rows = _visit_rows(tmp / "mem")
    print(f"wall {wall:.1f} s, {rows:,} visit rows ({rows / wall:,.0f} rows/s)")
    print(
        f"client (ape run --scheduler): {client_peak / MIB:,.0f} MiB"
        f"  ({'met' if client_peak < TARGET_CLIENT else 'NOT met'}: < 1 GiB)"
    )
    for address, peak in sorted(workers.items()):
        ok = "met" if peak < TARGET_WORKER else "NOT met"
        print(f"worker {address}: {peak / MIB:,.0f} MiB  ({ok}: < 2 GiB)")


def _visit_rows(workspace: Path) -> int:
    import pyarrow.parquet as pq

    [path] = list(workspace.glob("sims/*/visits.parquet"))
    return int(pq.ParquetFile(path).metadata.num_rows)


def sweep(tmp: Path, draws: int, patients: int, years: float) -> None:
    from apesim import api

    print(f"\n## 3. Sweep of {draws} draws x {patients:,} patients x {years:g} years")
    text = (
        # The parameters varied are model 1.0's (mortality, per-visit vision change).
        f"protocol: {PROTOCOL}\npatients: {patients}\nyears: {years}\nseed: 7\n"
        f"draws: {draws}\nparameters:\n"
        "  disease.non_responder_share: {distribution: beta, alpha: 10, beta: 90}\n"
        "  vision.gain.at_reference: {distribution: normal, mean: 10.0, sd: 1.5}\n"
    )
    path = tmp / "sweep.yaml"
    path.write_text(text, encoding="utf-8")
    ws = api.Workspace(tmp / "one")
    params = api.SimulationParameters(patients=patients, years=years, seed=3)
    api.run_simulation(ws, PROTOCOL, params)  # warm-up
    started = time.perf_counter()
    for seed in range(5):
        api.run_simulation(ws, PROTOCOL, api.SimulationParameters(patients, years, seed))
    alone = (time.perf_counter() - started) / 5
    print(f"one draw alone (api.run_simulation): {alone:.3f} s")

    local_ws = api.Workspace(tmp / "sweep-local")
    plan = api.plan_sweep(local_ws, path)
    cpu0, started = _cpu(), time.perf_counter()
    api.run_sweep(local_ws, plan)
    local, local_cpu = time.perf_counter() - started, _cpu() - cpu0
    print(
        "| sweep | wall | draws/s | wall per draw beyond one alone | CPU per draw (all processes) |"
    )
    print("|---|---:|---:|---:|---:|")
    print(
        f"| one draw alone | {alone:.3f} s | | | |\n"
        f"| in this process | {local:.1f} s | {draws / local:.2f} |"
        f" {(local / draws - alone) * 1000:+.0f} ms | {local_cpu / draws:.3f} s |"
    )

    from distributed import Client

    with _cluster() as cluster, Client(cluster.scheduler_address, set_as_default=False) as c:
        c.run(_warm)
        before = c.run(_cpu)
        cluster_ws = api.Workspace(tmp / "sweep-cluster")
        cpu0, started = _cpu(), time.perf_counter()
        api.run_sweep(
            cluster_ws,
            api.plan_sweep(cluster_ws, path),
            cluster=api.ClusterOptions(scheduler=cluster.scheduler_address),
        )
        on, client_cpu = time.perf_counter() - started, _cpu() - cpu0
        workers_cpu = sum(v - before[k] for k, v in c.run(_cpu).items())
    print(
        f"| 2 workers (running) | {on:.1f} s | {draws / on:.2f} |"
        f" {(on / draws - alone / 2) * 1000:+.0f} ms (vs half a draw alone) |"
        f" {(client_cpu + workers_cpu) / draws:.3f} s (client {client_cpu / draws:.3f} s) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller memory case and sweep")
    parser.add_argument("--only", choices=("overhead", "memory", "sweep"), default=None)
    parser.add_argument("--memory-patients", type=int, default=None, help="patients of case 2")
    parser.add_argument("--repeat", type=int, default=1, help="runs of each command of case 1")
    parser.add_argument(
        "--before", type=Path, default=None, help="an earlier APE's src folder, for case 1"
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"# bench_distributed ({os.cpu_count()} cores, load average {load:.1f})")
    with tempfile.TemporaryDirectory(prefix="ape-bench-dist-") as tmp_name:
        tmp = Path(tmp_name)
        for sub in "oms":
            (tmp / sub).mkdir()
        if args.only in (None, "overhead"):
            overhead(tmp / "o", 1_000_000, 5.0, args.repeat, args.before)
        if args.only in (None, "memory"):
            default = 1_000_000 if args.quick else 10_000_000
            memory(tmp / "m", args.memory_patients or default, 10.0)
        if args.only in (None, "sweep"):
            sweep(tmp / "s", 40 if args.quick else 200, 10_000, 5.0)


if __name__ == "__main__":
    main()
