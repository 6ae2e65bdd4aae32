"""Checks shared by every package format handler: schemas, value ranges, agreement between
the patients and visits tables, and comparison of JSON values. Each takes what it checks as
arguments and raises a `PackageError` with a stable finding code.

The visits table is read in one pass (`VisitPass`), block by block in its stored types
(int32 ids and days), as it is decoded: it gathers what the value and agreement checks need
(`VisitFacts`: bounds, categories, order, orphans, visit counts per patient) and can feed the
summary statistics, so the decoded table need not be kept. The patient ids are first proven
to be 0..n-1, which makes an id its own position: no sorting, searching or 64-bit copies of
the visit columns are needed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.errors import PackageFormatError, PackageIntegrityError
from apesim.limits import MAX_YEARS
from apesim.results.dictionary import PATIENTS, VISITS, Table
from apesim.results.metadata import SimulationMetadata
from apesim.results.numpy_view import non_null, to_numpy
from apesim.results.stats import SummaryPass, run_starts


def _ranges(table: Table) -> tuple[tuple[str, int, int | None], ...]:
    """The columns with a range in the data dictionary (which the README and
    datapackage.json state): (column, lowest, highest or None); ids have their own check."""
    return tuple(
        (c.name, c.minimum, c.maximum)
        for c in table.columns
        if c.minimum is not None and c.name != "patient_id"
    )


# The visit columns whose values have bounds: (column, lowest, highest or None).
_VISIT_BOUNDS = _ranges(VISITS)
_PATIENT_BOUNDS = _ranges(PATIENTS)
_SEX_VALUES = PATIENTS.column("sex").categories or ()
_REASONS = PATIENTS.column("discontinuation_reason").categories or ()
_STATES = VISITS.column("state").categories or ()


def check_sha256(name: str, data: bytes | memoryview, expected: str) -> None:
    """The file's SHA-256 is the one its manifest lists (`checksum.sha256`)."""
    if hashlib.sha256(data).hexdigest() != expected:
        raise PackageIntegrityError(
            f"{name}: SHA-256 does not match the manifest (the file was altered or corrupted)",
            code="checksum.sha256",
        )


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
    patients: pa.Table,
    visits: pa.Table | VisitFacts,
    meta: SimulationMetadata,
    params: dict[str, Any],
) -> None:
    """Every value within the ranges and categories the format specifies (`visits`: the
    table, or what a `VisitPass` over it found)."""
    facts = visits if isinstance(visits, VisitFacts) else visit_facts(patients, visits)
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
    for column, values, allowed in (
        ("sex", _categories(patients, "sex"), _SEX_VALUES),
        ("discontinuation_reason", _categories(patients, "discontinuation_reason"), _REASONS),
        ("state", facts.states, _STATES),
    ):
        unknown = sorted(str(v) for v in values - set(allowed))
        agree(
            not unknown,
            f"{column}: unknown value {unknown[0][:40]!r} (expected one of {', '.join(allowed)})"
            if unknown
            else "",
            "consistency.values",
        )
    for column, low, high in (*_PATIENT_BOUNDS, *_VISIT_BOUNDS):
        lo, hi = facts.bounds[column] if column in facts.bounds else _bounds(patients, column)
        agree(
            lo is None or (lo >= low and (high is None or hi <= high)),
            f"{column}: values must lie in {low}..{high if high is not None else ''}",
            "consistency.values",
        )
    check_patient_ids(patients)


def _categories(table: pa.Table, column: str) -> set[Any]:
    """The values of a category column's dictionaries (each chunk's, never unified)."""
    values: set[Any] = set()
    for chunk in table.column(column).chunks:
        values.update(chunk.dictionary.to_pylist())
    return values


def _bounds(table: pa.Table | pa.RecordBatch, column: str) -> tuple[Any, Any]:
    """The smallest and largest value of an integer column, nulls left out (None, None if
    there is none): numpy over Arrow's buffers, so the reader needs no pyarrow.compute."""
    lows: list[int] = []
    highs: list[int] = []
    for chunk in _chunks(table.column(column)):
        values = non_null(chunk)
        if values.size:
            lows.append(int(values.min()))
            highs.append(int(values.max()))
    return (min(lows), max(highs)) if lows else (None, None)


def check_patient_ids(patients: pa.Table) -> None:
    """The smallest patient id is 0 and the largest patients - 1."""
    n = patients.num_rows
    low, high = _bounds(patients, "patient_id")
    agree(
        n == 0 or (low == 0 and high == n - 1),
        "data/patients.parquet: patient_id must run from 0 to patients - 1",
        "consistency.values",
    )


def _arrays(column: pa.ChunkedArray) -> Iterator[npt.NDArray[Any]]:
    """The chunks of a column without nulls as numpy arrays (views for numbers)."""
    for chunk in column.chunks:
        if len(chunk):
            yield to_numpy(chunk)


def patient_ids_proven(patients: pa.Table) -> bool:
    """Whether the patient ids run from 0 to n - 1, each once: then an id is its own
    position (what `check_tables_agree` checks first)."""
    try:
        _check_patient_positions(patients)
    except PackageIntegrityError:
        return False
    return True


def _check_patient_positions(patients: pa.Table) -> None:
    check_patient_ids(patients)
    taken = np.zeros(patients.num_rows, np.bool_)
    for ids in _arrays(patients.column("patient_id")):
        taken[ids] = True
    if not taken.all():  # n ids in 0..n-1, one position empty: another taken twice
        raise PackageIntegrityError(
            "data/patients.parquet: patient_id is not unique", code="consistency.duplicate_patient"
        )


@dataclass
class VisitFacts:
    """What one pass over the visits table found, for the checks that come after it."""

    rows: int = 0
    bounds: dict[str, tuple[Any, Any]] = field(default_factory=dict)  # (min, max); None: none
    states: set[Any] = field(default_factory=set)
    unsorted: bool = False  # rows not sorted by patient_id and day
    orphan: int | None = None  # the first visit's patient id outside 0..n-1 (sorted rows)
    counts: npt.NDArray[np.int64] | None = None  # visits per patient id; None: not counted


class VisitPass:
    """One pass over the visits table, block by block as it is decoded (`add`); `summary`,
    if given, is fed every block while the rows are sorted and their patients exist (as
    `SummaryPass` requires). Without `values`, only the order and counts are gathered (the
    agreement check of tables that hold just the id and day)."""

    def __init__(
        self, patients: int, summary: SummaryPass | None = None, *, values: bool = True
    ) -> None:
        self.n = patients
        self.summary = summary
        self.values = values
        self.found = VisitFacts(
            bounds=dict.fromkeys((c for c, _, _ in _VISIT_BOUNDS), (None, None)),
            counts=np.zeros(patients, np.int64),
        )
        self.last: tuple[int, int] | None = None  # the previous block's last (id, day)

    def add(self, batch: pa.RecordBatch | pa.Table) -> None:
        found = self.found
        rows = batch.num_rows
        if not rows:
            return
        found.rows += rows
        if self.values:
            self._values(batch)
        pid = _numbers(batch.column("patient_id"))
        day = _numbers(batch.column("day"))
        if self.last is not None:
            last_id, last_day = self.last
            if pid[0] < last_id or (pid[0] == last_id and day[0] <= last_day):
                found.unsorted = True
        same = pid[1:] == pid[:-1]
        if np.any(pid[1:] < pid[:-1]) or np.any(same & (day[1:] <= day[:-1])):
            found.unsorted = True
        self.last = int(pid[-1]), int(day[-1])
        if found.unsorted or found.orphan is not None:
            found.counts = None  # the order or orphan finding comes first: nothing to count
            return
        if pid[0] < 0:
            found.orphan = int(pid[0])
        elif pid[-1] >= self.n:
            found.orphan = int(pid[np.searchsorted(pid, self.n)])
        if found.orphan is not None:
            found.counts = None
            return
        starts = run_starts(pid)
        assert found.counts is not None
        found.counts[pid[starts]] += np.diff(np.r_[starts, rows])
        if self.summary is not None:
            vision = _numbers(batch.column("vision"))
            injected = _numbers(batch.column("injected")).astype(bool, copy=False)
            self.summary.add(pid, day, vision, injected, starts)

    def _values(self, batch: pa.RecordBatch | pa.Table) -> None:
        """The block's categories and the bounds of its bounded columns."""
        found = self.found
        for chunk in _chunks(batch.column("state")):
            found.states.update(chunk.dictionary.to_pylist())
        for column, _, _ in _VISIT_BOUNDS:
            lo, hi = _bounds(batch, column)
            old_lo, old_hi = found.bounds[column]
            if lo is not None:
                found.bounds[column] = (
                    lo if old_lo is None else min(lo, old_lo),
                    hi if old_hi is None else max(hi, old_hi),
                )

    def facts(self) -> VisitFacts:
        return self.found


def _chunks(column: pa.ChunkedArray | pa.Array) -> list[pa.Array]:
    return list(column.chunks) if isinstance(column, pa.ChunkedArray) else [column]


def _numbers(column: pa.ChunkedArray | pa.Array) -> npt.NDArray[Any]:
    """A column without nulls of a block as one numpy array (a view for one chunk)."""
    return to_numpy(column)


def visit_facts(patients: pa.Table, visits: pa.Table, *, values: bool = True) -> VisitFacts:
    """A `VisitPass` over a whole visits table, chunk by chunk."""
    visit_pass = VisitPass(patients.num_rows, values=values)
    for batch in visits.to_batches():
        visit_pass.add(batch)
    return visit_pass.facts()


def check_tables_agree(patients: pa.Table, visits: pa.Table | VisitFacts) -> None:
    """Patient ids unique; visits sorted by patient and day; every visit's patient exists;
    visit counts per patient as the patients table says (`visits`: the table, or what a
    `VisitPass` over it found).

    The ids are checked to run from 0 to n - 1 first (`check_patient_ids`), so they are unique
    when every position is taken once, and a visit's patient exists when its id is in range.
    """
    _check_patient_positions(patients)
    facts = (
        visits if isinstance(visits, VisitFacts) else visit_facts(patients, visits, values=False)
    )
    if facts.unsorted:
        _unsorted()
    if facts.orphan is not None:
        raise PackageIntegrityError(
            f"data/visits.parquet: visits of patient {facts.orphan}, who is "
            "not in data/patients.parquet",
            code="consistency.orphan_visit",
        )
    assert facts.counts is not None
    n = patients.num_rows
    declared = np.zeros(n, np.int64)
    for ids, number in zip(
        _arrays(patients.column("patient_id")), _arrays(patients.column("visits")), strict=True
    ):
        declared[ids] = number
    if not np.array_equal(facts.counts, declared):
        raise PackageIntegrityError(
            "data/patients.parquet: visit counts differ from data/visits.parquet",
            code="consistency.visits",
        )


def _unsorted() -> None:
    raise PackageIntegrityError(
        "data/visits.parquet: rows are not sorted by patient_id and day",
        code="consistency.order",
    )


__all__ = [
    "VisitFacts",
    "VisitPass",
    "agree",
    "check_patient_ids",
    "check_schema",
    "check_sha256",
    "check_tables_agree",
    "check_values",
    "first_difference",
    "patient_ids_proven",
    "visit_facts",
]
