"""Checks shared by every package format handler: schemas, value ranges, agreement between
the patients and visits tables, and comparison of JSON values. Each takes what it checks as
arguments and raises a `PackageError` with a stable finding code.

The agreement check is one pass over the visits table's own chunks in their stored types
(int32 ids and days): the patient ids are first proven to be 0..n-1, which makes an id its
own position, so no sorting, searching or 64-bit copies of the visit columns are needed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from apesim.engine.simulate import MAX_YEARS
from apesim.errors import PackageFormatError, PackageIntegrityError
from apesim.protocol.schema import STATES
from apesim.results.metadata import SimulationMetadata
from apesim.results.schema import DISCONTINUATION_REASONS, SEX_VALUES


def agree(condition: bool, message: str, code: str) -> None:
    """Raise a `PackageIntegrityError` with `message` and `code` unless `condition` holds."""
    if not condition:
        raise PackageIntegrityError(message, code=code)


def check_schema(name: str, actual: pa.Schema, expected: pa.Schema) -> None:
    """The table `name` has exactly the columns, order, types and nullability expected."""
    if actual.names != expected.names:
        missing = [c for c in expected.names if c not in actual.names]
        extra = [c for c in actual.names if c not in expected.names]
        what = (
            f"missing column {missing[0]!r}"
            if missing
            else f"unexpected column {extra[0]!r}"
            if extra
            else "columns in the wrong order"
        )
        raise PackageFormatError(f"{name}: {what}", code="parquet.schema")
    for got, want in zip(actual, expected, strict=True):
        if not got.type.equals(want.type) or got.nullable != want.nullable:
            raise PackageFormatError(
                f"{name}: column {want.name!r} is {got.type}{'' if got.nullable else ' not null'}"
                f", expected {want.type}{'' if want.nullable else ' not null'}",
                code="parquet.schema",
            )


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first key path where two JSON values differ (floats compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}" if path else key
            if key not in a or key not in b:
                return where
            found = first_difference(a[key], b[key], where)
            if found:
                return found
        return None
    if type(a) is not type(b) and not (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return path or "(root)"
    if isinstance(a, float) or isinstance(b, float):
        return None if (a == b or (math.isnan(a) and math.isnan(b))) else path
    return None if a == b else (path or "(root)")


def check_values(
    patients: pa.Table, visits: pa.Table, meta: SimulationMetadata, params: dict[str, Any]
) -> None:
    """Every value within the ranges and categories the format specifies."""
    years = meta.years
    agree(
        math.isfinite(years) and 0 < years <= MAX_YEARS,
        f"data/metadata.parquet: years must be more than 0 and at most {MAX_YEARS:g}",
        "consistency.values",
    )
    agree(meta.seed >= 0, "data/metadata.parquet: seed must not be negative", "consistency.values")
    agree(
        math.isfinite(meta.runtime_seconds) and meta.runtime_seconds >= 0,
        "data/metadata.parquet: runtime_seconds must be a number of seconds",
        "consistency.values",
    )
    months = params.get("recruitment_months")
    agree(
        isinstance(months, (int, float)) and math.isfinite(months) and 0 <= months <= 12 * years,
        "parameters.json: recruitment_months must lie between 0 and the duration",
        "consistency.values",
    )
    for table, column, allowed in (
        (patients, "sex", SEX_VALUES),
        (patients, "discontinuation_reason", DISCONTINUATION_REASONS),
        (visits, "state", STATES),
    ):
        values: set[Any] = set()
        for chunk in table.column(column).chunks:  # each chunk's dictionary, never unified
            values.update(chunk.dictionary.to_pylist())
        unknown = sorted(str(v) for v in values - set(allowed))
        agree(
            not unknown,
            f"{column}: unknown value {unknown[0][:40]!r} (expected one of {', '.join(allowed)})"
            if unknown
            else "",
            "consistency.values",
        )
    for table, column, low, high in (
        (patients, "baseline_vision", 0, 100),
        (patients, "final_vision", 0, 100),
        (visits, "vision", 0, 100),
        (patients, "baseline_age", -1, 120),
        (patients, "enrol_day", 0, None),
        (visits, "day", 0, None),
        (visits, "visit", 0, None),
        (visits, "next_interval", 1, None),
    ):
        bounds = pc.min_max(table.column(column))
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        agree(
            lo is None or (lo >= low and (high is None or hi <= high)),
            f"{column}: values must lie in {low}..{high if high is not None else ''}",
            "consistency.values",
        )
    check_patient_ids(patients)


def check_patient_ids(patients: pa.Table) -> None:
    """The smallest patient id is 0 and the largest patients - 1."""
    n = patients.num_rows
    bounds = pc.min_max(patients.column("patient_id"))
    agree(
        n == 0 or (bounds["min"].as_py() == 0 and bounds["max"].as_py() == n - 1),
        "data/patients.parquet: patient_id must run from 0 to patients - 1",
        "consistency.values",
    )


def _arrays(column: pa.ChunkedArray) -> Iterator[npt.NDArray[Any]]:
    """The chunks of a column without nulls as numpy arrays (views for numbers)."""
    for chunk in column.chunks:
        if len(chunk):
            yield chunk.to_numpy(zero_copy_only=False)


def check_tables_agree(patients: pa.Table, visits: pa.Table) -> None:
    """Patient ids unique; visits sorted by patient and day; every visit's patient exists;
    visit counts per patient as the patients table says.

    The ids are checked to run from 0 to n - 1 first (`check_patient_ids`), so they are unique
    when every position is taken once, and a visit's patient exists when its id is in range.
    """
    check_patient_ids(patients)
    n = patients.num_rows
    taken = np.zeros(n, np.bool_)
    for ids in _arrays(patients.column("patient_id")):
        taken[ids] = True
    if not taken.all():  # n ids in 0..n-1, one position empty: another taken twice
        raise PackageIntegrityError(
            "data/patients.parquet: patient_id is not unique", code="consistency.duplicate_patient"
        )
    del taken

    # One pass over the visits: order, and where each patient's run of rows begins.
    starts: list[npt.NDArray[np.int64]] = []
    first_id = last_id = last_day = None
    offset = 0
    for pid, day in zip(
        _arrays(visits.column("patient_id")), _arrays(visits.column("day")), strict=True
    ):
        if last_id is not None:
            assert last_day is not None
            if pid[0] < last_id or (pid[0] == last_id and day[0] <= last_day):
                _unsorted()
        else:
            first_id = int(pid[0])
        same = pid[1:] == pid[:-1]
        if np.any(pid[1:] < pid[:-1]) or np.any(same & (day[1:] <= day[:-1])):
            _unsorted()
        new = np.flatnonzero(~same) + 1
        if last_id is None or pid[0] != last_id:
            starts.append(np.array([offset], np.int64))
        starts.append(new + offset)
        last_id, last_day = int(pid[-1]), int(day[-1])
        offset += len(pid)
    if first_id is None:  # no visits
        counts = np.zeros(n, np.int64)
    else:
        assert last_id is not None
        if first_id < 0 or last_id >= n:
            missing = first_id if first_id < 0 else _first_at_least(visits, n)
            raise PackageIntegrityError(
                f"data/visits.parquet: visits of patient {missing}, who is "
                "not in data/patients.parquet",
                code="consistency.orphan_visit",
            )
        run_starts = np.concatenate(starts)
        run_ids = _take(visits.column("patient_id"), run_starts)
        counts = np.zeros(n, np.int64)
        counts[run_ids] = np.diff(np.append(run_starts, offset))
    declared = np.zeros(n, np.int64)
    for ids, number in zip(
        _arrays(patients.column("patient_id")), _arrays(patients.column("visits")), strict=True
    ):
        declared[ids] = number
    if not np.array_equal(counts, declared):
        raise PackageIntegrityError(
            "data/patients.parquet: visit counts differ from data/visits.parquet",
            code="consistency.visits",
        )


def _unsorted() -> None:
    raise PackageIntegrityError(
        "data/visits.parquet: rows are not sorted by patient_id and day",
        code="consistency.order",
    )


def _take(column: pa.ChunkedArray, rows: npt.NDArray[np.int64]) -> npt.NDArray[Any]:
    """`column[rows]` for ascending `rows`, chunk by chunk."""
    out = []
    begin = 0
    for values in _arrays(column):
        end = begin + len(values)
        lo, hi = np.searchsorted(rows, [begin, end])
        out.append(values[rows[lo:hi] - begin])
        begin = end
    return np.concatenate(out) if out else np.zeros(0, np.int64)


def _first_at_least(visits: pa.Table, n: int) -> int:
    """The first patient id of at least `n` in the (sorted) visits table."""
    for pid in _arrays(visits.column("patient_id")):
        if pid[-1] >= n:
            return int(pid[np.searchsorted(pid, n)])
    raise AssertionError("no such visit")  # the caller saw one


__all__ = [
    "agree",
    "check_patient_ids",
    "check_schema",
    "check_tables_agree",
    "check_values",
    "first_difference",
]
