"""The difference between two simulations' tables, by patient, and the rebuild of the
result from a base and that difference: pure functions on Arrow tables, no I/O.

A patient of the result is *unchanged* when its patients row and all its visits equal the
base's, *changed* when not, *added* when its id is beyond the base's; patients of the base
beyond the result's count are *removed*. The delta holds the changed and added patients'
rows with `kept_visits`, how many of the base's visits of that patient begin the result's
(a longer horizon appends visits), and only the visits after those. Patient ids run
0 .. n - 1 in both tables (the format's rule), so an id is its own row.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.errors import PackageIntegrityError, PackageLimitError
from apesim.results.schema import PATIENTS_SCHEMA, VISITS_SCHEMA

KEPT = "kept_visits"
DELTA_PATIENTS_SCHEMA = PATIENTS_SCHEMA.append(pa.field(KEPT, pa.int32(), nullable=False))
DELTA_VISITS_SCHEMA = VISITS_SCHEMA

Ints = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Delta:
    """What differs: the changed and added patients (`DELTA_PATIENTS_SCHEMA`, by id) and
    their visits after the kept ones (`DELTA_VISITS_SCHEMA`), and the result's patients."""

    patients: pa.Table
    visits: pa.Table
    result_patients: int
    base_patients: int

    @property
    def added(self) -> int:
        return max(self.result_patients - self.base_patients, 0)

    @property
    def changed(self) -> int:
        return self.patients.num_rows - self.added

    @property
    def removed(self) -> int:
        return max(self.base_patients - self.result_patients, 0)


def _offsets(counts: Ints) -> Ints:
    out = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=out[1:])
    return out


def _expand(starts: Ints, lengths: Ints) -> Ints:
    """Row indices: `lengths[i]` consecutive rows from `starts[i]`, segment after segment."""
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    shift = np.repeat(starts - _offsets(lengths)[:-1], lengths)
    return shift + np.arange(total, dtype=np.int64)


def _values(column: pa.ChunkedArray, vocabulary: dict[Any, int]) -> Ints:
    """A column as int64 codes that compare equal exactly when the values do: categories by
    their text (through `vocabulary`, shared by both tables), nulls as -1 (every nullable
    column of the format holds only values of at least 0)."""
    parts: list[Ints] = []
    for chunk in column.chunks:
        if pa.types.is_dictionary(chunk.type):
            words = chunk.dictionary.to_pylist()
            mapping = np.array([vocabulary.setdefault(w, len(vocabulary)) for w in words] + [-1])
            indices = chunk.indices.fill_null(-1).to_numpy(zero_copy_only=False)
            parts.append(mapping[indices.astype(np.int64)])
        elif pa.types.is_boolean(chunk.type):
            parts.append(chunk.to_numpy(zero_copy_only=False).astype(np.int64))
        else:
            filled = chunk.fill_null(-1) if chunk.null_count else chunk
            parts.append(filled.to_numpy(zero_copy_only=False).astype(np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def _ids(table: pa.Table) -> Ints:
    return _values(table.column("patient_id"), {})


def _visit_counts(visits: pa.Table, patients: int) -> Ints:
    ids = _ids(visits)
    if ids.size and (ids.min() < 0 or ids.max() >= patients):
        raise ValueError("a visit's patient is not in the patients table")
    return np.bincount(ids, minlength=patients).astype(np.int64)


def _in_id_order(patients: pa.Table) -> None:
    if not np.array_equal(_ids(patients), np.arange(patients.num_rows)):
        raise ValueError("patients are not in id order 0 .. n - 1")


def compute_delta(
    base_patients: pa.Table, base_visits: pa.Table, patients: pa.Table, visits: pa.Table
) -> Delta:
    """The delta that turns the base's tables into these (raises ValueError for tables that
    are not in the format's order: the caller then writes a full package)."""
    _in_id_order(base_patients)
    _in_id_order(patients)
    nb, nr = base_patients.num_rows, patients.num_rows
    common_ids = min(nb, nr)
    cb, cr = _visit_counts(base_visits, nb), _visit_counts(visits, nr)
    ob, orr = _offsets(cb), _offsets(cr)

    # The visits both have, position by position; a patient keeps the base's visits up to
    # its first difference.
    common = np.minimum(cb[:common_ids], cr[:common_ids])
    owner = np.repeat(np.arange(common_ids, dtype=np.int64), common)
    position = np.arange(owner.size, dtype=np.int64) - np.repeat(_offsets(common)[:-1], common)
    mismatch = np.zeros(owner.size, dtype=bool)
    for name in VISITS_SCHEMA.names:
        vocabulary: dict[Any, int] = {}
        a = _values(base_visits.column(name), vocabulary)[ob[owner] + position]
        b = _values(visits.column(name), vocabulary)[orr[owner] + position]
        mismatch |= a != b
    kept = common.copy()
    if mismatch.any():
        np.minimum.at(kept, owner[mismatch], position[mismatch])

    row_differs = np.zeros(common_ids, dtype=bool)
    for name in PATIENTS_SCHEMA.names:
        vocabulary = {}
        a = _values(base_patients.column(name), vocabulary)[:common_ids]
        b = _values(patients.column(name), vocabulary)[:common_ids]
        row_differs |= a != b
    same = ~row_differs & (kept == cb[:common_ids]) & (kept == cr[:common_ids])
    changed = np.nonzero(~same)[0].astype(np.int64)
    ids = np.concatenate([changed, np.arange(common_ids, nr, dtype=np.int64)])
    kept_of = np.concatenate([kept[changed], np.zeros(nr - common_ids, dtype=np.int64)])

    rows = _expand(orr[ids] + kept_of, cr[ids] - kept_of)
    delta_patients = patients.take(pa.array(ids)).append_column(
        DELTA_PATIENTS_SCHEMA.field(KEPT), pa.array(kept_of, pa.int32())
    )
    return Delta(delta_patients, visits.take(pa.array(rows)), nr, nb)


def _fail(message: str, code: str) -> PackageIntegrityError:
    return PackageIntegrityError(message, code=code)


def rebuild(
    base_patients: pa.Table,
    base_visits: pa.Table,
    delta_patients: pa.Table,
    delta_visits: pa.Table,
    result_patients: int,
    *,
    max_rows: int,
    where: str = "delta",
) -> tuple[pa.Table, pa.Table]:
    """The result's patients and visits from the base and a delta, which is untrusted:
    every id, count and order it relies on is checked first (`PackageIntegrityError`,
    codes `differential.*`), and the result may not exceed `max_rows` rows."""
    nb, nr = base_patients.num_rows, result_patients
    if not 0 <= nr <= max_rows:
        raise PackageLimitError(
            f"{where}: the result would have {nr:,} patients (at most {max_rows:,})",
            code="limit.rows",
        )
    ids = _ids(delta_patients)
    kept = _values(delta_patients.column(KEPT), {})
    if ids.size and (ids.min() < 0 or ids.max() >= nr):
        raise _fail(
            f"{where}: patient_id {int(ids.max() if ids.max() >= nr else ids.min()):,} is "
            f"outside the result's 0 .. {nr - 1:,}",
            "differential.patient_range",
        )
    if ids.size > 1 and not bool(np.all(ids[1:] > ids[:-1])):
        raise _fail(
            f"{where}: patient ids must be unique and in ascending order", "differential.order"
        )
    if int((ids >= nb).sum()) != max(nr - nb, 0):
        raise _fail(
            f"{where}: every patient beyond the base's {nb:,} must be in the delta",
            "differential.missing_patient",
        )
    cb = np.bincount(_ids(base_visits), minlength=nb).astype(np.int64)
    ob = _offsets(cb)
    in_base = ids < nb
    if bool(np.any(kept < 0)) or bool(np.any(kept[~in_base] != 0)):
        raise _fail(
            f"{where}: {KEPT} must be 0 or more, and 0 for an added patient",
            "differential.kept",
        )
    if bool(np.any(kept[in_base] > cb[ids[in_base]])):
        raise _fail(f"{where}: {KEPT} exceeds the base's visits of a patient", "differential.kept")
    visit_ids = _ids(delta_visits)
    if visit_ids.size > 1 and not bool(np.all(visit_ids[1:] >= visit_ids[:-1])):
        raise _fail(f"{where}: visits must be sorted by patient", "differential.order")
    position = np.searchsorted(ids, visit_ids)
    if visit_ids.size and (
        bool(np.any(position >= ids.size))
        or bool(np.any(ids[np.minimum(position, ids.size - 1)] != visit_ids))
    ):
        raise _fail(
            f"{where}: a visit belongs to a patient who is not in the delta",
            "differential.orphan_visit",
        )
    cd = np.bincount(position, minlength=ids.size).astype(np.int64)
    od = _offsets(cd)

    # Per result patient: a segment of the base's visits, then one of the delta's.
    base_len = np.zeros(nr, dtype=np.int64)
    shared = min(nb, nr)
    base_len[:shared] = cb[:shared]
    base_len[ids] = kept
    delta_len = np.zeros(nr, dtype=np.int64)
    delta_len[ids] = cd
    delta_start = np.zeros(nr, dtype=np.int64)
    delta_start[ids] = od[:-1] + base_visits.num_rows
    base_start = np.zeros(nr, dtype=np.int64)
    base_start[:shared] = ob[:shared]
    total = int(base_len.sum() + delta_len.sum())
    if total > max_rows:
        raise PackageLimitError(
            f"{where}: the result would have {total:,} visits (at most {max_rows:,})",
            code="limit.rows",
        )
    starts = np.stack([base_start, delta_start], axis=1).ravel()
    lengths = np.stack([base_len, delta_len], axis=1).ravel()
    rows = _expand(starts, lengths)

    source = np.arange(nr, dtype=np.int64)
    source[ids] = nb + np.arange(ids.size, dtype=np.int64)
    patients = _combined(base_patients, delta_patients.drop_columns([KEPT])).take(pa.array(source))
    visits = _combined(base_visits, delta_visits).take(pa.array(rows))
    return patients, visits


def _combined(base: pa.Table, delta: pa.Table) -> pa.Table:
    """One table of the base's rows, then the delta's, with one dictionary per category
    column (the base's words first, so the result's categories keep their order)."""
    return pa.concat_tables([base, delta.cast(base.schema)]).unify_dictionaries().combine_chunks()


__all__ = [
    "DELTA_PATIENTS_SCHEMA",
    "DELTA_VISITS_SCHEMA",
    "KEPT",
    "Delta",
    "compute_delta",
    "rebuild",
]
