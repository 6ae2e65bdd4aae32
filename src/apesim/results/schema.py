"""The Arrow schemas of a simulation's tables: one place, used by the engine, the store,
the package reader and writer. Types are compact: dictionary-encoded categories and the
narrowest integer types that hold the values.
"""

from __future__ import annotations

import functools
from typing import TypedDict

import pyarrow as pa

from apesim.results.categories import DISCONTINUATION_REASONS, SEX_VALUES, SEXES
from apesim.results.numpy_view import from_strings

__all__ = ["DISCONTINUATION_REASONS", "SEXES", "SEX_VALUES"]  # and the schemas below

_CATEGORY = pa.dictionary(pa.int8(), pa.string())

PATIENTS_SCHEMA = pa.schema(
    [
        pa.field("patient_id", pa.int32(), nullable=False),
        pa.field("enrol_day", pa.int32(), nullable=False),
        pa.field("baseline_age", pa.int16(), nullable=False),
        pa.field("sex", _CATEGORY, nullable=False),
        pa.field("baseline_vision", pa.int16(), nullable=False),
        pa.field("final_vision", pa.int16(), nullable=False),
        pa.field("injections", pa.int16(), nullable=False),
        pa.field("visits", pa.int16(), nullable=False),
        pa.field("discontinuation_day", pa.int32()),
        pa.field("discontinuation_reason", _CATEGORY),
        pa.field("death_day", pa.int32()),
    ]
)

VISITS_SCHEMA = pa.schema(
    [
        pa.field("patient_id", pa.int32(), nullable=False),
        pa.field("day", pa.int32(), nullable=False),
        pa.field("visit", pa.int16(), nullable=False),
        pa.field("state", _CATEGORY, nullable=False),
        pa.field("vision", pa.int16(), nullable=False),
        pa.field("injected", pa.bool_(), nullable=False),
        pa.field("next_interval", pa.int16()),
    ]
)

METADATA_SCHEMA = pa.schema(
    [
        pa.field("sim_id", pa.string(), nullable=False),
        pa.field("name", pa.string(), nullable=False),
        pa.field("protocol_name", pa.string(), nullable=False),
        pa.field("protocol_version", pa.string(), nullable=False),
        pa.field("protocol_fingerprint", pa.string(), nullable=False),
        pa.field("engine_version", pa.string(), nullable=False),
        pa.field("patients", pa.int64(), nullable=False),
        pa.field("years", pa.float64(), nullable=False),
        pa.field("seed", pa.int64(), nullable=False),
        pa.field("created_utc", pa.timestamp("us", tz="UTC"), nullable=False),
        pa.field("runtime_seconds", pa.float64(), nullable=False),
    ]
)


def dictionary(values: tuple[str, ...]) -> pa.Array:
    """The dictionary of a category column (built on use, from its strings' buffers:
    `pa.array` imports pandas, 0.3 s that no command should pay for)."""
    return _dictionary(values)


@functools.cache
def _dictionary(values: tuple[str, ...]) -> pa.Array:
    return from_strings(values)


# Parquet layout shared by the workspace and the package: the package stores these files
# as they are, so the same bytes travel everywhere. Encodings were chosen column by column
# for size (benchmarks/bench_package.py): byte-stream-split for small integers that vary,
# delta for ids, dictionaries for categories; all readable by pyarrow, R arrow and DuckDB.
_BSS, _DELTA, _PLAIN = "BYTE_STREAM_SPLIT", "DELTA_BINARY_PACKED", "PLAIN"


class ParquetOptions(TypedDict):
    """Keyword arguments of `pyarrow.parquet.ParquetWriter`, for all columns of all tables."""

    compression: str
    compression_level: int
    use_dictionary: list[str]
    column_encoding: dict[str, str]
    write_statistics: bool
    store_schema: bool


PARQUET_OPTIONS: ParquetOptions = {
    "compression": "zstd",
    "compression_level": 9,
    "use_dictionary": ["sex", "discontinuation_reason", "discontinuation_day", "state"],
    "column_encoding": {
        "patient_id": _DELTA,
        "enrol_day": _PLAIN,
        "baseline_age": _BSS,
        "baseline_vision": _BSS,
        "final_vision": _BSS,
        "injections": _BSS,
        "visits": _BSS,
        "death_day": _BSS,
        "day": _PLAIN,
        "visit": _BSS,
        "vision": _BSS,
        "injected": _PLAIN,
        "next_interval": _BSS,
    },
    "write_statistics": True,
    "store_schema": True,
}
ROW_GROUP_ROWS = 1 << 20
