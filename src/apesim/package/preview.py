"""results_preview.csv: the patients table as CSV for a spreadsheet, written by export and
checked on import (docs/package-format.md, "results_preview.csv").

No cell may be a spreadsheet formula. Every cell the exporter writes is empty, an integer, or
one of the format's enumerated words (sexes, discontinuation reasons), so the only cell that
starts with `=`, `+`, `-` or `@` is a negative integer (an unknown age, -1), which spreadsheets
read as a number. A table with any other text gets no preview. On import the preview must be
exactly what the exporter writes for the package's patients table, so it can neither lie about
the table nor carry a formula.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Protocol

from apesim.errors import PackageIntegrityError
from apesim.package import format as fmt

if TYPE_CHECKING:
    import pyarrow as pa

_BATCH_ROWS = 65_536
_WORD = r"^[A-Za-z][A-Za-z_]*$"  # an enumerated word: never a formula, never a number


class Column(Protocol):
    """A column's name and nullability: a `pyarrow.Field`, or a footer's `ArrowColumn`."""

    @property
    def name(self) -> str: ...
    @property
    def nullable(self) -> bool: ...


def _as_text(patients: pa.Table) -> pa.Table | None:
    """The table with categories as text, or None when a text value is not a plain word."""
    import pyarrow as pa
    import pyarrow.compute as pc

    columns = []
    for column in patients.columns:
        if pa.types.is_dictionary(column.type):
            words = column.combine_chunks().dictionary
            if len(words) and not pc.all(pc.match_substring_regex(words, _WORD)).as_py():
                return None
            column = column.cast(pa.string())
        elif not (pa.types.is_integer(column.type) or pa.types.is_null(column.type)):
            return None  # only integers and words are known to be formula-free
        columns.append(column)
    return pa.table(columns, names=patients.column_names)


def _pieces(table: pa.Table) -> Iterator[bytes]:
    """The CSV's bytes in batches (the same bytes as one `write_csv` of the whole table)."""
    import pyarrow.csv as pacsv

    sink = io.BytesIO()
    options = pacsv.WriteOptions(quoting_style="needed")
    with pacsv.CSVWriter(sink, table.schema, write_options=options) as writer:
        for batch in table.to_batches(max_chunksize=_BATCH_ROWS):
            writer.write_batch(batch)
            yield sink.getvalue()
            sink.seek(0)
            sink.truncate()
    yield sink.getvalue()


def smallest_size(rows: int, columns: Iterable[Column]) -> int:
    """The fewest bytes the preview of `rows` rows with these `columns` (a schema) can take:
    its header, and in every row a separator between cells, a newline, and a character in
    each cell that cannot be empty (a non-null integer or word). Known from a Parquet
    footer, before decoding."""
    columns = list(columns)
    header = sum(len(c.name.encode("utf-8")) + 3 for c in columns)  # "name", or \n
    filled = sum(1 for c in columns if not c.nullable)
    return header + rows * (len(columns) + filled)


def may_fit(rows: int, columns: Iterable[Column]) -> bool:
    """Whether the preview could be under the size limit (if not, it is not built at all)."""
    return smallest_size(rows, columns) < fmt.PREVIEW_MAX_BYTES


def preview_csv(patients: pa.Table) -> bytes | None:
    """The preview of a patients table, or None when it would reach the size limit (or the
    table holds text that is not one of the format's words)."""
    table = _as_text(patients)
    if table is None:
        return None
    parts: list[bytes] = []
    size = 0
    for piece in _pieces(table):
        size += len(piece)
        if size >= fmt.PREVIEW_MAX_BYTES:
            return None
        parts.append(piece)
    return b"".join(parts)


def check_preview(data: bytes | memoryview | None, patients: pa.Table) -> None:
    """A package's preview (None: absent, which is allowed) is byte for byte the one the
    exporter writes for its patients table; compared batch by batch, in bounded memory."""
    if data is None:
        return
    table = _as_text(patients)
    at, agrees = 0, table is not None
    if table is not None:
        for piece in _pieces(table):
            if bytes(data[at : at + len(piece)]) != piece:
                agrees = False
                break
            at += len(piece)
    if not agrees or at != len(data):
        raise PackageIntegrityError(
            f"{fmt.PREVIEW}: differs from {fmt.PATIENTS} (the preview was altered); "
            "export the package again",
            code="consistency.preview",
        )


__all__ = ["check_preview", "may_fit", "preview_csv", "smallest_size"]
