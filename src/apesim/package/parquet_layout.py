"""Checking an untrusted Parquet file's footer and page headers against the Parquet spec
before Arrow decodes anything.

Arrow's C++ reader trusts the footer: a REQUIRED column whose statistics or pages carry
definition levels, or size statistics on a column of the wrong physical type, abort the whole
process, and declared page sizes are allocated as stated. So the footer (schema, row groups,
column chunks, size statistics) and every page header are decoded here, in Python, and
checked: physical and logical types that agree, flat columns only, chunks inside the file and
apart, pages that tile each chunk exactly, levels only where the schema allows them, and the
sizes under the read limits. Only a file that passes is handed to Arrow.
"""

from __future__ import annotations

import itertools
import struct
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from apesim.errors import PackageFormatError, PackageLimitError
from apesim.package import format as fmt
from apesim.package.thrift import Reader, ThriftError

MAGIC = b"PAR1"

# parquet.thrift enumerations (only the values the checks name).
BOOLEAN, INT32, INT64, INT96, FLOAT, DOUBLE, BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY = range(8)
REQUIRED, OPTIONAL, REPEATED = range(3)
DATA_PAGE, INDEX_PAGE, DICTIONARY_PAGE, DATA_PAGE_V2 = range(4)
PLAIN, PLAIN_DICTIONARY, RLE, BIT_PACKED = 0, 2, 3, 4
DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, DELTA_BYTE_ARRAY = 5, 6, 7
RLE_DICTIONARY, BYTE_STREAM_SPLIT = 8, 9
UNCOMPRESSED = 0
# Codecs Arrow reads: UNCOMPRESSED, SNAPPY, GZIP, BROTLI, ZSTD, LZ4_RAW.
CODECS = frozenset({0, 1, 2, 4, 6, 7})
TYPE_NAMES = ("BOOLEAN", "INT32", "INT64", "INT96", "FLOAT", "DOUBLE", "BYTE_ARRAY", "FLBA")

# Which physical types each data encoding may carry (the spec's Encodings page).
_ENCODING_TYPES: dict[int, frozenset[int]] = {
    PLAIN: frozenset(range(8)),
    PLAIN_DICTIONARY: frozenset(range(8)),
    RLE_DICTIONARY: frozenset(range(8)),
    RLE: frozenset({BOOLEAN}),
    BIT_PACKED: frozenset({BOOLEAN}),
    DELTA_BINARY_PACKED: frozenset({INT32, INT64}),
    DELTA_LENGTH_BYTE_ARRAY: frozenset({BYTE_ARRAY}),
    DELTA_BYTE_ARRAY: frozenset({BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY}),
    BYTE_STREAM_SPLIT: frozenset({FLOAT, DOUBLE, INT32, INT64, FIXED_LEN_BYTE_ARRAY}),
}
_LEVEL_ENCODINGS = frozenset({RLE, BIT_PACKED})

# Logical type (union field id) and converted type -> the physical types allowed to carry it.
_LOGICAL_TYPES: dict[int, frozenset[int]] = {
    1: frozenset({BYTE_ARRAY}),  # STRING
    4: frozenset({BYTE_ARRAY}),  # ENUM
    5: frozenset({INT32, INT64, BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY}),  # DECIMAL
    6: frozenset({INT32}),  # DATE
    7: frozenset({INT32, INT64}),  # TIME
    8: frozenset({INT64}),  # TIMESTAMP
    10: frozenset({INT32, INT64}),  # INTEGER (bit width checked below)
    11: frozenset(range(8)),  # UNKNOWN: always null
    12: frozenset({BYTE_ARRAY}),  # JSON
    13: frozenset({BYTE_ARRAY}),  # BSON
    14: frozenset({FIXED_LEN_BYTE_ARRAY}),  # UUID
    15: frozenset({FIXED_LEN_BYTE_ARRAY}),  # FLOAT16
}
_CONVERTED_TYPES: dict[int, frozenset[int]] = {
    0: frozenset({BYTE_ARRAY}),  # UTF8
    4: frozenset({BYTE_ARRAY}),  # ENUM
    5: frozenset({INT32, INT64, BYTE_ARRAY, FIXED_LEN_BYTE_ARRAY}),  # DECIMAL
    6: frozenset({INT32}),  # DATE
    7: frozenset({INT32}),  # TIME_MILLIS
    8: frozenset({INT64}),  # TIME_MICROS
    9: frozenset({INT64}),  # TIMESTAMP_MILLIS
    10: frozenset({INT64}),  # TIMESTAMP_MICROS
    **{c: frozenset({INT32}) for c in (11, 12, 13, 15, 16, 17)},  # (U)INT_8/16/32
    14: frozenset({INT64}),  # UINT_64
    18: frozenset({INT64}),  # INT_64
    19: frozenset({BYTE_ARRAY}),  # JSON
    20: frozenset({BYTE_ARRAY}),  # BSON
}


# Decoded bytes per value by physical type (INT96 becomes an 8-byte timestamp; text: its
# 4-byte offset, the values themselves counted from the pages).
_MAX_SCANNED = 5_000_000  # dictionary values read per file for their longest length
_CODEC_NAMES = {1: "snappy", 2: "gzip", 4: "brotli", 6: "zstd", 7: "lz4_raw"}


def _decompress(codec: int, data: memoryview, size: int) -> memoryview:
    """A page body decompressed with Arrow's codec (the size is the page header's, already
    within the page limit)."""
    out = pa.Codec(_CODEC_NAMES[codec]).decompress(data, decompressed_size=size)
    return memoryview(out)


_MAX_PAGE_HEADER = 1024 * 1024  # APE's are under 100 bytes; Arrow allows 16 MiB
_WIDTHS = {BOOLEAN: 1, INT32: 4, INT64: 8, INT96: 12, FLOAT: 4, DOUBLE: 8, BYTE_ARRAY: 4}


@dataclass(frozen=True)
class Leaf:
    """One column as the footer declares it: what must agree with the format's schema."""

    name: str
    physical: int
    repetition: int
    logical: str  # the logical type struct, as a stable string ("" if none)
    fixed_length: int = 0  # FIXED_LEN_BYTE_ARRAY's bytes per value

    @property
    def width(self) -> int:
        """Bytes one row of this column takes once decoded, at most, text values aside
        (a BYTE_ARRAY column's offsets only), with a byte for its validity if optional."""
        value = _WIDTHS.get(self.physical, self.fixed_length)
        return value + (1 if self.repetition == OPTIONAL else 0)

    def describe(self) -> str:
        kind = "optional" if self.repetition == OPTIONAL else "required"
        return f"{kind} {TYPE_NAMES[self.physical]} {self.logical or '(no logical type)'}"


@dataclass(frozen=True)
class Layout:
    """What the checked footer and page headers say, for sizing the decode."""

    rows: int
    row_groups: int
    leaves: tuple[Leaf, ...]
    decoded_bytes: int  # the sum of every page's uncompressed size
    # The largest page whose text values may each be copied into many decoded rows (a
    # dictionary page, or a DELTA_BYTE_ARRAY page, whose values share prefixes): it bounds one
    # such value. Other text pages decode to their own size, which the decode budget bounds.
    largest_text_page: int

    @property
    def row_width(self) -> int:
        """Decoded bytes per row, text values aside (see `Leaf.width`)."""
        return sum(leaf.width for leaf in self.leaves)

    @property
    def decoded_at_most(self) -> int:
        """What decoding can produce at most: every row's fixed width, and the text the
        pages hold (a repeated dictionary value is bounded per batch by the reader)."""
        return self.rows * self.row_width + self.decoded_bytes


def _repeatable(kind: Any, header: dict[int, Any]) -> bool:
    """Whether a text page's values may each appear in many decoded rows."""
    if kind == DICTIONARY_PAGE:
        return True
    page = header.get(5 if kind == DATA_PAGE else 8)
    encoding = page.get(2 if kind == DATA_PAGE else 4) if isinstance(page, dict) else None
    return encoding == DELTA_BYTE_ARRAY


def _bad(name: str, what: str) -> PackageFormatError:
    return PackageFormatError(f"{name}: {what}", code="parquet.layout")


def _int(struct_: dict[int, Any], field: int, what: str, name: str, *, low: int = 0) -> int:
    value = struct_.get(field)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise _bad(name, f"{what} is missing or out of range")
    return value


def _logical(element: dict[int, Any]) -> str:
    logical = element.get(10)
    return repr(sorted(logical.items())) if isinstance(logical, dict) else ""


def _leaf(name: str, element: dict[int, Any]) -> Leaf:
    raw_name = element.get(4)
    try:
        column = raw_name.decode("utf-8") if isinstance(raw_name, bytes) else None
    except UnicodeDecodeError:
        column = None
    if column is None:
        raise _bad(name, "a column name is missing or not UTF-8")
    shown = repr(column[:40])
    if element.get(5):
        raise PackageFormatError(
            f"{name}: column {shown} is nested; only flat columns are allowed",
            code="parquet.schema",
        )
    physical = element.get(1)
    if not isinstance(physical, int) or not 0 <= physical <= 7:
        raise _bad(name, f"column {shown} has no valid physical type")
    repetition = element.get(3)
    if repetition not in (REQUIRED, OPTIONAL):
        raise PackageFormatError(
            f"{name}: column {shown} is repeated or has no repetition; only required and "
            "optional columns are allowed",
            code="parquet.schema",
        )
    if physical == FIXED_LEN_BYTE_ARRAY and not (
        isinstance(element.get(2), int) and 0 < element[2] <= 1024
    ):
        raise _bad(name, f"column {shown} has no valid fixed length")
    logical = element.get(10)
    if logical is not None:
        if not isinstance(logical, dict) or len(logical) != 1:
            raise _bad(name, f"column {shown} has a malformed logical type")
        (kind,) = logical
        allowed = _LOGICAL_TYPES.get(kind)
        if allowed is None or physical not in allowed:
            raise PackageFormatError(
                f"{name}: column {shown} is {TYPE_NAMES[physical]}, which cannot carry its "
                "logical type",
                code="parquet.schema",
            )
        if kind == 10:  # INTEGER: bit width 8/16/32 on INT32, 64 on INT64
            width = logical[10].get(1) if isinstance(logical[10], dict) else None
            if (physical, width) not in {(INT32, 8), (INT32, 16), (INT32, 32), (INT64, 64)}:
                raise PackageFormatError(
                    f"{name}: column {shown} declares an integer width its type cannot hold",
                    code="parquet.schema",
                )
    converted = element.get(6)
    if converted is not None:
        allowed = _CONVERTED_TYPES.get(converted)
        if allowed is None or physical not in allowed:
            raise PackageFormatError(
                f"{name}: column {shown} is {TYPE_NAMES[physical]}, which cannot carry its "
                "converted type",
                code="parquet.schema",
            )
    length = int(element[2]) if physical == FIXED_LEN_BYTE_ARRAY else 0  # checked above
    return Leaf(column, physical, repetition, _logical(element), length)


def _schema(name: str, elements: Any, max_columns: int) -> tuple[Leaf, ...]:
    if not isinstance(elements, list) or not elements or not isinstance(elements[0], dict):
        raise _bad(name, "the footer has no schema")
    root, leaves = elements[0], elements[1:]
    if root.get(5) != len(leaves) or 1 in root:
        raise PackageFormatError(
            f"{name}: the schema is not a flat list of columns", code="parquet.schema"
        )
    if not all(isinstance(e, dict) for e in leaves):
        raise _bad(name, "a schema element is malformed")
    if len(leaves) > max_columns:
        raise PackageLimitError(
            f"{name}: {len(leaves):,} columns exceeds the limit of {max_columns:,}",
            code="limit.parquet_columns",
        )
    return tuple(_leaf(name, e) for e in leaves)


class _Checker:
    """The walk over one file's row groups, column chunks and pages."""

    def __init__(
        self,
        name: str,
        data: memoryview,
        limits: fmt.ReadLimits,
        leaves: tuple[Leaf, ...],
        footer_start: int,
    ) -> None:
        self.name = name
        self.data = data
        self.limits = limits
        self.leaves = leaves
        self.footer_start = footer_start
        self.decoded = 0
        self.largest_text_page = 0
        self.pages = 0
        self.spans: list[tuple[int, int]] = []
        self.empty_table = False
        self.scanned = 0  # dictionary values read to find the longest

    def row_group(self, index: int, group: Any) -> int:
        where = f"row group {index}"
        if not isinstance(group, dict):
            raise _bad(self.name, f"{where} is malformed")
        rows = _int(group, 3, f"{where}'s row count", self.name)
        if rows == 0 and not self.empty_table:  # pandas writes one for an empty table
            raise _bad(self.name, f"{where} is empty")
        chunks = group.get(1)
        if not isinstance(chunks, list) or len(chunks) != len(self.leaves):
            raise _bad(self.name, f"{where} does not have one column chunk per column")
        if rows == 0:  # the one row group of an empty table: nothing in it is read
            return 0
        for leaf, chunk in zip(self.leaves, chunks, strict=True):
            self.chunk(f"{where}, column {leaf.name[:40]!r}", leaf, chunk, rows)
        return rows

    def chunk(self, where: str, leaf: Leaf, chunk: Any, rows: int) -> None:
        if not isinstance(chunk, dict) or not isinstance(chunk.get(3), dict):
            raise _bad(self.name, f"{where} has no column metadata")
        if 1 in chunk or 8 in chunk or 9 in chunk:
            raise _bad(self.name, f"{where} points to another file or is encrypted")
        meta = chunk[3]
        if meta.get(1) != leaf.physical:
            raise _bad(self.name, f"{where}: its type differs from the schema's")
        if meta.get(3) != [leaf.name.encode("utf-8")]:
            raise _bad(self.name, f"{where}: its path differs from the schema's")
        codec = meta.get(4)
        if codec not in CODECS:
            raise _bad(self.name, f"{where}: compression codec {codec!r} is not supported")
        values = _int(meta, 5, f"{where}: the value count", self.name)
        if values != rows:
            raise _bad(self.name, f"{where}: {values:,} values in {rows:,} rows")
        encodings = meta.get(2)
        if not isinstance(encodings, list) or not all(
            e in _ENCODING_TYPES or e in _LEVEL_ENCODINGS for e in encodings
        ):
            raise _bad(self.name, f"{where}: unknown encoding")
        size = _int(meta, 7, f"{where}: the compressed size", self.name, low=1)
        data_offset = _int(meta, 9, f"{where}: the data page offset", self.name, low=4)
        start = data_offset
        # Arrow's rule, which older writers rely on: a dictionary offset of 0 means none, and
        # without one the data page offset may point at the dictionary page itself.
        if meta.get(11, 0) != 0:
            dictionary_offset = _int(meta, 11, f"{where}: the dictionary offset", self.name, low=4)
            if dictionary_offset >= data_offset:
                raise _bad(self.name, f"{where}: the dictionary page is not before the data")
            start = dictionary_offset
        if 10 in meta:
            raise _bad(self.name, f"{where}: index pages are not supported")
        end = start + size
        if end > self.footer_start:
            raise _bad(self.name, f"{where}: the column chunk runs past the data")
        self.spans.append((start, end))
        self._size_statistics(where, leaf, meta.get(16), values)
        for offset_field, length_field in ((4, 5), (6, 7)):  # page index: where, if given
            if offset_field in chunk:
                at = _int(chunk, offset_field, f"{where}: an index offset", self.name, low=4)
                length = _int(chunk, length_field, f"{where}: an index length", self.name)
                if at + length > self.footer_start:
                    raise _bad(self.name, f"{where}: its page index runs past the data")
        self._pages(where, leaf, start, end, codec, values, data_offset)

    def _size_statistics(self, where: str, leaf: Leaf, stats: Any, values: int) -> None:
        if stats is None:
            return
        if not isinstance(stats, dict):
            raise _bad(self.name, f"{where}: malformed size statistics")
        if 1 in stats and leaf.physical != BYTE_ARRAY:
            raise _bad(
                self.name, f"{where}: byte-array sizes on a {TYPE_NAMES[leaf.physical]} column"
            )
        max_definition = 1 if leaf.repetition == OPTIONAL else 0
        for field, levels, what in ((2, 0, "repetition"), (3, max_definition, "definition")):
            histogram = stats.get(field, [])
            if not isinstance(histogram, list) or len(histogram) not in (0, levels + 1):
                raise _bad(
                    self.name, f"{where}: its {what} level histogram does not fit the schema"
                )
            if histogram and (
                not all(isinstance(v, int) and v >= 0 for v in histogram)
                or sum(histogram) != values
            ):
                raise _bad(self.name, f"{where}: its {what} level histogram is inconsistent")

    def _pages(
        self,
        where: str,
        leaf: Leaf,
        start: int,
        end: int,
        codec: int,
        values: int,
        data_offset: int,
    ) -> None:
        pos, seen, data_pages, dictionary = start, 0, 0, False
        lim = self.limits
        while pos < end:
            self.pages += 1
            if self.pages > lim.max_parquet_pages:
                raise PackageLimitError(
                    f"{self.name}: more than {lim.max_parquet_pages:,} pages",
                    code="limit.parquet_pages",
                )
            page_start = pos
            reader = Reader(self.data, pos, min(end, pos + _MAX_PAGE_HEADER))
            try:
                header = reader.read_struct()
            except ThriftError as exc:
                raise _bad(self.name, f"{where}: unreadable page header ({exc})") from None
            kind = header.get(1)
            raw = _int(header, 2, f"{where}: a page's uncompressed size", self.name)
            packed = _int(header, 3, f"{where}: a page's compressed size", self.name)
            if raw > lim.max_parquet_page_bytes:
                raise PackageLimitError(
                    f"{self.name}: {where}: a page of {raw:,} bytes exceeds the limit of "
                    f"{lim.max_parquet_page_bytes:,}",
                    code="limit.parquet_page",
                )
            if codec == UNCOMPRESSED and raw != packed and kind != DATA_PAGE_V2:
                raise _bad(self.name, f"{where}: an uncompressed page's sizes differ")
            body = reader.pos
            pos = body + packed
            if pos > end:
                raise _bad(self.name, f"{where}: a page runs past its column chunk")
            self.decoded += raw
            if leaf.physical == BYTE_ARRAY and _repeatable(kind, header):
                longest = raw
                if kind == DICTIONARY_PAGE:  # its longest value, not its size, bounds a row
                    longest = self._longest_value(where, body, packed, raw, codec, header)
                self.largest_text_page = max(self.largest_text_page, longest)
            if kind == DICTIONARY_PAGE:
                if dictionary or data_pages:
                    raise _bad(self.name, f"{where}: a dictionary page after the first page")
                self._dictionary(where, header.get(7))
                dictionary = True
            elif (
                kind in (DATA_PAGE, DATA_PAGE_V2)
                and not data_pages
                and page_start != data_offset
                and not (dictionary and start == data_offset)
            ):
                raise _bad(self.name, f"{where}: the data page offset is not its first data page")
            elif kind == DATA_PAGE:
                seen += self._data_v1(where, leaf, header.get(5), dictionary)
            elif kind == DATA_PAGE_V2:
                seen += self._data_v2(where, leaf, header.get(8), dictionary, packed, raw)
            else:
                raise _bad(self.name, f"{where}: page type {kind!r} is not supported")
            data_pages += kind != DICTIONARY_PAGE
            if seen > values:
                raise _bad(self.name, f"{where}: its pages hold more values than the chunk")
        if pos != end:
            raise _bad(self.name, f"{where}: its pages do not fill the column chunk")
        if seen != values:
            raise _bad(self.name, f"{where}: its pages hold {seen:,} values, not {values:,}")

    def _longest_value(
        self, where: str, body: int, packed: int, raw: int, codec: int, header: dict[int, Any]
    ) -> int:
        """The longest value of a PLAIN text dictionary page (decompressed, at most the page
        limit), or the page's size once the file's scanning budget is spent."""
        page = header.get(7)
        count = page.get(1) if isinstance(page, dict) else None
        if not isinstance(count, int) or count < 0 or self.scanned + count > _MAX_SCANNED:
            return raw
        self.scanned += count
        data = self.data[body : body + packed]
        try:
            plain = data if codec == UNCOMPRESSED else _decompress(codec, data, raw)
        except (ValueError, OSError, pa.ArrowException) as exc:
            raise _bad(self.name, f"{where}: unreadable dictionary page ({exc})") from None
        longest, pos, size = 0, 0, len(plain)
        for _ in range(count):
            if pos + 4 > size:
                raise _bad(self.name, f"{where}: the dictionary page holds fewer values")
            (length,) = struct.unpack_from("<I", plain, pos)
            pos += 4 + length
            longest = max(longest, length)
        if pos > size:
            raise _bad(self.name, f"{where}: a dictionary value runs past its page")
        return longest

    def _dictionary(self, where: str, header: Any) -> None:
        if not isinstance(header, dict):
            raise _bad(self.name, f"{where}: a dictionary page has no header")
        _int(header, 1, f"{where}: the dictionary's value count", self.name)
        if header.get(2) not in (PLAIN, PLAIN_DICTIONARY):
            raise _bad(self.name, f"{where}: the dictionary page's encoding is not PLAIN")

    def _encoding(self, where: str, leaf: Leaf, encoding: Any, dictionary: bool) -> None:
        allowed = _ENCODING_TYPES.get(encoding) if isinstance(encoding, int) else None
        if allowed is None or leaf.physical not in allowed:
            raise _bad(
                self.name,
                f"{where}: encoding {encoding!r} cannot carry {TYPE_NAMES[leaf.physical]} values",
            )
        if encoding in (PLAIN_DICTIONARY, RLE_DICTIONARY) and not dictionary:
            raise _bad(self.name, f"{where}: dictionary-encoded page without a dictionary")

    def _data_v1(self, where: str, leaf: Leaf, header: Any, dictionary: bool) -> int:
        if not isinstance(header, dict):
            raise _bad(self.name, f"{where}: a data page has no header")
        count = _int(header, 1, f"{where}: a page's value count", self.name)
        self._encoding(where, leaf, header.get(2), dictionary)
        for field in (3, 4):
            if header.get(field) not in _LEVEL_ENCODINGS:
                raise _bad(self.name, f"{where}: a page's level encoding is not RLE")
        return count

    def _data_v2(
        self, where: str, leaf: Leaf, header: Any, dictionary: bool, packed: int, raw: int
    ) -> int:
        if not isinstance(header, dict):
            raise _bad(self.name, f"{where}: a data page has no header")
        count = _int(header, 1, f"{where}: a page's value count", self.name)
        nulls = _int(header, 2, f"{where}: a page's null count", self.name)
        rows = _int(header, 3, f"{where}: a page's row count", self.name)
        definition = _int(header, 5, f"{where}: a page's definition-level length", self.name)
        repetition = _int(header, 6, f"{where}: a page's repetition-level length", self.name)
        self._encoding(where, leaf, header.get(4), dictionary)
        if nulls > count or rows != count or definition + repetition > min(packed, raw):
            raise _bad(self.name, f"{where}: a page's counts are inconsistent")
        if repetition:
            raise _bad(self.name, f"{where}: a page carries repetition levels in a flat column")
        if leaf.repetition == REQUIRED and (definition or nulls):
            raise _bad(
                self.name, f"{where}: the column is required, but a page carries definition levels"
            )
        return count


def check_layout(
    name: str,
    data: memoryview,
    limits: fmt.ReadLimits,
    *,
    max_rows: int,
    expected: tuple[Leaf, ...] | None = None,
) -> Layout:
    """Check the footer and every page header of an untrusted Parquet file (see the module
    docstring); raise a `PackageError` naming the file and what is wrong."""
    size = len(data)
    if size < 12 or bytes(data[:4]) != MAGIC or bytes(data[-4:]) != MAGIC:
        raise PackageFormatError(f"{name}: not a Parquet file", code="parquet.invalid")
    (footer_size,) = struct.unpack_from("<I", data, size - 8)
    if footer_size > limits.max_parquet_footer_bytes:
        raise PackageLimitError(
            f"{name}: a footer of {footer_size:,} bytes exceeds the limit of "
            f"{limits.max_parquet_footer_bytes:,}",
            code="limit.parquet_footer",
        )
    footer_start = size - 8 - footer_size
    if footer_start < 4:
        raise _bad(name, "the footer is longer than the file")
    try:
        reader = Reader(data, footer_start, size - 8)
        footer = reader.read_struct()
    except ThriftError as exc:
        raise _bad(name, f"unreadable footer ({exc})") from None
    if reader.pos != size - 8:
        raise _bad(name, "bytes after the footer's end")
    if 8 in footer or 9 in footer:
        raise _bad(name, "the file is encrypted")
    leaves = _schema(name, footer.get(2), limits.max_parquet_columns)
    if expected is not None and leaves != expected:
        for got, want in zip(leaves, expected, strict=False):
            if got != want:
                raise PackageFormatError(
                    f"{name}: column {want.name!r} is stored as {got.describe()}, "
                    f"expected {want.describe()}",
                    code="parquet.schema",
                )
        raise PackageFormatError(
            f"{name}: {len(leaves)} columns, expected {len(expected)}", code="parquet.schema"
        )
    rows = _int(footer, 3, "the row count", name)
    if rows > max_rows:
        raise PackageLimitError(
            f"{name}: {rows:,} rows exceeds the limit of {max_rows:,}", code="limit.rows"
        )
    groups = footer.get(4)
    if not isinstance(groups, list):
        raise _bad(name, "the footer lists no row groups")
    if len(groups) > limits.max_row_groups:
        raise PackageLimitError(
            f"{name}: {len(groups):,} row groups exceeds the limit of {limits.max_row_groups:,}",
            code="limit.row_groups",
        )
    checker = _Checker(name, data, limits, leaves, footer_start)
    checker.empty_table = rows == 0 and len(groups) == 1
    total = sum(checker.row_group(i, g) for i, g in enumerate(groups))
    if total != rows:
        raise _bad(name, f"its row groups hold {total:,} rows, but the footer says {rows:,}")
    spans = sorted(checker.spans)
    if any(a_end > b_start for (_, a_end), (b_start, _) in itertools.pairwise(spans)):
        raise _bad(name, "two column chunks overlap")
    return Layout(rows, len(groups), leaves, checker.decoded, checker.largest_text_page)


__all__ = ["Layout", "Leaf", "check_layout"]


def read_footer(name: str, footer: bytes | memoryview, limits: fmt.ReadLimits) -> Layout:
    """Just a footer's row count and columns (for a look at a remote table without its
    pages): decoded by the bounded Thrift reader, never by Arrow."""
    try:
        reader = Reader(memoryview(footer), 0, len(footer))
        decoded = reader.read_struct()
    except ThriftError as exc:
        raise _bad(name, f"unreadable footer ({exc})") from None
    if reader.pos != len(footer):
        raise _bad(name, "bytes after the footer's end")
    leaves = _schema(name, decoded.get(2), limits.max_parquet_columns)
    rows = _int(decoded, 3, "the row count", name)
    groups = decoded.get(4)
    return Layout(rows, len(groups) if isinstance(groups, list) else 0, leaves, 0, 0)
