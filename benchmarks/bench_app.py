"""App benchmark: the Analysis Overview of a 1,000,000-patient simulation, cold.

A simulation (treat-and-extend, 5 years, seed 42) is run once with `ape run` into a
workspace (a temporary one, or `--workspace DIR`, reused when it already holds one of that
size). Each measurement is a fresh child process that drives the real app with Streamlit's
AppTest, as tests/app do: Home with the simulation selected, then the Analysis Overview
(its first run: tables read, summary, the Vision outcomes tab's analyses and charts), then
its Treatment patterns tab (first time). Peak memory is the child's resident high-water mark
(`ru_maxrss` from `wait4`: the interpreter, Streamlit, pandas and Plotly included).

Targets of issue 8: Overview under 1.5 s cold, under 1 GB peak, Treatment patterns under 1 s.

    .venv/bin/python benchmarks/bench_app.py
    .venv/bin/python benchmarks/bench_app.py --src /tmp/ape-before/src   # another checkout
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROTOCOL = "aflibercept_treat_and_extend"
YEARS = 5.0
SEED = 42
PATIENTS = 1_000_000
SRC = Path(__file__).resolve().parents[1] / "src"
TIMEOUT = 600  # seconds per script run

TARGET_OVERVIEW_S = 1.5
TARGET_PEAK_BYTES = 10**9
TARGET_TREATMENT_S = 1.0
MIB = 2**20


# -- the child process -----------------------------------------------------------------


def child(src: str, sim_id: str) -> dict[str, float]:
    """Home, then the Overview, then its Treatment patterns tab, each timed."""
    from streamlit.testing.v1 import AppTest

    home = Path(src) / "apesim" / "app" / "Home.py"
    at = AppTest.from_file(str(home), default_timeout=TIMEOUT)
    at.session_state["sim_id"] = sim_id
    timings: dict[str, float] = {}

    def timed(label: str) -> None:
        started = time.perf_counter()
        at.run()
        timings[label] = time.perf_counter() - started
        if at.exception:
            raise SystemExit(f"{label}: {at.exception}")

    timed("home")
    at.switch_page("pages/3_Analysis_Overview.py")
    timed("overview")
    charts = len(list(at.get("plotly_chart")))
    at.session_state["overview_tab"] = "Treatment patterns"
    timed("treatment")
    return {**timings, "charts": charts}


# -- the parent ------------------------------------------------------------------------


def ensure_simulation(root: Path, patients: int) -> str:
    """The id of a simulation of `patients` in the workspace at `root`, run if missing."""
    env = {**os.environ, "APE_WORKSPACE": str(root)}
    ape = str(Path(sys.executable).with_name("ape"))
    listed = subprocess.run([ape, "list", "--json"], env=env, capture_output=True, check=False)
    if listed.returncode == 0:
        for sim in json.loads(listed.stdout or "[]"):
            if sim.get("patients") == patients and sim.get("seed") == SEED:
                return str(sim["sim_id"])
    argv = [ape, "run", "-p", PROTOCOL, "-n", str(patients), "-y", str(YEARS), "-s", str(SEED)]
    out = subprocess.run([*argv, "--json"], env=env, capture_output=True, check=True)
    return str(json.loads(out.stdout)["simulation"]["sim_id"])


def measure(src: Path, root: Path, sim_id: str) -> tuple[dict[str, float], int]:
    """One fresh child: its timings and peak resident bytes."""
    env = {**os.environ, "APE_WORKSPACE": str(root), "PYTHONPATH": str(src)}
    argv = [sys.executable, __file__, "--child", str(src), sim_id]
    with tempfile.TemporaryFile() as out:
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"child failed: {stderr}")
        out.seek(0)
        return json.loads(out.read().decode().splitlines()[-1]), usage.ru_maxrss * 1024


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--patients", type=int, default=PATIENTS)
    parser.add_argument("--repeats", type=int, default=3, help="fresh children, best kept")
    parser.add_argument("--workspace", type=Path, help="reuse this workspace's simulation")
    parser.add_argument("--src", type=Path, default=SRC, help="the apesim source tree to run")
    parser.add_argument("--child", nargs=2, metavar=("SRC", "SIM_ID"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(child(*args.child)))
        return

    with tempfile.TemporaryDirectory(prefix="ape-bench-app-") as tmp:
        root = args.workspace or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        sim_id = ensure_simulation(root, args.patients)
        runs = [measure(args.src.resolve(), root, sim_id) for _ in range(args.repeats)]
    overview = min(t["overview"] for t, _ in runs)
    treatment = min(t["treatment"] for t, _ in runs)
    home = min(t["home"] for t, _ in runs)
    peak = min(p for _, p in runs)
    print(f"# `benchmarks/bench_app.py`: {args.patients:,} patients, {PROTOCOL}, {YEARS:g} years")
    print(f"# source: {args.src}; best of {args.repeats} fresh processes\n")
    print("| measure | figure | target |")
    print("|---|---:|---:|")
    print(f"| Home, first run | {home:.2f} s | – |")
    print(f"| Analysis Overview, first run (cold) | {overview:.2f} s | < {TARGET_OVERVIEW_S} s |")
    print(f"| Treatment patterns tab, first time | {treatment:.2f} s | < {TARGET_TREATMENT_S} s |")
    limit = f"< 1 GB ({TARGET_PEAK_BYTES / MIB:.0f} MiB)"
    print(f"| peak memory of the process | {peak / MIB:,.0f} MiB | {limit} |")
    print()
    print(f"- Overview cold: {verdict(overview < TARGET_OVERVIEW_S)} ({overview:.2f} s)")
    print(f"- Treatment patterns: {verdict(treatment < TARGET_TREATMENT_S)} ({treatment:.2f} s)")
    print(f"- Peak memory: {verdict(peak < TARGET_PEAK_BYTES)} ({peak / 10**9:.2f} GB)")


if __name__ == "__main__":
    main()
