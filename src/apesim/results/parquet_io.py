"""Parquet reading and writing with the layout shared by the workspace and the package."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from apesim.results.schema import PARQUET_OPTIONS, ROW_GROUP_ROWS


def parquet_options(schema: pa.Schema) -> dict[str, Any]:
    """The writer options for a schema: dictionaries and encodings only for its columns."""
    names = set(schema.names)
    opts: dict[str, Any] = dict(PARQUET_OPTIONS)
    opts["use_dictionary"] = [c for c in PARQUET_OPTIONS["use_dictionary"] if c in names]
    opts["column_encoding"] = {
        c: e for c, e in PARQUET_OPTIONS["column_encoding"].items() if c in names
    }
    if not opts["column_encoding"]:
        del opts["column_encoding"]
    return opts


class TableWriter:
    """Writes a Parquet file from batches in row groups of a fixed size, so the file's bytes
    do not depend on how the batches were cut."""

    def __init__(
        self, path: Path | str | BinaryIO, schema: pa.Schema, row_group_rows: int = ROW_GROUP_ROWS
    ) -> None:
        self._writer = pq.ParquetWriter(path, schema, **parquet_options(schema))
        self._schema = schema
        self._pending: list[pa.Table] = []
        self._pending_rows = 0
        self._row_group_rows = row_group_rows
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        self._pending.append(table)
        self._pending_rows += table.num_rows
        self.rows += table.num_rows
        while self._pending_rows >= self._row_group_rows:
            self._flush(self._row_group_rows)

    def _flush(self, rows: int) -> None:
        combined = pa.concat_tables(self._pending).combine_chunks()
        head, tail = combined.slice(0, rows), combined.slice(rows)
        self._writer.write_table(head, row_group_size=rows)
        self._pending = [tail] if tail.num_rows else []
        self._pending_rows = tail.num_rows

    def close(self) -> None:
        if self._pending_rows:
            self._flush(self._pending_rows)
        self._writer.close()

    def abandon(self) -> None:
        """Close the file without writing what is pending, ignoring errors (after a failure:
        the file is incomplete and removed with its folder)."""
        self._pending, self._pending_rows = [], 0
        with contextlib.suppress(Exception):
            self._writer.close()

    def __enter__(self) -> TableWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        if exc[0] is None:
            self.close()
        else:
            self._writer.close()


def write_table(path: Path | str | BinaryIO, table: pa.Table) -> None:
    with TableWriter(path, table.schema) as writer:
        writer.write(table)


def read_table(source: Path | str | BinaryIO, columns: list[str] | None = None) -> pa.Table:
    return pq.read_table(source, columns=columns)
