"""What a Parquet file's footer says about its table, its row count and its Arrow columns,
read without pyarrow: export learns both for the manifest without decoding a table.

For files APE wrote (the workspace's); untrusted files go through `parquet_layout`.
"""

from __future__ import annotations

import base64
import binascii
import struct
from dataclasses import dataclass

from apesim.package.arrow_schema import ArrowColumn, arrow_columns
from apesim.package.thrift import Reader, ThriftError

_MAGIC = b"PAR1"
_ARROW_SCHEMA = b"ARROW:schema"


@dataclass(frozen=True)
class FooterFacts:
    rows: int
    columns: list[ArrowColumn] | None  # None: not decodable here (ask pyarrow)


def footer_facts(data: bytes | memoryview) -> FooterFacts | None:
    """The row count and Arrow columns a Parquet file's footer declares, or None when the
    bytes are not a Parquet file whose footer this reads."""
    view = memoryview(data)
    size = len(view)
    if size < 12 or bytes(view[:4]) != _MAGIC or bytes(view[-4:]) != _MAGIC:
        return None
    (footer_size,) = struct.unpack_from("<I", view, size - 8)
    if footer_size > size - 12:
        return None
    try:
        footer = Reader(view, size - 8 - footer_size, size - 8).read_struct()
    except ThriftError:
        return None
    rows = footer.get(3)
    if not isinstance(rows, int) or isinstance(rows, bool) or rows < 0:
        return None
    return FooterFacts(rows, _columns(footer.get(5)))


def _columns(key_values: object) -> list[ArrowColumn] | None:
    """The columns of the footer's `ARROW:schema` entry (base64, as Arrow writes it)."""
    if not isinstance(key_values, list):
        return None
    for entry in key_values:
        if isinstance(entry, dict) and entry.get(1) == _ARROW_SCHEMA:
            value = entry.get(2)
            if not isinstance(value, bytes):
                return None
            try:
                message = base64.b64decode(value, validate=True)
            except (binascii.Error, ValueError):
                message = value
            return arrow_columns(message)
    return None


__all__ = ["FooterFacts", "footer_facts"]
