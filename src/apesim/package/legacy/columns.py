"""Reading the earlier Parquet tables whatever Arrow types that exporter's pandas and pyarrow
versions produced, under the same limits as our own tables, into a few normalised types."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from apesim.errors import PackageFormatError
from apesim.package import content
from apesim.package import format as fmt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


def read_parquet(
    name: str, data: memoryview, limits: fmt.ReadLimits, max_rows: int | None = None
) -> pa.Table:
    """Read an earlier Parquet file from memory under the same limits as our own tables."""
    table = content.read_parquet(name, data, limits, max_rows=max_rows).combine_chunks()
    if len(set(table.column_names)) != table.num_columns:
        raise PackageFormatError(f"{name}: a column name appears twice", code="parquet.schema")
    return table


def _is_stringy(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


class Columns:
    """The columns of one earlier table, normalised to a few Arrow/numpy types, with the
    variations pandas and pyarrow versions produce accepted: string or large_string (or
    dictionary-encoded), any timestamp unit with or without a zone, integers stored as
    doubles, all-null columns typed null, optional columns missing."""

    def __init__(self, name: str, table: pa.Table) -> None:
        self.name = name
        self.table = table
        self.used: set[str] = set()

    def _get(self, col: str, required: bool) -> pa.Array | None:
        self.used.add(col)
        if col not in self.table.column_names:
            if required:
                raise PackageFormatError(
                    f"{self.name}: missing column {col!r}", code="parquet.schema"
                )
            return None
        array = self.table.column(col).combine_chunks()
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        return array

    def _wrong(self, col: str, array: pa.Array, expected: str) -> PackageFormatError:
        return PackageFormatError(
            f"{self.name}: column {col!r} is {array.type}, expected {expected}",
            code="parquet.schema",
        )

    def _no_nulls(self, col: str, nulls: int) -> None:
        if nulls:
            raise PackageFormatError(
                f"{self.name}: column {col!r} has {nulls:,} missing values", code="parquet.null"
            )

    def string(self, col: str, *, required: bool = False) -> pa.Array | None:
        array = self._get(col, required)
        if array is None:
            return None
        t = array.type
        if not (_is_stringy(t) or pa.types.is_null(t) or pa.types.is_integer(t)):
            raise self._wrong(col, array, "a string")
        array = array.cast(pa.string())
        if required:
            self._no_nulls(col, array.null_count)
        return array

    def number(self, col: str, *, required: bool = False) -> FloatArray | None:
        """Float64 values, NaN where missing."""
        array = self._get(col, required)
        if array is None:
            return None
        t = array.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
            raise self._wrong(col, array, "a number")
        # Unsafe only beyond 2**53, where the range checks refuse the value anyway.
        values = array.cast(pa.float64(), safe=False).fill_null(math.nan)
        values = values.to_numpy(zero_copy_only=False)
        values = np.asarray(values, dtype=np.float64)
        if np.isinf(values).any():
            raise PackageFormatError(
                f"{self.name}: column {col!r} holds an infinity", code="parquet.null"
            )
        if required:
            self._no_nulls(col, int(np.isnan(values).sum()))
        return values

    def integer(self, col: str) -> tuple[IntArray, bool]:
        """Whole numbers of a required column (doubles rounded half up) and whether any value
        had to be rounded."""
        values = self.number(col, required=True)
        assert values is not None
        rounded = np.floor(values + 0.5)
        if np.abs(rounded).max(initial=0) > 2**53:
            raise PackageFormatError(
                f"{self.name}: column {col!r} is out of range", code="legacy.range"
            )
        return rounded.astype(np.int64), bool(np.any(rounded != values))

    def boolean(self, col: str, *, required: bool = False) -> npt.NDArray[np.int8] | None:
        """1, 0, or -1 where missing (booleans, or integers that are all 0 or 1)."""
        array = self._get(col, required)
        if array is None:
            return None
        t = array.type
        binary = pa.types.is_integer(t) and pc.all(
            pc.is_in(array, value_set=pa.array([0, 1], t)), skip_nulls=True
        ).as_py() in (True, None)
        if not (pa.types.is_boolean(t) or pa.types.is_null(t) or binary):
            raise self._wrong(col, array, "a boolean")
        values = array.cast(pa.int8()).fill_null(-1).to_numpy(zero_copy_only=False)
        out = np.asarray(values, dtype=np.int8)
        if required:
            self._no_nulls(col, int((out < 0).sum()))
        return out

    def value(self, col: str, *, required: bool = False) -> Any:
        """The first row's value as Python (for the one-row metadata table)."""
        array = self._get(col, required)
        if array is None:
            return None
        try:
            value = array[0].as_py()
        except (ValueError, OverflowError):  # e.g. a timestamp beyond Python's datetime
            raise PackageFormatError(
                f"{self.name}: column {col!r} holds a value out of range", code="legacy.range"
            ) from None
        if required and value is None:
            self._no_nulls(col, 1)
        return value

    def timestamp(self, col: str) -> pa.Array | None:
        """Timestamps in microseconds (in UTC when zoned); dates as timestamps; strings kept."""
        array = self._get(col, False)
        if array is None:
            return None
        t = array.type
        if pa.types.is_timestamp(t):
            return array.cast(pa.timestamp("us", tz="UTC" if t.tz else None), safe=False)
        if pa.types.is_date(t) or pa.types.is_null(t):
            return array.cast(pa.timestamp("us"))
        if _is_stringy(t):
            return array.cast(pa.string())
        raise self._wrong(col, array, "a timestamp")

    def others(self) -> list[tuple[str, pa.Array]]:
        """The columns not read above, kept as they are (strings and timestamps normalised)."""
        out = []
        for col in self.table.column_names:
            if col in self.used:
                continue
            array = self.table.column(col).combine_chunks()
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            if _is_stringy(array.type):
                array = array.cast(pa.string())
            elif pa.types.is_timestamp(array.type):
                array = array.cast(
                    pa.timestamp("us", tz="UTC" if array.type.tz else None), safe=False
                )
            out.append((col, array))
        return out
