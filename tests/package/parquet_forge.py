"""Forging Parquet files for the hostile corpus: decode a real file's footer and page headers
(Thrift compact protocol, types kept), let a test change any field, and write the file
again with every offset and size recomputed. Independent of the reader under test."""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

STOP, TRUE, FALSE, BYTE, I16, I32, I64, DOUBLE, BINARY, LIST, SET, MAP, STRUCT = range(13)


@dataclass
class V:
    """A typed Thrift value: `kind` is the compact type id; lists hold (element kind, items);
    structs hold {field id: V}."""

    kind: int
    value: Any


class _In:
    def __init__(self, data: bytes, pos: int) -> None:
        self.data, self.pos = data, pos

    def byte(self) -> int:
        self.pos += 1
        return self.data[self.pos - 1]

    def varint(self) -> int:
        out = shift = 0
        while True:
            b = self.byte()
            out |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return out

    def zigzag(self) -> int:
        n = self.varint()
        return (n >> 1) ^ -(n & 1)

    def value(self, kind: int) -> Any:
        if kind in (TRUE, FALSE):
            return self.byte() == 1
        if kind == BYTE:
            return self.byte()
        if kind in (I16, I32, I64):
            return self.zigzag()
        if kind == DOUBLE:
            self.pos += 8
            return struct.unpack_from("<d", self.data, self.pos - 8)[0]
        if kind == BINARY:
            n = self.varint()
            self.pos += n
            return self.data[self.pos - n : self.pos]
        if kind in (LIST, SET):
            head = self.byte()
            n, elem = head >> 4, head & 0x0F
            if n == 15:
                n = self.varint()
            return (elem, [self.value(elem) for _ in range(n)])
        if kind == STRUCT:
            return self.struct()
        raise ValueError(f"type {kind} not supported by the forge")

    def struct(self) -> dict[int, V]:
        out: dict[int, V] = {}
        last = 0
        while True:
            head = self.byte()
            kind = head & 0x0F
            if kind == STOP:
                return out
            fid = last + (head >> 4) if head >> 4 else self.zigzag()
            out[fid] = V(kind, kind == TRUE) if kind in (TRUE, FALSE) else V(kind, self.value(kind))
            last = fid


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        if n < 0x80:
            out.append(n)
            return bytes(out)
        out.append((n & 0x7F) | 0x80)
        n >>= 7


def _zigzag(n: int) -> bytes:
    return _varint((n << 1) ^ (n >> 63))


def _encode_value(kind: int, value: Any) -> bytes:
    if kind in (TRUE, FALSE):
        return bytes([1 if value else 2])
    if kind == BYTE:
        return bytes([value & 0xFF])
    if kind in (I16, I32, I64):
        return _zigzag(value)
    if kind == DOUBLE:
        return struct.pack("<d", value)
    if kind == BINARY:
        return _varint(len(value)) + bytes(value)
    if kind in (LIST, SET):
        elem, items = value
        head = (
            bytes([(len(items) << 4) | elem])
            if len(items) < 15
            else bytes([0xF0 | elem]) + _varint(len(items))
        )
        return head + b"".join(_encode_value(elem, i) for i in items)
    if kind == STRUCT:
        return encode_struct(value)
    raise ValueError(kind)


def encode_struct(fields: dict[int, V]) -> bytes:
    out, last = bytearray(), 0
    for fid in sorted(fields):
        v = fields[fid]
        kind = (TRUE if v.value else FALSE) if v.kind in (TRUE, FALSE) else v.kind
        delta = fid - last
        out += bytes([(delta << 4) | kind]) if 0 < delta <= 15 else bytes([kind]) + _zigzag(fid)
        if kind not in (TRUE, FALSE):
            out += _encode_value(kind, v.value)
        last = fid
    return bytes(out + b"\x00")


@dataclass
class Page:
    header: dict[int, V]
    body: bytes


@dataclass
class Forged:
    """A Parquet file taken apart: its footer and, per row group and column, its pages."""

    footer: dict[int, V]
    pages: list[list[list[Page]]] = field(default_factory=list)

    @classmethod
    def load(cls, data: bytes) -> Forged:
        (n,) = struct.unpack_from("<I", data, len(data) - 8)
        footer = _In(data, len(data) - 8 - n).struct()
        forged = cls(footer)
        for group in footer[4].value[1]:
            columns = []
            for chunk in group[1].value[1]:
                meta = chunk[3].value
                start = meta[11].value if 11 in meta else meta[9].value
                end = start + meta[7].value
                reader, pages = _In(data, start), []
                while reader.pos < end:
                    header = reader.struct()
                    size = header[3].value
                    pages.append(Page(header, data[reader.pos : reader.pos + size]))
                    reader.pos += size
                columns.append(pages)
            forged.pages.append(columns)
        return forged

    def schema(self, column: str) -> dict[int, V]:
        """The schema element of a column, to edit."""
        for element in self.footer[2].value[1][1:]:
            if element[4].value == column.encode():
                return element
        raise KeyError(column)

    def column_index(self, column: str) -> int:
        names = [e[4].value for e in self.footer[2].value[1][1:]]
        return names.index(column.encode())

    def meta(self, group: int, column: int) -> dict[int, V]:
        return self.footer[4].value[1][group][1].value[1][column][3].value

    def with_footer(self, data: bytes) -> bytes:
        """`data` with this footer in place of its own, pages untouched (for forging offsets
        and sizes, which `dump` would recompute)."""
        (n,) = struct.unpack_from("<I", data, len(data) - 8)
        footer = encode_struct(self.footer)
        return data[: len(data) - 8 - n] + footer + struct.pack("<I", len(footer)) + b"PAR1"

    def dump(self) -> bytes:
        out = bytearray(b"PAR1")
        for g, group in enumerate(self.footer[4].value[1]):
            group_start = len(out)
            for c, chunk in enumerate(group[1].value[1]):
                meta = chunk[3].value
                start = len(out)
                for i in (4, 5, 6, 7):  # no page index in forged files
                    chunk.pop(i, None)
                data_offset = None
                for page in self.pages[g][c]:
                    if page.header[1].value != 2 and data_offset is None:
                        data_offset = len(out)
                    out += encode_struct(page.header) + page.body
                if self.pages[g][c] and self.pages[g][c][0].header[1].value == 2:
                    meta[11] = V(I64, start)
                else:
                    meta.pop(11, None)
                meta[9] = V(I64, start if data_offset is None else data_offset)
                meta[7] = V(I64, len(out) - start)
                chunk[2] = V(I64, 0)
            group[5] = V(I64, group_start)
            group[6] = V(I64, len(out) - group_start)
        footer = encode_struct(self.footer)
        return bytes(out + footer + struct.pack("<I", len(footer)) + b"PAR1")


def forge(data: bytes, edit: Any) -> bytes:
    """The file with `edit(Forged)` applied and every offset recomputed."""
    forged = Forged.load(data)
    edit(forged)
    return forged.dump()
