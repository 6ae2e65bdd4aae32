"""Memory stays bounded on hostile packages: one process inspects every case of the corpus in
turn, in process (the reader's own child would hide its memory from this count), and its
peak resident memory stays under the target of 600 MB. The cases that decode to gigabytes
are refused from the footer, the page headers and the ZIP's headers, before anything is
allocated."""

from __future__ import annotations

import io
import json
import pickle
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from apesim.package import format as fmt
from apesim.results.parquet_io import parquet_options
from tests.package.corpus import CASES, members, rebuild

PEAK_LIMIT = 600 * 1024 * 1024

_CHILD = """
import json, pickle, sys
from pathlib import Path
from apesim.package import inspect_package


def high_water() -> int:
    # This process's own peak resident memory (VmHWM): unlike ru_maxrss, it does not carry
    # the peak of the process it was forked from.
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmHWM")


cases = pickle.loads(Path(sys.argv[1]).read_bytes())  # [(name, file, limits)]
findings, rises = {}, {}
for name, path, limits in cases:
    before = high_water()
    report = inspect_package(Path(path), limits=limits, isolate=False)
    findings[name] = None if report.error is None else report.error.code
    rises[name] = high_water() - before
worst = max(rises, key=rises.__getitem__)
print(json.dumps({"peak": high_water(), "findings": findings, "worst": worst}))
"""


def _huge_metadata_string(package: bytes, size: int) -> bytes:
    files = members(package)
    table = pq.read_table(io.BytesIO(files[fmt.METADATA]), use_threads=False)
    i = table.schema.get_field_index("name")
    huge = pa.array([b"n" * size], pa.binary()).cast(pa.string())
    table = table.set_column(i, table.schema.field(i), huge)
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, table.schema, **parquet_options(table.schema)) as writer:
        writer.write_table(table)
    files[fmt.METADATA] = sink.getvalue()
    return rebuild(files)


def test_every_corpus_case_is_refused_with_bounded_memory(
    valid_package: bytes, tmp_path: Path
) -> None:
    cases = []
    for case in CASES:  # built here, so that building them is not counted
        path = tmp_path / f"{case.name}.zip"
        path.write_bytes(case.build(valid_package))
        cases.append((case.name, str(path), case.limits))
    # One case at full size, which the corpus forges: a real 640 MiB string in the metadata
    # table (zstd makes it a few kB). Decoding it alone would pass the target.
    path = tmp_path / "real_640_mib_string.zip"
    path.write_bytes(_huge_metadata_string(valid_package, 640 << 20))
    cases.append(("real_640_mib_string", str(path), None))
    listing = tmp_path / "cases.pickle"
    listing.write_bytes(pickle.dumps(cases))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(listing)],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    expected = {c.name: c.code for c in CASES} | {"real_640_mib_string": "limit.parquet_page"}
    assert result["findings"] == expected
    peak = result["peak"] / 2**20
    assert result["peak"] < PEAK_LIMIT, f"peak {peak:.0f} MiB, most of it at {result['worst']}"
