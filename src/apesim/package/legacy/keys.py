"""The keys of the earlier tables: patient ids unique and listed in patient_index.parquet,
every visit of a known patient, visits ordered and numbered as APE's, each patient's counts
what the visits table holds."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apesim.errors import PackageIntegrityError, PackageLimitError
from apesim.package.legacy.columns import BoolArray, Columns, IntArray
from apesim.package.legacy.format import PATIENT_INDEX, PATIENTS, VISITS
from apesim.package.legacy.names import shown
from apesim.package.legacy.values import INT32_MAX, int16_count, int32_days


def patient_ids(p: Columns, index_table: pa.Table) -> pa.Array:
    """The earlier patient ids: unique, and exactly those of patient_index.parquet."""
    ids = p.string("patient_id", required=True)
    assert ids is not None
    n = len(ids)
    if n > INT32_MAX:
        raise PackageLimitError(f"{PATIENTS}: too many patients", code="legacy.range")
    if pc.count_distinct(ids).as_py() != n:
        raise PackageIntegrityError(
            f"{PATIENTS}: patient_id is not unique", code="consistency.duplicate_patient"
        )
    index = Columns(PATIENT_INDEX, index_table).string("patient_id", required=True)
    assert index is not None
    if len(index) != n or pc.any(pc.is_null(pc.index_in(index, value_set=ids))).as_py():
        raise PackageIntegrityError(
            f"{PATIENT_INDEX}: does not list exactly the patients of {PATIENTS}",
            code="consistency.patient_index",
        )
    return ids


@dataclass(frozen=True)
class VisitRows:
    """Each visit's APE patient id, day and visit number, in APE's row order; `order` maps
    those rows to the earlier table's rows."""

    pid: IntArray
    day: IntArray
    visit: IntArray
    order: IntArray
    last: BoolArray  # the last visit of its patient


def visit_rows(v: Columns, ids: pa.Array, enrol: IntArray) -> VisitRows:
    """Every visit's patient (who must be in the patients table) and day from the
    enrolment day plus its time_days, sorted, at most one per patient and day, numbered."""
    v_ids = v.string("patient_id", required=True)
    assert v_ids is not None
    position = pc.index_in(v_ids, value_set=ids)
    if position.null_count:
        orphan = v_ids.filter(pc.is_null(position))[0].as_py()
        raise PackageIntegrityError(
            f"{VISITS}: visits of patient {shown(orphan)}, who is not in {PATIENTS}",
            code="consistency.orphan_visit",
        )
    pid = np.asarray(position.to_numpy(zero_copy_only=False), dtype=np.int64)
    time_days = v.integer("time_days")[0]
    day = int32_days(VISITS, "time_days", enrol[pid] + time_days)
    order = np.lexsort((day, pid))
    pid, day = pid[order], day[order]
    if pid.size == 0:
        return VisitRows(pid, day, pid, order, np.zeros(0, bool))
    same = (pid[1:] == pid[:-1]) & (day[1:] == day[:-1])
    if same.any():
        who = ids[int(pid[1:][same][0])].as_py()
        raise PackageIntegrityError(
            f"{VISITS}: patient {shown(who)} has two visits on the same day",
            code="consistency.order",
        )
    rows = np.arange(pid.size)
    starts = np.r_[True, pid[1:] != pid[:-1]]
    visit = rows - np.maximum.accumulate(np.where(starts, rows, 0))
    int16_count(VISITS, "visits per patient", visit)
    return VisitRows(pid, day, visit, order, np.r_[pid[1:] != pid[:-1], True])


def check_counts(
    ids: pa.Array, rows: VisitRows, injected: BoolArray, visits: IntArray, injections: IntArray
) -> None:
    """Each patient's total_visits and total_injections are what the visits table holds."""
    n = len(ids)
    for col, counted, stated, code in (
        ("total_visits", np.bincount(rows.pid, minlength=n), visits, "consistency.visits"),
        (
            "total_injections",
            np.bincount(rows.pid[injected], minlength=n),
            injections,
            "consistency.injections",
        ),
    ):
        if not np.array_equal(counted, stated):
            who = ids[int(np.flatnonzero(counted != stated)[0])].as_py()
            raise PackageIntegrityError(
                f"{PATIENTS}: {col} of patient {shown(who)} differs from {VISITS}", code=code
            )
