"""Reading a package's Parquet files batch by batch: the next batch is decoded on a thread,
which never outlives the reading, whether it ends, fails or is abandoned; and reading loads
no pandas."""

from __future__ import annotations

import io
import subprocess
import sys
import threading
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from apesim.package import format as fmt
from apesim.package.content import _ahead, open_parquet, read_parquet

LIMITS = fmt.ReadLimits()


def parquet(rows: int, row_group: int) -> memoryview:
    sink = io.BytesIO()
    table = pa.table({"a": pa.array(range(rows), pa.int32())})
    pq.write_table(table, sink, row_group_size=row_group)
    return memoryview(sink.getvalue())


def decoding_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name == "ape-parquet-decode"]


def test_batches_come_in_order_and_whole() -> None:
    data = parquet(10_000, 1_000)
    schema, batches = open_parquet("t.parquet", data, LIMITS)
    values = [v for batch in batches for v in batch.column(0).to_pylist()]
    assert schema.names == ["a"] and values == list(range(10_000))
    assert read_parquet("t.parquet", data, LIMITS).num_rows == 10_000
    assert decoding_threads() == []


def test_a_reader_that_stops_early_stops_the_decoding_thread() -> None:
    _, batches = open_parquet("t.parquet", parquet(10_000, 100), LIMITS)
    next(batches)
    batches.close()  # (what a caller's exception does to the generator)
    assert decoding_threads() == []


def test_a_failure_on_the_thread_is_raised_to_the_reader() -> None:
    def failing() -> object:
        yield 1
        raise ValueError("broken page")

    got = []
    with pytest.raises(ValueError, match="broken page"):
        for item in _ahead(iter(failing())):  # type: ignore[arg-type]
            got.append(item)
    assert got == [1] and decoding_threads() == []


def test_reading_a_package_loads_no_pandas(valid_package: bytes, tmp_path: Path) -> None:
    """pyarrow's own conversions to numpy and from Python values load pandas (0.3 s of an
    import); the reader needs none of them."""
    package = tmp_path / "p.zip"
    package.write_bytes(valid_package)
    code = (
        "import sys; from apesim.package import inspect_package; "
        f"assert inspect_package({str(package)!r}, isolate=False).ok; "
        "print('pandas' in sys.modules)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
