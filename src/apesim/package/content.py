"""Reading the files of an untrusted package: strict JSON, safe YAML, UTF-8 text and
Parquet under the read limits, each failure a `PackageError` with a stable finding code.
Shared by every format handler."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

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
from apesim.safeload import UnsafeTextError, load_json, load_yaml

# What each rule of the strict parsers becomes: the error class and the finding code.
_BATCH_ROWS = 1 << 20  # decoded sizes are checked after each batch of this many rows

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


def read_parquet(
    name: str,
    data: memoryview,
    limits: fmt.ReadLimits,
    *,
    rows: int | None = None,
    max_rows: int | None = None,
    check_schema: Callable[[pa.Schema], None] | None = None,
) -> pa.Table:
    """A Parquet file read from memory once its footer passes: the magic bytes, the row
    limit (`max_rows`, else the limits'), the row count the manifest states and (before any
    data is decoded) `check_schema`. The footer's sizes are the writer's word, so the bytes
    actually decoded are counted batch by batch against the limit too. The table is
    validated in full, so its text is known to be UTF-8."""
    if bytes(data[:4]) != b"PAR1" or bytes(data[-4:]) != b"PAR1":
        raise PackageFormatError(f"{name}: not a Parquet file", code="parquet.invalid")
    row_limit = limits.max_rows if max_rows is None else max_rows
    too_big = PackageLimitError(
        f"{name}: decodes to more than {limits.max_total_bytes:,} bytes", code="limit.total_size"
    )
    try:
        parquet = pq.ParquetFile(pa.BufferReader(pa.py_buffer(data)))
        meta = parquet.metadata
        if meta.num_rows > row_limit:
            raise PackageLimitError(
                f"{name}: {meta.num_rows:,} rows exceeds the limit of {row_limit:,}",
                code="limit.rows",
            )
        if rows is not None and meta.num_rows != rows:
            raise PackageIntegrityError(
                f"{name}: {meta.num_rows:,} rows, but the manifest says {rows:,}",
                code="consistency.rows",
            )
        declared = sum(
            meta.row_group(g).column(c).total_uncompressed_size
            for g in range(meta.num_row_groups)
            for c in range(meta.num_columns)
        )
        if declared > limits.max_total_bytes:
            raise too_big
        if check_schema is not None:
            check_schema(parquet.schema_arrow)
        # Like a ZIP entry, a Parquet file may not inflate beyond the ratio limit (with a
        # floor, so that small files of constant columns stay readable).
        budget = min(
            limits.max_total_bytes,
            max(int(limits.max_ratio * len(data)), limits.min_parquet_budget),
        )
        batches, decoded = [], 0
        for batch in parquet.iter_batches(batch_size=_BATCH_ROWS):
            decoded += batch.nbytes
            if decoded > budget:
                raise (
                    too_big
                    if budget == limits.max_total_bytes
                    else PackageLimitError(
                        f"{name}: decodes to more than {limits.max_ratio:.0f} times its "
                        f"{len(data):,} bytes (a decompression bomb?)",
                        code="limit.ratio",
                    )
                )
            batches.append(batch)
        table = pa.Table.from_batches(batches, schema=parquet.schema_arrow)
        if table.num_rows != meta.num_rows:
            raise PackageFormatError(
                f"{name}: holds {table.num_rows:,} rows, but its footer says {meta.num_rows:,}",
                code="parquet.invalid",
            )
        table.validate(full=True)  # e.g. that text is UTF-8, which reading does not check
    except PackageError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise PackageFormatError(
            f"{name}: unreadable Parquet ({exc})", code="parquet.invalid"
        ) from None
    return table
