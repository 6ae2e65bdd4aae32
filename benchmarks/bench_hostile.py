"""Benchmark of hostile packages: each is built for real at full size (a 1 GiB string in the
metadata table, an 800 MiB dictionary page, a 1 GiB DEFLATEd member at about 186:1, 300,000
empty row groups) and `ape verify` is run on it as a whole process; the table shows the
finding, the wall time and the process's peak resident memory (target: under 600 MB).

    python benchmarks/bench_hostile.py [--ape COMMAND] [--keep DIR]

`--ape "python -m apesim.cli"` with PYTHONPATH pointing at another checkout measures an
earlier version the same way. Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import io
import os
import shlex
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package
from apesim.package import format as fmt
from apesim.results.parquet_io import parquet_options
from apesim.workspace import Workspace

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.package.corpus import members, rebuild

GIB = 1024**3
TARGET = 600 * 1024 * 1024

_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    fd = os.open(os.devnull, os.O_WRONLY)
    os.dup2(fd, 1)
    os.execvp(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""


def _valid_package(root: Path) -> bytes:
    ws = Workspace(root / "ws")
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(2000, 2.0, 7), name="bench"
    )
    sink = io.BytesIO()
    export_package(ws, record.sim_id, sink, created=datetime(2026, 1, 1, tzinfo=UTC))
    return sink.getvalue()


def _with_table(package: bytes, name: str, change: Callable[[pa.Table], pa.Table]) -> bytes:
    files = members(package)
    table = change(pq.read_table(io.BytesIO(files[name]), use_threads=False))
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, **parquet_options(table.schema)) as writer:
        writer.write_table(table)
    files[name] = sink.getvalue()
    return rebuild(files)


def metadata_string_1gib(package: bytes) -> bytes:
    def change(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index("name")
        return table.set_column(i, table.schema.field(i), pa.array(["n" * GIB], pa.string()))

    return _with_table(package, fmt.METADATA, change)


def dictionary_page_800mib(package: bytes) -> bytes:
    def change(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index("state")
        states = table.column(i).combine_chunks()
        huge = pa.array(["NAIVE", "STABLE", "ACTIVE", "A" * (800 * 1024 * 1024)])
        odd = pa.DictionaryArray.from_arrays(states.indices, huge)
        return table.set_column(i, table.schema.field(i), odd)

    return _with_table(package, fmt.VISITS, change)


def empty_row_groups_300k(package: bytes) -> bytes:
    files = members(package)
    table = pq.read_table(io.BytesIO(files[fmt.PATIENTS]), use_threads=False)
    sink = io.BytesIO()
    empty = table.slice(0, 0)
    with pq.ParquetWriter(sink, table.schema, **parquet_options(table.schema)) as writer:
        writer.write_table(table)
        for _ in range(300_000):
            writer.write_table(empty)
    files[fmt.PATIENTS] = sink.getvalue()
    return rebuild(files)


def deflated_member_1gib(package: bytes) -> bytes:
    """The visits table padded to 1 GiB with bytes that deflate at about 186:1."""
    files = members(package)
    out = io.BytesIO()
    block = bytearray(64 * 1024)
    seed = os.urandom(100)
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            if name != fmt.VISITS:
                zf.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED)
                continue
            info.compress_type = zipfile.ZIP_DEFLATED
            with zf.open(info, "w", force_zip64=False) as member:
                member.write(data)
                written = len(data)
                while written < GIB - 4:
                    block[::820] = seed[: len(block[::820])]
                    piece = bytes(block[: min(len(block), GIB - 4 - written)])
                    member.write(piece)
                    written += len(piece)
                member.write(b"PAR1")
    return out.getvalue()


CASES: dict[str, Callable[[bytes], bytes]] = {
    "1 GiB string in the metadata table": metadata_string_1gib,
    "800 MiB dictionary page": dictionary_page_800mib,
    "1 GiB DEFLATEd member": deflated_member_1gib,
    "300,000 empty row groups": empty_row_groups_300k,
}


def verify(ape: list[str], path: Path, env: dict[str, str]) -> tuple[float, int, int, str]:
    """Wall seconds, peak resident bytes, exit code and stderr of `ape verify PATH`."""
    with tempfile.NamedTemporaryFile("r") as report, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", _LAUNCHER, report.name, *ape, "verify", str(path)],
            env=env,
            stderr=err,
            check=False,
        )
        elapsed = time.perf_counter() - start
        peak_kib, code = (int(v) for v in report.read().split())
        err.seek(0)
        return elapsed, peak_kib * 1024, code, err.read().strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ape", default=str(Path(sys.executable).with_name("ape")))
    parser.add_argument("--keep", type=Path, help="keep the built packages in this folder")
    args = parser.parse_args()
    ape = shlex.split(args.ape)
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        valid = _valid_package(root)
        env = {**os.environ, "APE_WORKSPACE": str(root / "verify-ws")}
        print(
            f"{'case':<36} {'file':>10} {'ratio':>7} {'exit':>4} {'wall':>7} {'peak':>9}  finding"
        )
        for label, build in CASES.items():
            path = root / (label.split()[0] + "_" + label.split()[-1] + ".zip")
            if not path.exists():
                path.write_bytes(build(valid))
            size = path.stat().st_size
            with zipfile.ZipFile(path) as zf:
                ratio = max(i.file_size / max(i.compress_size, 1) for i in zf.infolist())
            wall, peak, code, message = verify(ape, path, env)
            flag = "ok" if peak < TARGET and code == 2 else "OVER" if code == 2 else "ACCEPTED"
            print(
                f"{label:<36} {size / 2**20:>8.1f}MB {ratio:>6.0f}:1 {code:>4} {wall:>6.2f}s "
                f"{peak / 2**20:>7.0f}MB  {flag}: {message[:110]}"
            )


if __name__ == "__main__":
    main()
