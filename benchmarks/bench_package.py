"""Benchmark of simulation packages: `ape export`, `ape import` and `ape verify` as whole
processes, each beside its lower bound measured in the same run, with peak memory and the
package size against the tables' in-memory footprint.

    python benchmarks/bench_package.py [--quick] [--sizes 10000,100000] [--repeat N]
                                       [--before SRC]

The lower bound of a command is the unavoidable work, done by a minimal Python process (the
standard library, and pyarrow without pandas to decode): *export* = read the package's
members, hash them, write the ZIP as the format writes it (Parquet stored, text deflated at
level 9, the preview CSV among them, handed over ready-made: building it from the patients
table is counted against APE); *import* = read the package, hash it and each entry, fully
decode the Parquet tables, write the folder; *verify* = the same without writing. The export
bound of earlier runs (the simulation folder's files only, text at zlib's default level, no
preview) is printed too: it left out the bytes the format requires, the preview's level-9
deflate above all (0.5 s of a 100,000-patient export).
With `--before SRC` (the `src` folder of an earlier APE, e.g. `git archive REV src | tar -x
-C /tmp/before`), that APE's `ape export`, `ape import` and `ape verify` run in the same run,
interleaved with the current ones, so both share the machine's load.
Python's compiled bytecode is cached for the commands (in a temporary PYTHONPYCACHEPREFIX),
as an installed APE has it; `--no-cache` compiles APE's modules in every process, as every
figure taken before 2026-11-30 04:00 did on this machine (PYTHONDONTWRITEBYTECODE is set
here): about 0.3 s of each `ape import`. The first run of each command fills the cache, so
take `--repeat` of at least 2.
Each figure is the best of `--repeat` runs (6 unless given; wall and CPU time separately;
CPU = user plus system time of the whole process tree, from wait4). On this virtual machine
fresh memory sometimes costs up to a second of system time, so a figure of few runs can be
far from its least, a bound's included (which flatters a ratio). Prints one row per
population (patients x 5 years, treat-and-extend), the ratios, and whether each target
(issues 3 and 8) holds. Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package, import_package, inspect_package
from apesim.workspace import Workspace

YEARS = 5.0
APE = str(Path(sys.executable).with_name("ape"))
GIB = 1024**3

# The lower bound of `ape export`: read the package's members, hash them, write the ZIP as the
# format writes it (Parquet stored, the rest deflated at level 9).
_EXPORT_BOUND = """
import hashlib, sys, zipfile
from pathlib import Path
folder, out = Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(out, "w") as zf:
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        if path.suffix == ".parquet":
            zf.writestr(path.name, data, compress_type=zipfile.ZIP_STORED)
        else:
            zf.writestr(path.name, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
"""

# The export bound of earlier runs: the simulation folder's files only, zlib's default level.
_EXPORT_BOUND_FOLDER = """
import hashlib, sys, zipfile
from pathlib import Path
folder, out = Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(out, "w") as zf:
    for path in sorted(folder.iterdir()):
        data = path.read_bytes()
        hashlib.sha256(data).hexdigest()
        parquet = path.suffix == ".parquet"
        method = zipfile.ZIP_STORED if parquet else zipfile.ZIP_DEFLATED
        zf.writestr(path.name, data, compress_type=method)
"""

# The lower bound of `ape import` (with a folder) and `ape verify` (without): read the
# package, hash it and each entry, decode every Parquet table in full, write the entries.
_IMPORT_BOUND = """
import hashlib, io, sys, zipfile
from pathlib import Path
import pyarrow as pa, pyarrow.parquet as pq
package = Path(sys.argv[1]).read_bytes()
hashlib.sha256(package).hexdigest()
folder = Path(sys.argv[2]) if len(sys.argv) > 2 else None
if folder is not None:
    folder.mkdir()
tables = []
with zipfile.ZipFile(io.BytesIO(package)) as zf:
    for info in zf.infolist():
        data = zf.read(info)
        hashlib.sha256(data).hexdigest()
        if info.filename.endswith(".parquet"):
            tables.append(pq.ParquetFile(pa.BufferReader(data)).read())
        if folder is not None:
            (folder / info.filename.replace("/", "_")).write_bytes(data)
# Ended without the interpreter's shutdown: after a threaded read from memory, pyarrow 26's
# threads can abort it ("terminate called without an active exception").
import os
os._exit(0)
"""

# The memory the reader's worker adds at its peak, asked of a fresh process.
_READER_PEAK = """
import sys
from apesim.package import inspect_package
print(inspect_package(sys.argv[1]).reader_peak_bytes or 0)
"""

# A small launcher forks the command and reports its peak memory and CPU time: the
# benchmark's own process holds large tables, and a child forked from it would count them
# in its peak (Linux keeps the high-water mark across fork and exec).
_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    cpu = usage.ru_utime + usage.ru_stime
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)} {cpu}")
"""

# The CLI of a given source folder, started as the `ape` script starts it.
_APE_OF = "import sys; sys.path.insert(0, sys.argv.pop(1)); from apesim.cli import main; main()"


@dataclass
class Timed:
    seconds: float
    peak: int  # resident bytes
    cpu: float = 0.0  # user + system seconds of the process tree


@dataclass
class Row:
    patients: int
    visits: int
    pandas_bytes: int
    decoded_bytes: int  # the Arrow tables decoded from the package
    package_bytes: int
    export_api_s: float
    export_cli: Timed
    export_bound: Timed
    export_bound_folder: Timed
    import_api_s: float
    inspect_in_process_s: float
    inspect_worker_s: float
    import_cli: Timed
    import_bound: Timed
    verify_cli: Timed
    verify_bound: Timed
    reader_peak: int  # the memory the reader's worker added at its peak (decoding the tables)
    before: dict[str, Timed]  # the earlier APE's commands (with --before)

    @property
    def import_peak_total(self) -> int:
        """`ape import` forks its reader and waits for it, so the process's peak from wait4
        is the larger of the two, and the worker's counts the pages it shares with ape."""
        return self.import_cli.peak

    @property
    def bytes_per_visit(self) -> float:
        return self.package_bytes / self.visits

    @property
    def share_of_memory(self) -> float:
        return self.package_bytes / self.pandas_bytes


def _timed_process(args: list[str], env: dict[str, str] | None = None) -> Timed:
    """Wall seconds, peak resident bytes and CPU seconds of a whole process."""
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, report.name, *args],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        elapsed = time.perf_counter() - start
        peak_kib, code, cpu = report.read().split()
    if int(code) != 0:
        raise RuntimeError(f"{' '.join(args[:2])} failed with exit code {code}")
    return Timed(elapsed, int(peak_kib) * 1024, float(cpu))


def _best(runs: int, measure: object) -> Timed:
    """The fastest of `runs` measurements (wall and CPU each their best; peak: the largest)."""
    assert callable(measure)
    results = [measure() for _ in range(runs)]
    return Timed(
        min(r.seconds for r in results), max(r.peak for r in results), min(r.cpu for r in results)
    )


def _interleaved(runs: int, measures: dict[str, object]) -> dict[str, Timed]:
    """`_best` of each measurement, their runs interleaved so that they share the load."""
    results: dict[str, list[Timed]] = {name: [] for name in measures}
    for _ in range(runs):
        for name, measure in measures.items():
            assert callable(measure)
            results[name].append(measure())
    return {
        name: Timed(
            min(r.seconds for r in found), max(r.peak for r in found), min(r.cpu for r in found)
        )
        for name, found in results.items()
    }


def _seconds(runs: int, work: object) -> float:
    assert callable(work)
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        work()
        best = min(best, time.perf_counter() - start)
    return best


def _bound_members(package: Path, target: Path) -> Path:
    """The package's members as files, for the export bound (the simulation folder's files
    are among them byte for byte; the rest is what export writes from memory)."""
    target.mkdir()
    with zipfile.ZipFile(package) as zf:
        for name in zf.namelist():
            (target / name.replace("/", "_")).write_bytes(zf.read(name))
    return target


def measure(patients: int, root: Path, runs: int, before: Path | None = None) -> Row:
    source = Workspace(root / "source")
    record = api.run_simulation(
        source, "aflibercept_treat_and_extend", SimulationParameters(patients, YEARS, 1)
    )
    sim = api.load_simulation(source, record.sim_id)
    pandas_bytes = sum(
        int(t.to_pandas().memory_usage(deep=True).sum()) for t in (sim.patients, sim.visits)
    )
    decoded_bytes = sim.patients.nbytes + sim.visits.nbytes + sim.metadata.to_table().nbytes
    visits = sim.visits.num_rows
    folder = sim.folder
    del sim
    package = root / "api.zip"
    count = iter(range(1_000_000))

    def fresh(name: str) -> Path:
        return root / f"{name}-{next(count)}"

    export_api = _seconds(runs, lambda: export_package(source, record.sim_id, fresh("e")))
    exported = export_package(source, record.sim_id, package)
    members = _bound_members(package, root / "bound-members")
    env = {**os.environ, "APE_WORKSPACE": str(source.root)}

    def ape(src: Path | None) -> list[str]:
        return [APE] if src is None else [sys.executable, "-c", _APE_OF, str(src)]

    def export_cli(src: Path | None = None) -> Timed:
        out = str(fresh("x.zip"))
        return _timed_process([*ape(src), "export", record.sim_id, "-o", out], env)

    def ape_import(src: Path | None = None) -> Timed:
        env = {**os.environ, "APE_WORKSPACE": str(fresh("target-cli"))}
        return _timed_process([*ape(src), "import", str(package)], env)

    verify_env = {**os.environ, "APE_WORKSPACE": str(root / "verify-ws")}

    def verify_cli(src: Path | None = None) -> Timed:
        return _timed_process([*ape(src), "verify", str(package)], verify_env)

    exports: dict[str, object] = {
        "cli": export_cli,
        "bound": lambda: _timed_process(
            [sys.executable, "-c", _EXPORT_BOUND, str(members), str(fresh("bound.zip"))]
        ),
        "bound_folder": lambda: _timed_process(
            [sys.executable, "-c", _EXPORT_BOUND_FOLDER, str(folder), str(fresh("bound.zip"))]
        ),
    }
    imports: dict[str, object] = {
        "cli": ape_import,
        "bound": lambda: _timed_process(
            [sys.executable, "-c", _IMPORT_BOUND, str(package), str(fresh("bound-folder"))]
        ),
    }
    verifies: dict[str, object] = {
        "cli": verify_cli,
        "bound": lambda: _timed_process([sys.executable, "-c", _IMPORT_BOUND, str(package)]),
    }
    if before is not None:
        exports["before"] = lambda: export_cli(before)
        imports["before"] = lambda: ape_import(before)
        verifies["before"] = lambda: verify_cli(before)
    export_runs = _interleaved(runs, exports)

    import_api = _seconds(runs, lambda: import_package(Workspace(fresh("target-api")), package))
    inspect_package(package)  # the fork server, started once per process
    in_process = _seconds(runs, lambda: inspect_package(package, isolate=False))
    worker = _seconds(runs, lambda: inspect_package(package))
    import_runs = _interleaved(runs, imports)
    verify_runs = _interleaved(runs, verifies)
    before_runs = {
        name: found["before"]
        for name, found in (
            ("export", export_runs),
            ("import", import_runs),
            ("verify", verify_runs),
        )
        if "before" in found
    }
    # In a fresh process: a worker forked from this one would find memory already mapped.
    reader_peak = int(
        subprocess.run(
            [sys.executable, "-c", _READER_PEAK, str(package)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    return Row(
        patients,
        visits,
        pandas_bytes,
        decoded_bytes,
        exported.size,
        export_api,
        export_runs["cli"],
        export_runs["bound"],
        export_runs["bound_folder"],
        import_api,
        in_process,
        worker,
        import_runs["cli"],
        import_runs["bound"],
        verify_runs["cli"],
        verify_runs["bound"],
        reader_peak,
        before_runs,
    )


def _ratio(figure: Timed, bound: Timed) -> float:
    return figure.seconds / bound.seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="skip 1,000,000 patients")
    parser.add_argument("--sizes", help="comma-separated patient counts")
    parser.add_argument("--repeat", type=int, default=6, help="runs per figure (the best)")
    parser.add_argument("--before", type=Path, help="src folder of an earlier APE to compare")
    parser.add_argument(
        "--no-cache", action="store_true", help="compile APE's modules in every process"
    )
    args = parser.parse_args()
    if args.no_cache:
        os.environ["PYTHONDONTWRITEBYTECODE"] = "1"
    else:  # the commands (children) inherit it; this process has compiled what it imported
        os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
        cache = tempfile.mkdtemp(prefix="ape-bench-pycache-")
        atexit.register(shutil.rmtree, cache, ignore_errors=True)
        os.environ["PYTHONPYCACHEPREFIX"] = cache
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else [10_000, 100_000] + ([] if args.quick else [1_000_000])
    )

    rows = []
    for n in sizes:
        root = Path(tempfile.mkdtemp(prefix="ape-bench-package-"))
        try:
            rows.append(measure(n, root, args.repeat, args.before))
        finally:
            shutil.rmtree(root, ignore_errors=True)

    print(
        f"Packages of treat-and-extend simulations, {YEARS:g} years; "
        f"{os.cpu_count()} cores; python {sys.version.split()[0]}; best of {args.repeat}"
    )
    print(
        "| patients | visit rows | pandas in memory | decoded tables | package | bytes/visit row "
        "| package/memory |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.patients:,} | {r.visits:,} | {r.pandas_bytes / 1e6:,.1f} MB "
            f"| {r.decoded_bytes / 1e6:,.1f} MB | {r.package_bytes / 1e6:,.2f} MB "
            f"| {r.bytes_per_visit:.2f} | {r.share_of_memory:.1%} |"
        )
    print(
        "\n| patients | command | after: wall (CPU) | its bound: wall (CPU) | ratio wall (CPU) "
        "| peak | before: wall (CPU) | before: ratio wall (CPU) |"
    )
    print("|---:|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        for name, cli, bound in (
            ("`ape export`", r.export_cli, r.export_bound),
            ("`ape export`, folder-only bound", r.export_cli, r.export_bound_folder),
            ("`ape import`", r.import_cli, r.import_bound),
            ("`ape verify`", r.verify_cli, r.verify_bound),
        ):
            key = name.split()[1].strip("`,")
            earlier = r.before.get(key) if "folder" not in name else None
            shown = (
                f"{earlier.seconds:.2f} s ({earlier.cpu:.2f} s) | {_ratio(earlier, bound):.2f}x "
                f"({earlier.cpu / bound.cpu:.2f}x)"
                if earlier is not None
                else "| "
            )
            print(
                f"| {r.patients:,} | {name} | {cli.seconds:.2f} s ({cli.cpu:.2f} s) "
                f"| {bound.seconds:.2f} s ({bound.cpu:.2f} s) | {_ratio(cli, bound):.2f}x "
                f"({cli.cpu / bound.cpu:.2f}x) | {cli.peak / 1e6:,.0f} MB | {shown} |"
            )
    print("\n| patients | reader's peak (added by its worker) | decoded tables |")
    print("|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.patients:,} | {r.reader_peak / 1e6:,.0f} MB | {r.decoded_bytes / 1e6:,.0f} MB |"
        )
    print("\n| patients | export API | import API | inspect in process | inspect in the worker |")
    print("|---:|---:|---:|---:|---:|")
    for r in rows:
        print(
            f"| {r.patients:,} | {r.export_api_s:.2f} s | {r.import_api_s:.2f} s "
            f"| {r.inspect_in_process_s:.2f} s | {r.inspect_worker_s:.2f} s |"
        )

    print("\nTargets (issues 3, 8 and 11):")
    checks = [
        (f"{r.patients:,}: package under 20% of the in-memory footprint", r.share_of_memory < 0.20)
        for r in rows
    ]
    checks += [
        (f"{r.patients:,}: under 3 bytes per visit row (earlier APE: 3.5)", r.bytes_per_visit < 3.0)
        for r in rows
    ]
    checks += [  # issue 11: with format 1.1's README, datapackage.json and RO-Crate
        (f"{r.patients:,}: under 2.7 bytes per visit row (format 1.1)", r.bytes_per_visit < 2.7)
        for r in rows
    ]
    for r in rows:
        if r.patients == 100_000:
            checks += [
                ("100,000: `ape import` under 2 s as a whole process", r.import_cli.seconds < 2.0),
                (
                    "100,000: `ape export` at most 3x its lower bound "
                    f"({_ratio(r.export_cli, r.export_bound):.1f}x)",
                    _ratio(r.export_cli, r.export_bound) <= 3.0,
                ),
            ]
        if r.patients == 1_000_000:
            export, imp, ver = (
                _ratio(r.export_cli, r.export_bound),
                _ratio(r.import_cli, r.import_bound),
                _ratio(r.verify_cli, r.verify_bound),
            )
            checks += [
                ("1,000,000: `ape import` under 10 s", r.import_cli.seconds < 10.0),
                (
                    "1,000,000: `ape import` peak memory under 2 GiB (with its reader)",
                    r.import_peak_total < 2 * GIB,
                ),
                (
                    f"1,000,000: `ape export` at most 2x its lower bound ({export:.1f}x)",
                    export <= 2,
                ),
                (f"1,000,000: `ape import` at most 1.3x its lower bound ({imp:.2f}x)", imp <= 1.3),
                (f"1,000,000: `ape verify` at most 1.3x its lower bound ({ver:.2f}x)", ver <= 1.3),
                (
                    "1,000,000: the reader's peak memory at most 2x the decoded tables "
                    f"({r.reader_peak / r.decoded_bytes:.1f}x)",
                    r.reader_peak <= 2 * r.decoded_bytes,
                ),
            ]
    for label, ok in checks:
        print(f"- {'met' if ok else 'NOT MET'}: {label}")


if __name__ == "__main__":
    main()
