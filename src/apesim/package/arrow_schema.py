"""The columns of an Arrow schema as Arrow's IPC format stores it (the `ARROW:schema` entry of
a Parquet footer), decoded without loading pyarrow: export lists every table's columns in
the manifest, and should not pay for Arrow to learn them.

Only flat columns of the types below are decoded, each named as `str(pyarrow type)` names
it once pyarrow reads the Parquet file back (which differs from the stored schema for a few
types: seconds, date64, dictionaries of other values); anything else gives `None`, and the
caller asks pyarrow instead. The flatbuffer layout
is Arrow's `Schema.fbs`/`Message.fbs`; tests/package/test_arrow_schema.py holds every type
against pyarrow's own names.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

_CONTINUATION = b"\xff\xff\xff\xff"
_SCHEMA_MESSAGE = 1  # MessageHeader.Schema

# Type union ids (Schema.fbs) of the types decoded here.
_NULL, _INT, _FLOAT, _BINARY, _UTF8, _BOOL, _DATE, _TIMESTAMP = 1, 2, 3, 4, 5, 6, 8, 10
_LARGE_BINARY, _LARGE_UTF8 = 19, 20
_PLAIN_NAMES = {
    _NULL: "null",
    _BINARY: "binary",
    _UTF8: "string",
    _BOOL: "bool",
    _LARGE_BINARY: "large_binary",
    _LARGE_UTF8: "large_string",
}
_FLOATS = {0: "halffloat", 1: "float", 2: "double"}  # Precision: HALF, SINGLE, DOUBLE
_UNITS = {1: "ms", 2: "us"}  # TimeUnit (seconds are read back as ms; ns: by version)


@dataclass(frozen=True)
class ArrowColumn:
    """One column: its name, Arrow's name for its type, and whether it may hold nulls."""

    name: str
    type: str
    nullable: bool


class _Unknown(ValueError):
    """Not a schema this module decodes (malformed, nested or of another type)."""


class _Table:
    """A flatbuffer table at `pos` of `buf`, its fields read through its vtable."""

    def __init__(self, buf: bytes, pos: int) -> None:
        self.buf, self.pos = buf, pos
        (back,) = _unpack("<i", buf, pos)
        self.vtable = pos - back
        vt_size, _ = _unpack("<HH", buf, self.vtable)
        self.fields = max(0, (vt_size - 4) // 2)

    def _at(self, field: int) -> int:
        if field >= self.fields:
            return 0
        (offset,) = _unpack("<H", self.buf, self.vtable + 4 + 2 * field)
        return self.pos + offset if offset else 0

    def scalar(self, field: int, fmt: str, default: int) -> int:
        at = self._at(field)
        return default if not at else int(_unpack(fmt, self.buf, at)[0])

    def _target(self, field: int) -> int:
        at = self._at(field)
        if not at:
            return 0
        (offset,) = _unpack("<I", self.buf, at)
        return at + offset

    def table(self, field: int) -> _Table | None:
        target = self._target(field)
        return _Table(self.buf, target) if target else None

    def string(self, field: int) -> str | None:
        target = self._target(field)
        if not target:
            return None
        (size,) = _unpack("<I", self.buf, target)
        raw = self.buf[target + 4 : target + 4 + size]
        if len(raw) != size:
            raise _Unknown("a string runs past the end")
        return raw.decode("utf-8")

    def tables(self, field: int) -> list[_Table]:
        target = self._target(field)
        if not target:
            return []
        (count,) = _unpack("<I", self.buf, target)
        if count > len(self.buf) // 4:
            raise _Unknown("a vector longer than the buffer")
        out = []
        for i in range(count):
            at = target + 4 + 4 * i
            (offset,) = _unpack("<I", self.buf, at)
            out.append(_Table(self.buf, at + offset))
        return out


def _unpack(fmt: str, buf: bytes, pos: int) -> tuple[int, ...]:
    if pos < 0:
        raise _Unknown("an offset before the start")
    try:
        return struct.unpack_from(fmt, buf, pos)
    except struct.error:
        raise _Unknown("an offset past the end") from None


def _int_name(table: _Table | None) -> str:
    if table is None:
        raise _Unknown("an integer type without its table")
    width = table.scalar(0, "<i", 0)
    signed = table.scalar(1, "<B", 0)
    if width not in (8, 16, 32, 64):
        raise _Unknown(f"an integer of {width} bits")
    return f"{'' if signed else 'u'}int{width}"


def _type_name(field: _Table) -> str:
    kind = field.scalar(2, "<B", 0)
    detail = field.table(3)
    if kind in _PLAIN_NAMES:
        return _PLAIN_NAMES[kind]
    if kind == _INT:
        return _int_name(detail)
    if kind == _FLOAT and detail is not None and detail.scalar(0, "<h", 0) in _FLOATS:
        return _FLOATS[detail.scalar(0, "<h", 0)]
    if kind == _DATE and detail is not None and detail.scalar(0, "<h", 1) == 0:
        return "date32[day]"  # (Parquet reads date64 back as date32)
    if kind == _TIMESTAMP and detail is not None and detail.scalar(0, "<h", 0) in _UNITS:
        unit = _UNITS[detail.scalar(0, "<h", 0)]
        zone = detail.string(1)
        return f"timestamp[{unit}]" if zone is None else f"timestamp[{unit}, tz={zone}]"
    raise _Unknown(f"type id {kind}")


def _column(field: _Table) -> ArrowColumn:
    name = field.string(0)
    if name is None or field.tables(5):
        raise _Unknown("a column without a name, or nested")
    type_name = _type_name(field)
    dictionary = field.table(4)
    if dictionary is not None:
        if type_name not in ("string", "binary"):  # others are read back otherwise
            raise _Unknown(f"a dictionary of {type_name}")
        index = _int_name(dictionary.table(1)) if dictionary.table(1) is not None else "int32"
        ordered = dictionary.scalar(2, "<B", 0)
        type_name = f"dictionary<values={type_name}, indices={index}, ordered={int(ordered)}>"
    return ArrowColumn(name, type_name, bool(field.scalar(1, "<B", 0)))


def arrow_columns(message: bytes) -> list[ArrowColumn] | None:
    """The columns of a serialized Arrow schema (an IPC Schema message), or None when it
    holds anything this module does not decode."""
    try:
        pos = 4 if message[:4] == _CONTINUATION else 0
        (length,) = _unpack("<i", message, pos)
        body = message[pos + 4 : pos + 4 + length]
        (root,) = _unpack("<I", body, 0)
        header = _Table(body, root)
        if header.scalar(1, "<B", 0) != _SCHEMA_MESSAGE:
            return None
        schema = header.table(2)
        if schema is None:
            return None
        return [_column(field) for field in schema.tables(1)]
    except (_Unknown, IndexError, UnicodeDecodeError):
        return None


__all__ = ["ArrowColumn", "arrow_columns"]
