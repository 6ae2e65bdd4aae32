"""Engine benchmark: visit rows per second, whole-process wall time and peak memory.

For 10,000, 100,000 and 1,000,000 patients x 5 years of the treat-and-extend protocol (model
2.0; `--protocol v1_aflibercept_treat_and_extend` measures model 1.0):

- engine alone: `apesim.engine.simulate`, chunks produced and dropped (nothing stored);
- with storing: `apesim.api.run_simulation` into a fresh temporary workspace (Parquet,
  summary statistics, metadata, audit trail, registry), protocol loading included;
- `ape run`: the installed command as a subprocess, wall time of the whole process
  (interpreter start, imports, run, store, JSON output) and its peak resident memory.

Each measurement runs in a fresh child process so that peak memory (ru_maxrss from wait4)
belongs to that case alone. The figures are compared with the earlier APE engine (174,000
visit rows for 10,000 patients x 5 years in 4.3 s, 7.3 s with writing) and with the targets
of issue 2.

    .venv/bin/python benchmarks/bench_engine.py            # all three sizes
    .venv/bin/python benchmarks/bench_engine.py --quick    # skip 1,000,000 patients
    .venv/bin/python benchmarks/bench_engine.py --before /tmp/ape-before/src  # and its `ape run`

It also prints `ape run` as a ratio to its lower bound measured in the same run (issue 8):
the engine alone plus writing its tables alone (the chunks simulated first, then written
into the two Parquet files by `TableWriter`, timed), with `--before` an earlier APE's
`ape run` beside it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# The protocol measured; children inherit it through the environment.
PROTOCOL = os.environ.get("APE_BENCH_PROTOCOL", "aflibercept_treat_and_extend")
YEARS = 5.0
SEED = 42
SIZES = (10_000, 100_000, 1_000_000)

# The earlier APE engine, 10,000 patients x 5 years: 174,000 visit rows.
EARLIER_ROWS = 174_000
EARLIER_ENGINE_S = 4.3
EARLIER_STORED_S = 7.3
EARLIER_ENGINE_RATE = EARLIER_ROWS / EARLIER_ENGINE_S  # about 40,000 rows/s
EARLIER_STORED_RATE = EARLIER_ROWS / EARLIER_STORED_S  # about 24,000 rows/s

# Targets on a 2-core machine: issue 13 (model 2.0) raised issue 2's 1,000,000 rows/s and 5 s.
TARGET_ENGINE_RATE = 2_000_000  # visit rows per second, engine alone, 100,000 x 5 years
TARGET_APE_RUN_S = 3.0  # `ape run` of 100,000 patients x 5 years, whole process
TARGET_PEAK_BYTES = 1.5 * 2**30  # 1,000,000 patients x 5 years

MIB = 2**20
# In-process figures are taken after a run of this many patients, so that they measure the
# engine and the store rather than the first call's one-off set-up in a fresh interpreter
# (about 0.2 s, which the whole-process `ape run` figure includes).
WARM_UP = 1_000


# -- the child processes ---------------------------------------------------------------


def child_engine(patients: int) -> dict[str, float]:
    from apesim.engine import SimulationParameters, simulate
    from apesim.engine.tables import compile_protocol
    from apesim.protocol import resolve_protocol

    cp = compile_protocol(resolve_protocol(PROTOCOL).protocol)
    warm_up = SimulationParameters(patients=WARM_UP, years=YEARS, seed=SEED + 1)
    sum(chunk.visits.num_rows for chunk in simulate(cp, warm_up))
    params = SimulationParameters(patients=patients, years=YEARS, seed=SEED)
    started = time.perf_counter()
    rows = sum(chunk.visits.num_rows for chunk in simulate(cp, params))
    return {"rows": rows, "seconds": time.perf_counter() - started}


def child_store(patients: int) -> dict[str, float]:
    from apesim import api
    from apesim.engine import SimulationParameters
    from apesim.workspace import Workspace

    params = SimulationParameters(patients=patients, years=YEARS, seed=SEED)
    with tempfile.TemporaryDirectory(prefix="ape-bench-") as root:
        ws = Workspace(root)
        warm_up = SimulationParameters(patients=WARM_UP, years=YEARS, seed=SEED + 1)
        api.run_simulation(ws, PROTOCOL, warm_up)
        started = time.perf_counter()
        record = api.run_simulation(ws, PROTOCOL, params)
        seconds = time.perf_counter() - started
        rows = api.load_simulation(ws, record.sim_id).summary["visits"]
    return {"rows": rows, "seconds": seconds}


def child_write(patients: int) -> dict[str, float]:
    """Writing alone: the run's chunks, simulated first (not timed), written into the two
    Parquet files as `ape run` writes them."""
    from apesim.engine import SimulationParameters, simulate
    from apesim.engine.tables import compile_protocol
    from apesim.protocol import resolve_protocol
    from apesim.results.parquet_io import TableWriter
    from apesim.results.schema import PATIENTS_SCHEMA, VISITS_SCHEMA

    cp = compile_protocol(resolve_protocol(PROTOCOL).protocol)
    chunks = list(simulate(cp, SimulationParameters(patients=patients, years=YEARS, seed=SEED)))
    with tempfile.TemporaryDirectory(prefix="ape-bench-") as root:
        started = time.perf_counter()
        with (
            TableWriter(Path(root) / "patients.parquet", PATIENTS_SCHEMA) as pw,
            TableWriter(Path(root) / "visits.parquet", VISITS_SCHEMA) as vw,
        ):
            for chunk in chunks:
                pw.write(chunk.patients)
                vw.write(chunk.visits)
        seconds = time.perf_counter() - started
    return {"rows": sum(c.visits.num_rows for c in chunks), "seconds": seconds}


CHILDREN = {"engine": child_engine, "store": child_store, "write": child_write}
# `ape run` at most this many times the engine alone plus writing its tables (issue 8).
TARGET_RUN_RATIO = 1.3


# -- measuring -------------------------------------------------------------------------


@dataclass(frozen=True)
class Measured:
    seconds: float  # as reported by the child (engine, store) or wall time (ape run)
    rows: int
    peak_bytes: int  # the child's peak resident memory


def spawn(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, int, str]:
    """Run a child to completion: (wall seconds, peak RSS bytes, stdout)."""
    with tempfile.TemporaryFile() as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.PIPE, env=env)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        stderr = proc.stderr.read().decode() if proc.stderr else ""
        if proc.returncode != 0:
            raise SystemExit(f"child failed ({proc.returncode}): {' '.join(argv)}\n{stderr}")
        out.seek(0)
        return wall, usage.ru_maxrss * 1024, out.read().decode()


def measure_child(kind: str, patients: int) -> Measured:
    _, peak, stdout = spawn([sys.executable, __file__, "--child", kind, str(patients)])
    result = json.loads(stdout)
    return Measured(result["seconds"], int(result["rows"]), peak)


def measure_ape_run(patients: int, src: Path | None = None) -> Measured:
    """`ape run` as a whole process; with `src`, that source tree's (an earlier APE)."""
    ape = Path(sys.executable).with_name("ape")
    with tempfile.TemporaryDirectory(prefix="ape-bench-") as root:
        env = {**os.environ, "APE_WORKSPACE": root}
        if src is not None:
            env["PYTHONPATH"] = str(src)
        argv = [str(ape), "run", "-p", PROTOCOL, "-n", str(patients), "-y", str(YEARS)]
        wall, peak, stdout = spawn([*argv, "-s", str(SEED), "--json"], env)
    return Measured(wall, int(json.loads(stdout)["summary"]["visits"]), peak)


def best(kind: str, patients: int, repeats: int, before: Path | None = None) -> Measured:
    """The fastest of `repeats` runs (peak memory of that run)."""
    runs = [
        measure_ape_run(patients, before if kind == "before" else None)
        if kind in ("ape", "before")
        else measure_child(kind, patients)
        for _ in range(repeats)
    ]
    return min(runs, key=lambda m: m.seconds)


# -- reporting -------------------------------------------------------------------------


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import numpy
    import pyarrow

    return (
        f"{cpu}, {os.cpu_count()} cores; Python {platform.python_version()}, "
        f"numpy {numpy.__version__}, pyarrow {pyarrow.__version__}"
    )


def compare(protocol: str, other: str, sizes: tuple[int, ...], repeats: int) -> None:
    """The engine alone for two protocols, run after run in turn (so a loaded machine slows
    both alike), best of `repeats` each, and the ratio of their rates."""
    from apesim.engine.models import model_for
    from apesim.protocol import resolve_protocol

    label = {p: model_for(resolve_protocol(p).protocol).label for p in (protocol, other)}
    print(f"# engine alone, {YEARS:g} years, seed {SEED}, best of {repeats}, interleaved")
    print(f"# {machine()}\n")
    print(f"| patients | {protocol} ({label[protocol]}) | {other} ({label[other]}) | ratio |")
    print("|---:|---:|---:|---:|")
    for n in sizes:
        runs: dict[str, list[Measured]] = {protocol: [], other: []}
        for _ in range(repeats if n < 1_000_000 else 1):
            for p in (protocol, other):
                os.environ["APE_BENCH_PROTOCOL"] = p
                runs[p].append(measure_child("engine", n))
        os.environ["APE_BENCH_PROTOCOL"] = protocol
        a, b = (min(runs[p], key=lambda m: m.seconds) for p in (protocol, other))
        rate_a, rate_b = a.rows / a.seconds, b.rows / b.seconds
        print(
            f"| {n:,} | {rate_a:,.0f} rows/s ({a.rows:,} rows, {a.seconds:.2f} s) "
            f"| {rate_b:,.0f} rows/s ({b.rows:,} rows, {b.seconds:.2f} s) "
            f"| {rate_a / rate_b:.2f} |",
            flush=True,
        )


def verdict(ok: bool) -> str:
    return "**met**" if ok else "**NOT met**"


def main() -> None:
    global PROTOCOL
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip 1,000,000 patients")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case, best kept")
    parser.add_argument(
        "--before", type=Path, help="an earlier APE's src folder: its `ape run` in the same run"
    )
    parser.add_argument("--protocol", default=PROTOCOL, help="shipped protocol to measure")
    parser.add_argument(
        "--compare",
        metavar="PROTOCOL",
        help="only the engine alone, this protocol and --protocol interleaved, with their ratio",
    )
    parser.add_argument("--child", nargs=2, metavar=("KIND", "PATIENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, patients = args.child
        print(json.dumps(CHILDREN[kind](int(patients))))
        return

    PROTOCOL = os.environ["APE_BENCH_PROTOCOL"] = args.protocol
    from apesim.engine.models import model_for
    from apesim.protocol import resolve_protocol

    model = model_for(resolve_protocol(PROTOCOL).protocol)
    sizes = SIZES[:2] if args.quick else SIZES
    if args.compare:
        compare(PROTOCOL, args.compare, sizes, args.repeats)
        return
    command = "benchmarks/bench_engine.py" + (" --quick" if args.quick else "")
    print(f"# `{command}`: {PROTOCOL} ({model.label}), {YEARS:g} years, seed {SEED}")
    print(f"# {machine()}\n")
    print(
        "| patients | visit rows | engine alone: rows/s (s) | vs earlier | "
        "with storing: rows/s (s) | vs earlier | `ape run` wall | `ape run` peak memory | "
        "engine peak memory |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    results: dict[int, dict[str, Measured]] = {}
    for n in sizes:
        repeats = args.repeats if n < 1_000_000 else 1
        engine = best("engine", n, repeats)
        store = best("store", n, repeats)
        run = best("ape", n, repeats)
        assert engine.rows == store.rows == run.rows, "the three runs simulate the same rows"
        results[n] = {"engine": engine, "store": store, "ape": run}
        engine_rate = engine.rows / engine.seconds
        store_rate = store.rows / store.seconds
        engine_x = engine_rate / EARLIER_ENGINE_RATE
        store_x = store_rate / EARLIER_STORED_RATE
        print(
            f"| {n:,} | {engine.rows:,} "
            f"| {engine_rate:,.0f} ({engine.seconds:.2f} s) | {engine_x:.0f}x "
            f"| {store_rate:,.0f} ({store.seconds:.2f} s) | {store_x:.0f}x "
            f"| {run.seconds:.2f} s | {run.peak_bytes / MIB:,.0f} MiB "
            f"| {engine.peak_bytes / MIB:,.0f} MiB |",
            flush=True,
        )

    print(
        "\n`ape run` against its lower bound, measured in the same run: the engine alone plus "
        "writing its two Parquet tables (each in a fresh process, best of the repeats)."
        + (f" Before: `ape run` of {args.before}." if args.before else "")
        + "\n"
    )
    print(
        "| patients | engine alone | writing alone | lower bound | `ape run` | ratio |"
        + (" `ape run` before | ratio before |" if args.before else "")
    )
    print("|---:|---:|---:|---:|---:|---:|" + ("---:|---:|" if args.before else ""))
    ratios: dict[int, float] = {}
    for n in sizes:
        repeats = args.repeats if n < 1_000_000 else 1
        write = best("write", n, repeats)
        bound = results[n]["engine"].seconds + write.seconds
        run = results[n]["ape"]
        ratios[n] = run.seconds / bound
        line = (
            f"| {n:,} | {results[n]['engine'].seconds:.2f} s | {write.seconds:.2f} s "
            f"| {bound:.2f} s | {run.seconds:.2f} s | {ratios[n]:.2f}x |"
        )
        if args.before:
            earlier = best("before", n, repeats, args.before)
            line += f" {earlier.seconds:.2f} s | {earlier.seconds / bound:.2f}x |"
        print(line, flush=True)
    print(
        f"\n- `ape run` at most {TARGET_RUN_RATIO}x the engine alone plus writing: "
        + ", ".join(
            f"{n:,}: {verdict(r <= TARGET_RUN_RATIO)} ({r:.2f}x)" for n, r in ratios.items()
        )
    )
    print(
        f"\nEarlier APE engine, 10,000 x 5 years: {EARLIER_ROWS:,} rows in {EARLIER_ENGINE_S} s "
        f"= {EARLIER_ENGINE_RATE:,.0f} rows/s alone, {EARLIER_STORED_S} s "
        f"= {EARLIER_STORED_RATE:,.0f} rows/s with writing.\n"
    )
    rate_100k = results[100_000]["engine"].rows / results[100_000]["engine"].seconds
    slowest = min(r["engine"].rows / r["engine"].seconds for r in results.values())
    print(
        f"- Engine alone >= {TARGET_ENGINE_RATE:,} visit rows/s for 100,000 x 5 years: "
        f"{verdict(rate_100k >= TARGET_ENGINE_RATE)} ({rate_100k:,.0f} rows/s; slowest size "
        f"{slowest:,.0f})"
    )
    run_100k = results[100_000]["ape"].seconds
    print(
        f"- `ape run` 100,000 x 5 years under {TARGET_APE_RUN_S:g} s, whole process: "
        f"{verdict(run_100k < TARGET_APE_RUN_S)} ({run_100k:.2f} s)"
    )
    if 1_000_000 in results:
        peak = max(m.peak_bytes for m in results[1_000_000].values())
        print(
            f"- 1,000,000 x 5 years peak memory under 1.5 GiB: "
            f"{verdict(peak < TARGET_PEAK_BYTES)} (highest of the three: {peak / MIB:,.0f} MiB)"
        )
    else:
        print("- 1,000,000 x 5 years peak memory: not measured (--quick)")


if __name__ == "__main__":
    main()
