"""A bounded reader of Thrift's compact protocol, the encoding of Parquet's footer and page
headers, for bytes from strangers.

Arrow decodes these structures in C++ and trusts what they say; we decode them first, in
Python, so that a footer can be checked against the spec before Arrow sees a page. Structs
come back as `{field id: value}`; nothing here knows Parquet.
"""

from __future__ import annotations

import struct
from typing import Any

# Compact protocol type ids.
_STOP, _TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = 0, 1, 2, 3, 4, 5, 6, 7, 8
_LIST, _SET, _MAP, _STRUCT = 9, 10, 11, 12
_MAX_VARINT_BYTES = 10
MAX_DEPTH = 16  # Parquet's own structures nest at most 6 deep
MAX_CONTAINER = 1_000_000  # elements of one list or map (Arrow's own limit)
# Values (fields and elements) of one read: APE's largest footer (500 row groups of 12
# columns) holds about 250,000; each costs Python objects, so a 4 MiB footer of empty
# structs may not become millions of them.
MAX_VALUES = 2_000_000


class ThriftError(ValueError):
    """The bytes are not a well-formed compact-protocol struct within the limits."""


class Reader:
    """Decodes structs from `data[start:end]`; `pos` is where the next byte is read."""

    def __init__(
        self,
        data: memoryview | bytes,
        start: int = 0,
        end: int | None = None,
        max_values: int = MAX_VALUES,
    ) -> None:
        self.data = memoryview(data)
        self.pos = start
        self.end = len(self.data) if end is None else min(end, len(self.data))
        self.values = 0  # container elements and struct fields decoded so far
        self.max_values = max_values

    def _byte(self) -> int:
        if self.pos >= self.end:
            raise ThriftError("truncated")
        value = self.data[self.pos]
        self.pos += 1
        return value

    def _varint(self) -> int:
        data, pos, end = self.data, self.pos, self.end
        if pos < end and data[pos] < 0x80:  # most varints are one byte: the fast path
            self.pos = pos + 1
            return data[pos]
        value = shift = 0
        for _ in range(_MAX_VARINT_BYTES):
            if pos >= end:
                self.pos = pos
                raise ThriftError("truncated")
            byte = data[pos]
            pos += 1
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                self.pos = pos
                return value
            shift += 7
        self.pos = pos
        raise ThriftError("varint too long")

    def _zigzag(self, bits: int) -> int:
        raw = self._varint()
        value = (raw >> 1) ^ -(raw & 1)
        if not -(1 << (bits - 1)) <= value < (1 << (bits - 1)):
            raise ThriftError(f"integer out of range for i{bits}")
        return value

    def _bytes(self) -> bytes:
        size = self._varint()
        if size > self.end - self.pos:
            raise ThriftError("binary field runs past the end")
        value = bytes(self.data[self.pos : self.pos + size])
        self.pos += size
        return value

    def _value(self, kind: int, depth: int) -> Any:
        if kind == _I32:  # the most frequent first
            return self._zigzag(32)
        if kind == _I64:
            return self._zigzag(64)
        if kind == _STRUCT:
            return self.read_struct(depth + 1)
        if kind in (_TRUE, _FALSE):  # only inside containers: one byte, 1 is true
            return self._byte() == _TRUE
        if kind == _BYTE:
            value = self._byte()
            return value - 256 if value > 127 else value
        if kind == _I16:
            return self._zigzag(16)
        if kind == _DOUBLE:
            if self.end - self.pos < 8:
                raise ThriftError("truncated")
            (number,) = struct.unpack_from("<d", self.data, self.pos)
            self.pos += 8
            return number
        if kind == _BINARY:
            return self._bytes()
        if kind in (_LIST, _SET):
            return self._list(depth + 1)
        if kind == _MAP:
            return self._map(depth + 1)
        raise ThriftError(f"unknown type id {kind}")

    def _count(self, size: int) -> int:
        # Every element takes at least one byte: a count beyond the bytes left is a lie. And
        # every value decoded costs memory: both are capped (Arrow caps containers too).
        if size > self.end - self.pos:
            raise ThriftError("container larger than the bytes left")
        if size > MAX_CONTAINER:
            raise ThriftError(f"a container of more than {MAX_CONTAINER:,} elements")
        self.values += size
        if self.values > self.max_values:
            raise ThriftError(f"more than {self.max_values:,} values")
        return size

    def _list(self, depth: int) -> list[Any]:
        if depth > MAX_DEPTH:
            raise ThriftError("nested too deeply")
        header = self._byte()
        size, kind = header >> 4, header & 0x0F
        if size == 15:
            size = self._varint()
        return [self._value(kind, depth) for _ in range(self._count(size))]

    def _map(self, depth: int) -> list[tuple[Any, Any]]:
        if depth > MAX_DEPTH:
            raise ThriftError("nested too deeply")
        size = self._count(self._varint())
        if size == 0:
            return []
        kinds = self._byte()
        return [
            (self._value(kinds >> 4, depth), self._value(kinds & 0x0F, depth)) for _ in range(size)
        ]

    def read_struct(self, depth: int = 0) -> dict[int, Any]:
        """One struct as {field id: value}; a field given twice is refused."""
        if depth > MAX_DEPTH:
            raise ThriftError("nested too deeply")
        fields: dict[int, Any] = {}
        last = 0
        data = self.data
        while True:
            if self.pos >= self.end:
                raise ThriftError("truncated")
            header = data[self.pos]
            self.pos += 1
            kind = header & 0x0F
            if kind == _STOP:
                return fields
            delta = header >> 4
            field = last + delta if delta else self._zigzag(16)
            if field in fields:
                raise ThriftError(f"field {field} given twice")
            self.values += 1
            if self.values > self.max_values:
                raise ThriftError(f"more than {self.max_values:,} values")
            if kind in (_TRUE, _FALSE):
                fields[field] = kind == _TRUE
            else:
                fields[field] = self._value(kind, depth)
            last = field


def read_struct(
    data: memoryview | bytes, start: int = 0, end: int | None = None
) -> tuple[dict[int, Any], int]:
    """The struct at `start` and the offset just past it."""
    reader = Reader(data, start, end)
    return reader.read_struct(), reader.pos


__all__ = ["MAX_CONTAINER", "MAX_DEPTH", "MAX_VALUES", "Reader", "ThriftError", "read_struct"]
