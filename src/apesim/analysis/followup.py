"""What the analyses share: each patient's follow-up, and the visit rows read block by block.

Patients (a million at most ten) are held whole, as int64 arrays sorted by id. Visits (tens
of millions of rows) are read in blocks of `BLOCK_ROWS` rows in their stored types (int32
days and ids, int16 vision), so an analysis never holds a row-sized int64 copy: its working
memory is a few blocks, whatever the size of the simulation.

Time is counted from each patient's enrolment: a month is 365.25 / 12 days and a year
365.25 days, as in `apesim.results.stats`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from apesim.results.stats import DAYS_PER_YEAR, horizon_days

DAYS_PER_MONTH = DAYS_PER_YEAR / 12
BLOCK_ROWS = 1 << 20  # visit rows per block: the Parquet row group of the store

IntArray = npt.NDArray[np.int64]
Index = npt.NDArray[np.integer[Any]]


def ints(table: pa.Table, column: str, fill: int = -1) -> IntArray:
    """A column as int64, nulls as `fill` (for patient-sized columns)."""
    col = table.column(column)
    if col.null_count:
        col = col.fill_null(fill)
    return np.asarray(col.to_numpy(), dtype=np.int64)


def follow_up_end(patients: pa.Table, years: float) -> IntArray:
    """Per patient (in table order), the first day after follow-up: the day after a
    discontinuation visit, else the day of death, else the end of the simulated period."""
    horizon = horizon_days(years)
    stop = ints(patients, "discontinuation_day")
    death = ints(patients, "death_day")
    return np.where(stop >= 0, stop + 1, np.where(death >= 0, death, horizon))


@dataclass(frozen=True)
class FollowUp:
    """Each patient's id, enrolment and end of follow-up, sorted by id (int64)."""

    pid: IntArray
    enrol: IntArray
    end: IntArray  # first day no longer in follow-up (exclusive)
    dense: bool  # ids are 0..n-1 (as the engine writes them): an id is its own position

    @property
    def size(self) -> int:
        return int(self.pid.size)

    def rows(self, visit_pid: Index) -> Index:
        """The position (in `pid`) of the patient of each visit row."""
        return visit_pid if self.dense else np.searchsorted(self.pid, visit_pid)

    def origin(self, visits: pa.Table, lo: int = 0) -> Index:
        """Per patient, the day counted as `lo` for its visits: `day - origin[row_patient]`
        is the visit's day since enrolment minus `lo`. int32 (the visits' own type) when no
        difference can overflow it, else int64."""
        origin = self.enrol + lo
        days = pc.min_max(visits.column("day")).as_py() if visits.num_rows else {}
        bound = 2**30
        values = [*days.values(), int(origin.min()) if origin.size else 0]
        if (
            origin.size
            and int(origin.max()) < bound
            and all(v is not None and -bound <= v < bound for v in values)
        ):
            return origin.astype(np.int32)
        return origin


def follow_up(patients: pa.Table, years: float) -> FollowUp:
    """The patients' follow-up, sorted by id."""
    pid = ints(patients, "patient_id")
    order = np.argsort(pid, kind="stable")
    pid = pid[order]
    n = pid.size
    dense = bool(n and pid[0] == 0 and pid[-1] == n - 1 and np.all(np.diff(pid) == 1))
    enrol = ints(patients, "enrol_day")[order]
    end = follow_up_end(patients, years)[order]
    return FollowUp(pid, enrol, end, dense)


def visit_blocks(
    visits: pa.Table, columns: Sequence[str], *, lookahead: int = 0, block: int | None = None
) -> Iterator[tuple[int, dict[str, npt.NDArray[Any]]]]:
    """(rows, {column: numpy array}) for consecutive blocks of `rows` visit rows (`block`,
    by default `BLOCK_ROWS`), in their stored types; with `lookahead`, the arrays also hold
    up to that many rows of the next block (the last block has none). Non-null columns
    only; booleans come as numpy bools."""
    total = visits.num_rows
    block = block or BLOCK_ROWS
    for start in range(0, total, block):
        rows = min(block, total - start)
        part = visits.slice(start, min(rows + lookahead, total - start))
        yield rows, {c: _numpy(part.column(c)) for c in columns}


def _numpy(column: pa.ChunkedArray) -> npt.NDArray[Any]:
    chunk = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    return np.asarray(chunk.to_numpy(zero_copy_only=False))


def months(years: float) -> IntArray:
    """Whole months since enrolment that fall inside the simulated period."""
    last = int((horizon_days(years) - 1) // DAYS_PER_MONTH)
    return np.arange(last + 1, dtype=np.int64)


def months_before(days: IntArray, size: int) -> IntArray:
    """How many of the months 0..size-1 start before each day: the first month whose
    first day, floor(m * DAYS_PER_MONTH), is on or after `days`. (DAYS_PER_MONTH is
    30.4375, exact in binary, so the division is exact enough for whole days.)"""
    return np.clip(np.ceil(days / DAYS_PER_MONTH), 0, size).astype(np.int64)


@dataclass(frozen=True)
class DayTable:
    """A function of whole days held in a table: `values[day - lo]`, for a function that is
    constant below `lo` and from `lo + values.size - 1` on (row-sized work in the stored
    types, without a float division per row)."""

    lo: int
    values: npt.NDArray[np.int32]

    def at(self, offset: Index) -> npt.NDArray[np.int32]:
        """The function at the days `lo + offset` (offsets outside the table are clamped)."""
        return np.take(self.values, offset, mode="clip")

    def __call__(self, days: Index) -> npt.NDArray[np.int32]:
        return self.at(days - self.lo if self.lo else days)


def months_before_table(size: int) -> DayTable:
    """`months_before(day, size)` for every day: 0 on or before day 0, `size` from the
    first day of month `size`."""
    hi = int(np.ceil(size * DAYS_PER_MONTH))
    return DayTable(0, months_before(np.arange(hi + 1, dtype=np.int64), size).astype(np.int32))


def year_of_table(n_years: int) -> DayTable:
    """floor(day / DAYS_PER_YEAR) for every day, clamped to -1 below day 0 and to
    `n_years` from the first day of year `n_years` (both mean "outside the years")."""
    hi = int(np.ceil(n_years * DAYS_PER_YEAR))
    days = np.arange(-1, hi + 1, dtype=np.int64)
    values = np.minimum(np.floor(days / DAYS_PER_YEAR), n_years).astype(np.int32)
    return DayTable(-1, values)
