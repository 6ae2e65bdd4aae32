"""Arrow columns as numpy arrays, read from Arrow's own buffers.

pyarrow's `to_numpy` goes through its pandas conversion and imports pandas on first use (about
0.3 s); the package reader and the statistics need only integers and booleans without
nulls, which are a view of the values buffer (booleans unpacked from their bits). Anything
else goes to pyarrow's `to_numpy`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa


def to_numpy(column: pa.Array | pa.ChunkedArray, fill: int | None = None) -> npt.NDArray[Any]:
    """The values of a column as one numpy array: a view for integers without nulls in one
    chunk, unpacked for booleans, nulls replaced by `fill` if given; other columns as
    pyarrow's `to_numpy` gives them."""
    if isinstance(column, pa.ChunkedArray):
        chunks = [c for c in column.chunks if len(c)]
        if len(chunks) == 1:
            return to_numpy(chunks[0], fill)
        if not chunks:
            return column.to_numpy()
        return np.concatenate([to_numpy(c, fill) for c in chunks])
    kind = column.type
    buffers = column.buffers()
    plain = pa.types.is_integer(kind) or pa.types.is_boolean(kind)
    if not plain or len(buffers) != 2 or buffers[1] is None or (column.null_count and fill is None):
        return column.to_numpy(zero_copy_only=False)
    start, count = column.offset, len(column)
    values = _bits(buffers[1], start, count) if pa.types.is_boolean(kind) else _ints(column)
    if not column.null_count:
        return values
    assert buffers[0] is not None and fill is not None  # nulls: a validity bitmap
    return np.where(_bits(buffers[0], start, count), values, fill)


def table_ints(table: pa.Table, column: str, fill: int = -1) -> npt.NDArray[Any]:
    """A whole-number column of a table as numpy in its stored type, nulls as `fill`."""
    return to_numpy(table.column(column), fill)


def non_null(column: pa.Array) -> npt.NDArray[Any]:
    """The values of an integer or boolean array that are not null, as numpy."""
    if not column.null_count:
        return to_numpy(column)
    validity = column.buffers()[0]
    assert validity is not None  # nulls: a validity bitmap
    return to_numpy(column, 0)[_bits(validity, column.offset, len(column))]


def _bits(buffer: pa.Buffer, start: int, count: int) -> npt.NDArray[np.bool_]:
    unpacked = np.unpackbits(
        np.frombuffer(buffer, np.uint8), count=start + count, bitorder="little"
    )
    return unpacked[start:].view(np.bool_)


def _ints(column: pa.Array) -> npt.NDArray[Any]:
    kind = column.type
    dtype = np.dtype(f"{'i' if pa.types.is_signed_integer(kind) else 'u'}{kind.bit_width // 8}")
    values = column.buffers()[1]
    return np.frombuffer(values, dtype, count=len(column), offset=column.offset * dtype.itemsize)


def from_numpy(
    values: npt.NDArray[Any], kind: pa.DataType, mask: npt.NDArray[np.bool_] | None = None
) -> pa.Array:
    """An Arrow array of `kind` (signed integers, floats, timestamps as ticks, booleans) from
    numpy values, null
    where `mask` is true: what `pa.array(values, kind, mask=mask)` gives, without the pandas
    that `pa.array` imports over numpy (0.3 s of every run's start)."""
    count = len(values)
    if pa.types.is_boolean(kind):
        data = np.packbits(np.asarray(values, np.bool_), bitorder="little")
    elif pa.types.is_signed_integer(kind) or pa.types.is_timestamp(kind):  # ticks: int64
        data = np.ascontiguousarray(values, dtype=np.dtype(f"int{kind.bit_width}"))
    elif pa.types.is_floating(kind):
        data = np.ascontiguousarray(values, dtype=np.dtype(f"float{kind.bit_width}"))
    else:
        raise TypeError(f"from_numpy: {kind} is not a signed integer, float, timestamp or bool")
    validity, nulls = None, 0
    if mask is not None:
        nulls = int(np.count_nonzero(mask))
        if nulls:
            validity = pa.py_buffer(np.packbits(~np.asarray(mask, np.bool_), bitorder="little"))
    return pa.Array.from_buffers(kind, count, [validity, pa.py_buffer(data)], null_count=nulls)


def from_strings(values: Sequence[str]) -> pa.Array:
    """An Arrow string array of `values` (no nulls): what `pa.array(values, pa.string())`
    gives, without the pandas that `pa.array` imports."""
    encoded = [value.encode("utf-8") for value in values]
    offsets = np.cumsum([0, *map(len, encoded)], dtype=np.int32)
    buffers = [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))]
    return pa.Array.from_buffers(pa.string(), len(encoded), buffers)


__all__ = ["from_numpy", "from_strings", "non_null", "table_ints", "to_numpy"]
