"""Reading the files of an untrusted package: strict JSON, safe YAML, UTF-8 text and
Parquet under the read limits, each failure a `PackageError` with a stable finding code.
Shared by every format handler."""

from __future__ import annotations

import contextlib
import functools
import io
import queue
import threading
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from apesim.errors import (
    PackageError,
    PackageFormatError,
    PackageIntegrityError,
    PackageLimitError,
    PackageSecurityError,
)
from apesim.package import format as fmt
from apesim.package.parquet_layout import Leaf, check_layout
from apesim.results.parquet_io import write_table
from apesim.safeload import UnsafeTextError, load_json, load_yaml

# What each rule of the strict parsers becomes: the error class and the finding code.
_BATCH_ROWS = 1 << 20  # decoded sizes are checked after each batch of at most this many rows
_BATCH_BYTES = 64 * 1024 * 1024
_T = TypeVar("_T")

_JSON_FINDINGS: dict[str, tuple[type[PackageError], str]] = {
    "invalid": (PackageFormatError, "json.invalid"),
    "duplicate_key": (PackageFormatError, "json.duplicate_key"),
    "nonfinite": (PackageFormatError, "json.nonfinite"),
    "depth": (PackageLimitError, "limit.depth"),
}
_YAML_FINDINGS: dict[str, tuple[type[PackageError], str]] = {
    "invalid": (PackageFormatError, "yaml.invalid"),
    "duplicate_key": (PackageFormatError, "yaml.invalid"),
    "alias": (PackageSecurityError, "yaml.alias"),
    "depth": (PackageLimitError, "limit.depth"),
}


def _finding(
    name: str, exc: UnsafeTextError, findings: dict[str, tuple[type[PackageError], str]]
) -> PackageError:
    cls, code = findings.get(exc.kind, findings["invalid"])
    return cls(f"{name}: {exc}", code=code)


def strict_json(
    name: str, data: memoryview | bytes, limits: fmt.ReadLimits, *, nonfinite_as_null: bool = False
) -> Any:
    """JSON without duplicate keys, NaN/Infinity (unless read as null) or deep nesting."""
    try:
        return load_json(
            bytes(data), max_depth=limits.max_depth, nonfinite_as_null=nonfinite_as_null
        )
    except UnsafeTextError as exc:
        raise _finding(name, exc, _JSON_FINDINGS) from None


def strict_text(name: str, data: memoryview | bytes) -> str:
    """The file as UTF-8 text."""
    try:
        return bytes(data).decode("utf-8")
    except UnicodeDecodeError:
        raise PackageFormatError(f"{name}: not UTF-8 text", code="text.encoding") from None


def safe_yaml(name: str, text: str, limits: fmt.ReadLimits) -> Any:
    """YAML through the safe loader, without anchors, aliases or deep nesting."""
    try:
        return load_yaml(text, max_depth=limits.max_depth)
    except UnsafeTextError as exc:
        raise _finding(name, exc, _YAML_FINDINGS) from None


@functools.cache
def parquet_leaves(schema: pa.Schema) -> tuple[Leaf, ...]:
    """The columns as APE's writer lays out `schema` in Parquet: what a package's footer
    must declare, column by column (read from the footer of an empty table it writes; a
    table of no batches, as `Schema.empty_table` would load pandas)."""
    sink = io.BytesIO()
    write_table(sink, pa.Table.from_batches([], schema=schema))
    written = memoryview(sink.getvalue())
    return check_layout("(format)", written, fmt.ReadLimits(), max_rows=0).leaves


def read_parquet(
    name: str,
    data: memoryview,
    limits: fmt.ReadLimits,
    *,
    rows: int | None = None,
    max_rows: int | None = None,
    expected: pa.Schema | None = None,
    check_schema: Callable[[pa.Schema], None] | None = None,
) -> pa.Table:
    """A Parquet file read from memory as one table (see `open_parquet`)."""
    schema, batches = open_parquet(
        name,
        data,
        limits,
        rows=rows,
        max_rows=max_rows,
        expected=expected,
        check_schema=check_schema,
    )
    return pa.Table.from_batches(list(batches), schema=schema)


def open_parquet(
    name: str,
    data: memoryview,
    limits: fmt.ReadLimits,
    *,
    rows: int | None = None,
    max_rows: int | None = None,
    expected: pa.Schema | None = None,
    check_schema: Callable[[pa.Schema], None] | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """A Parquet file in memory, opened once its footer and page headers pass
    (`parquet_layout.check_layout`: the spec, the row limit, `max_rows` if given, and with
    `expected` the exact Parquet columns APE writes for that schema), its row count is the
    manifest's `rows`, the sizes its pages declare fit the decode budget, and (before any
    data is decoded) `check_schema` accepts its Arrow schema. Gives that schema and its
    batches, each validated in full (so its text is known to be UTF-8) as it is decoded;
    a batch is sized so that it bounds what it can hold, and the bytes actually decoded
    count against the budget. The next batch is decoded on a thread while the caller works
    on this one (Arrow decodes without holding the GIL)."""
    row_limit = limits.max_rows if max_rows is None else max_rows
    layout = check_layout(
        name,
        data,
        limits,
        max_rows=row_limit,
        expected=None if expected is None else parquet_leaves(expected),
    )
    if rows is not None and layout.rows != rows:
        raise PackageIntegrityError(
            f"{name}: {layout.rows:,} rows, but the manifest says {rows:,}",
            code="consistency.rows",
        )
    # Like a ZIP entry, a Parquet file may not inflate beyond the ratio limit (with a floor,
    # so that small files of constant columns stay readable).
    budget = min(
        limits.max_total_bytes, max(int(limits.max_ratio * len(data)), limits.min_parquet_budget)
    )
    too_big = (
        PackageLimitError(
            f"{name}: decodes to more than {limits.max_total_bytes:,} bytes",
            code="limit.total_size",
        )
        if budget == limits.max_total_bytes
        else PackageLimitError(
            f"{name}: decodes to more than {limits.max_ratio:.0f} times its "
            f"{len(data):,} bytes (a decompression bomb?)",
            code="limit.ratio",
        )
    )
    if layout.decoded_at_most > budget:
        raise too_big
    # A dictionary value is copied into every row that uses it: a batch may hold at most
    # _BATCH_BYTES of fixed-width values and of the longest text value a row may repeat.
    row_bytes = layout.row_width + layout.largest_text_page
    batch_rows = max(1, min(_BATCH_ROWS, _BATCH_BYTES // max(row_bytes, 1)))
    with _unreadable(name):
        parquet = pq.ParquetFile(pa.BufferReader(pa.py_buffer(data)))
        schema = parquet.schema_arrow
    if check_schema is not None:
        check_schema(schema)

    def batches() -> Iterator[pa.RecordBatch]:
        decoded = read = 0
        with _unreadable(name):
            for batch in _ahead(parquet.iter_batches(batch_size=batch_rows, use_threads=True)):
                decoded += batch.nbytes
                if decoded > budget:
                    raise too_big
                batch.validate(full=True)  # e.g. that text is UTF-8, which reading does not check
                read += batch.num_rows
                yield batch
        if read != layout.rows:
            raise PackageFormatError(
                f"{name}: holds {read:,} rows, but its footer says {layout.rows:,}",
                code="parquet.invalid",
            )

    return schema, batches()


@contextlib.contextmanager
def _unreadable(name: str) -> Iterator[None]:
    """Arrow's failures to read a file as `parquet.invalid` findings; but a failure at the
    memory limit of the reader's worker (Arrow reports some failed allocations as I/O
    errors) is the limit reached, not a fault of the file: a `MemoryError`."""
    try:
        yield
    except PackageError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        if isinstance(exc, pa.ArrowMemoryError) or _at_memory_limit():
            raise MemoryError(f"{name}: the reader's memory limit was reached ({exc})") from None
        raise PackageFormatError(
            f"{name}: unreadable Parquet ({exc})", code="parquet.invalid"
        ) from None


_LIMIT_MARGIN = 64 * 1024 * 1024  # address space left when a failure counts as the limit's


def _at_memory_limit() -> bool:
    """Whether this process's address space is within `_LIMIT_MARGIN` of its limit (the
    reader's worker runs under one: `isolation._limit_resources`)."""
    try:
        import resource

        limit, _ = resource.getrlimit(resource.RLIMIT_AS)
        if limit == resource.RLIM_INFINITY:
            return False
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024 + _LIMIT_MARGIN > limit
    except (ImportError, OSError, ValueError):
        pass
    return False


_AHEAD = 1  # batches decoded ahead of the caller


def _ahead(items: Iterator[_T]) -> Iterator[_T]:
    """`items` produced on a thread, `_AHEAD` ahead of the consumer; an exception there is
    raised here, and a consumer that stops early stops the thread (joined before return)."""
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=_AHEAD)
    stop = threading.Event()

    def put(item: tuple[bool, Any]) -> bool:
        while not stop.is_set():
            try:
                slots.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            put((False, exc))
            return
        put((False, None))

    worker = threading.Thread(target=produce, name="ape-parquet-decode", daemon=True)
    worker.start()
    try:
        while True:
            more, item = slots.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        worker.join()
