"""Benchmark of simulation packages: export and import time (API and whole CLI process),
peak memory, package size against the tables' in-memory footprint as pandas DataFrames.

    python benchmarks/bench_package.py [--quick] [--sizes 10000,100000]

Prints one row per population (patients x 5 years, treat-and-extend) and whether each target
of issue 3 holds. Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package, import_package, inspect_package
from apesim.workspace import Workspace

YEARS = 5.0
APE = str(Path(sys.executable).with_name("ape"))
GIB = 1024**3


@dataclass
class Row:
    patients: int
    visits: int
    pandas_bytes: int
    package_bytes: int
    export_api_s: float
    export_cli_s: float
    export_cli_peak: int
    import_api_s: float
    import_cli_s: float
    import_cli_peak: int
    reader_peak: int  # the reader's worker process, which decodes the tables

    @property
    def import_peak_total(self) -> int:
        """`ape import` and its reader worker run at the same time."""
        return self.import_cli_peak + self.reader_peak

    @property
    def bytes_per_visit(self) -> float:
        return self.package_bytes / self.visits

    @property
    def share_of_memory(self) -> float:
        return self.package_bytes / self.pandas_bytes


# A small launcher forks the command and reports its peak memory: the benchmark's own process
# holds large tables, and a child forked from it would count them in its peak (Linux keeps
# the high-water mark across fork and exec).
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def _timed_process(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of a whole process."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, report.name, *args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - start
        peak_kib, code = (int(v) for v in report.read().split())
    if code != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed with exit code {code}")
    return elapsed, peak_kib * 1024


def measure(patients: int, root: Path) -> Row:
    source = Workspace(root / "source")
    record = api.run_simulation(
        source, "aflibercept_treat_and_extend", SimulationParameters(patients, YEARS, 1)
    )
    sim = api.load_simulation(source, record.sim_id)
    pandas_bytes = sum(
        int(t.to_pandas().memory_usage(deep=True).sum()) for t in (sim.patients, sim.visits)
    )
    visits = sim.visits.num_rows
    del sim

    start = time.perf_counter()
    exported = export_package(source, record.sim_id, root / "api.zip")
    export_api = time.perf_counter() - start

    env = {**os.environ, "APE_WORKSPACE": str(source.root)}
    export_cli, export_peak = _timed_process(
        [APE, "export", record.sim_id, "-o", str(root / "cli.zip")], env
    )

    start = time.perf_counter()
    import_package(Workspace(root / "target-api"), root / "api.zip")
    import_api = time.perf_counter() - start

    env = {**os.environ, "APE_WORKSPACE": str(root / "target-cli")}
    import_cli, import_peak = _timed_process([APE, "import", str(root / "api.zip")], env)
    reader_peak = inspect_package(root / "api.zip").reader_peak_bytes or 0
    return Row(
        patients,
        visits,
        pandas_bytes,
        exported.size,
        export_api,
        export_cli,
        export_peak,
        import_api,
        import_cli,
        import_peak,
        reader_peak,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip 1,000,000 patients")
    parser.add_argument("--sizes", help="comma-separated patient counts")
    args = parser.parse_args()
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else [10_000, 100_000] + ([] if args.quick else [1_000_000])
    )

    rows = []
    for n in sizes:
        root = Path(tempfile.mkdtemp(prefix="ape-bench-package-"))
        try:
            rows.append(measure(n, root))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    print(
        f"Packages of treat-and-extend simulations, {YEARS:g} years; "
        f"{os.cpu_count()} cores; python {sys.version.split()[0]}"
    )
    print(
        "| patients | visit rows | pandas in memory | package | bytes/visit row | package/memory "
        "| export API | export CLI (peak) | import API | import CLI (peak: ape + reader) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.patients:,} | {r.visits:,} | {r.pandas_bytes / 1e6:,.1f} MB "
            f"| {r.package_bytes / 1e6:,.2f} MB | {r.bytes_per_visit:.2f} "
            f"| {r.share_of_memory:.1%} | {r.export_api_s:.2f} s "
            f"| {r.export_cli_s:.2f} s ({r.export_cli_peak / 1e6:,.0f} MB) "
            f"| {r.import_api_s:.2f} s | {r.import_cli_s:.2f} s "
            f"({r.import_cli_peak / 1e6:,.0f} + {r.reader_peak / 1e6:,.0f} MB) |"
        )
    print("\nTargets (issue 3):")
    checks = [
        (f"{r.patients:,}: package under 20% of the in-memory footprint", r.share_of_memory < 0.20)
        for r in rows
    ]
    checks += [
        (f"{r.patients:,}: under 3 bytes per visit row (earlier APE: 3.5)", r.bytes_per_visit < 3.0)
        for r in rows
    ]
    for r in rows:
        if r.patients == 100_000:
            checks.append(
                ("100,000: `ape import` under 2 s as a whole process", r.import_cli_s < 2.0)
            )
        if r.patients == 1_000_000:
            checks.append(("1,000,000: `ape import` under 10 s", r.import_cli_s < 10.0))
            checks.append(
                (
                    "1,000,000: `ape import` peak memory under 2 GiB (with its reader)",
                    r.import_peak_total < 2 * GIB,
                )
            )
    for label, ok in checks:
        print(f"- {'met' if ok else 'NOT MET'}: {label}")


if __name__ == "__main__":
    main()
