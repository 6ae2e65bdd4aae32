"""Benchmark of the CLI's start: CPU time of `ape --help`, `ape list` and the start of
`ape export` as whole processes.

    python benchmarks/bench_cli.py [--runs 9] [--simulations 3] [--before DIR] [--no-cache]

Each command runs `--runs` times in a fresh process; the figure is the best run's user plus
system CPU time from `os.wait4` (interpreter start, imports and all), printed beside the
target of issue 8 (under 0.3 s) and the figure before that issue. `ape list` lists a
workspace holding `--simulations` small simulations, made by `ape run` in child processes so
that this process stays small and imports nothing of APE. *export start* is `ape export` of
a simulation that is not there: everything the command loads and does before it reads a
byte of a simulation (it exits 2 with its one-line error), the part of an export that does
not grow with the simulation.

Python's compiled bytecode is cached for the commands (in a temporary PYTHONPYCACHEPREFIX),
as an installed APE has it; with PYTHONDONTWRITEBYTECODE set (as on some machines) every
process would compile APE's modules again, about 0.1 s: `--no-cache` measures that way.

With `--before DIR`, the `src` folder of an earlier APE (e.g. `git archive 65b2454 src |
tar -x -C /tmp/before`, then `--before /tmp/before/src`), the earlier CLI runs in the same
benchmark, its processes interleaved with the current one's, so both figures share the
machine's load; without it the recorded figure is printed. Figures are recorded in
docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

APE = str(Path(sys.executable).with_name("ape"))
# Issue 8's target for --help and list; the start of export has none of its own (its whole
# process is held to 2x a lower bound by benchmarks/bench_package.py).
TARGET_CPU_S = {"ape --help": 0.3, "ape list": 0.3}
# Measured before issue 8 with this benchmark (2 cores, AMD EPYC, best of 9 on 2026-11-29;
# the 0.93 s for `ape --help` was taken on a busier machine).
BEFORE_CPU_S = {"ape --help": 0.55, "ape list": 0.50, "export start": 0.0}
# The CLI of a given source folder, started as the `ape` script starts it.
_LAUNCH = "import sys; sys.path.insert(0, sys.argv.pop(1)); from apesim.cli import main; main()"


@dataclass(frozen=True)
class Sample:
    cpu_s: float  # user + system
    wall_s: float
    peak_bytes: int


def run_once(args: list[str], env: dict[str, str], expect: int = 0) -> Sample:
    """One whole process: its CPU time, wall time and peak resident memory."""
    start = time.perf_counter()
    child = subprocess.Popen(
        args, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL if expect else None
    )
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != expect:
        raise RuntimeError(f"{' '.join(args)} failed with exit code {child.returncode}")
    return Sample(usage.ru_utime + usage.ru_stime, wall, usage.ru_maxrss * 1024)


def best(
    commands: list[list[str]], env: dict[str, str], runs: int, expect: int = 0
) -> list[Sample]:
    """For each command, the run with the least CPU time out of `runs` (the commands'
    processes interleaved)."""
    samples: list[list[Sample]] = [[] for _ in commands]
    for _ in range(runs):
        for i, args in enumerate(commands):
            samples[i].append(run_once(args, env, expect))
    return [min(found, key=lambda s: s.cpu_s) for found in samples]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=9, help="processes per command (best of)")
    parser.add_argument("--simulations", type=int, default=3, help="simulations to list")
    parser.add_argument("--before", type=Path, help="src folder of an earlier APE to compare")
    parser.add_argument(
        "--no-cache", action="store_true", help="compile APE's modules in every process"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ape-bench-cli-") as tmp:
        env = {**os.environ, "APE_WORKSPACE": str(Path(tmp) / "ws"), "COLUMNS": "120"}
        if args.no_cache:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
        else:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(Path(tmp) / "pycache")
        run = [APE, "run", "-p", "aflibercept_treat_and_extend", "-n", "100", "-y", "1"]
        for i in range(args.simulations):
            subprocess.run(
                [*run, "--seed", str(i), "--json"],
                env=env,
                check=True,
                stdout=subprocess.DEVNULL,
            )
        missing = ["export", "sim-not-there", "-o", str(Path(tmp) / "out") + "/"]
        commands = {"ape --help": ["--help"], "ape list": ["list"], "export start": missing}
        print(
            f"{'command':<12} {'CPU (best)':>10} {'target':>8} {'before':>8} {'wall':>8} "
            f"{'peak':>9}  target met"
        )
        all_met = True
        for label, argv in commands.items():
            runs = [[APE, *argv]]
            if args.before is not None:
                runs.append([sys.executable, "-c", _LAUNCH, str(args.before), *argv])
            sample, *earlier = best(runs, env, args.runs, expect=2 if argv == missing else 0)
            before = earlier[0].cpu_s if earlier else BEFORE_CPU_S[label]
            target = TARGET_CPU_S.get(label)
            met = target is None or sample.cpu_s < target
            all_met &= met
            print(
                f"{label:<12} {sample.cpu_s:>8.3f} s "
                + (f"{target:>6.1f} s " if target else f"{'–':>8} ")
                + (f"{before:>6.2f} s " if before else f"{'–':>8} ")
                + f"{sample.wall_s:>6.3f} s {sample.peak_bytes / 2**20:>5.0f} MiB  "
                + ("–" if target is None else "yes" if met else "NO")
            )
    source = "measured in this run" if args.before is not None else "recorded"
    cache = "compiled in every process" if args.no_cache else "bytecode cached"
    print(
        f"(best of {args.runs} processes each; CPU = user + system from os.wait4; before: "
        f"{source}; {cache})"
    )
    return 0 if all_met else 1


if __name__ == "__main__":
    sys.exit(main())
