"""The outcomes at one time as computed before they went one pass for all times (issue 8:
the app's Analysis Overview), kept word for word as the reference `results.outcomes` must
equal. Outcomes at a time after enrolment, for all patients and for those still on treatment:
a pure function of the tables (trials and registries report both, and after stopping a
patient's vision goes on changing under model 2.0).

At time T (days after each patient's enrolment), over the patients whose T falls within the
run and who are alive at T: vision is the last observed reading at or before T (carried
forward, as trials do for missed visits); "on treatment" are those not discontinued by T.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.results.stats import CHANGE_15, horizon_days

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Group:
    """Vision change from baseline at T in one group of patients."""

    n: int
    mean_change: float | None
    gain_15_share: float | None
    loss_15_share: float | None


@dataclass(frozen=True)
class Outcomes:
    """All-patient and on-treatment results at `days` after enrolment."""

    days: int
    all_patients: Group
    on_treatment: Group
    injections_mean: float | None  # injections before T, over the patients observed at T
    discontinued_share: float | None  # stopped treatment by T, of patients whose T is in the run
    dead_share: float | None  # died by T, of the same patients
    ended_share: float | None  # stopped treatment or died by T, of the same patients
    longest_interval_share: float | None  # of on-treatment patients: next interval >= it


def _ints(table: pa.Table, column: str) -> IntArray:
    col = table.column(column)
    if col.null_count:
        col = col.fill_null(-1)
    return np.asarray(col.to_numpy(), dtype=np.int64)


def _column(table: pa.Table, column: str) -> npt.NDArray[np.generic]:
    """A column without nulls as one numpy array in its stored type."""
    return np.asarray(table.column(column).combine_chunks().to_numpy(zero_copy_only=False))


def _group(change: IntArray) -> Group:
    n = int(change.size)
    if n == 0:
        return Group(0, None, None, None)
    return Group(
        n,
        float(change.sum()) / n,
        float((change >= CHANGE_15).sum()) / n,
        float((change <= -CHANGE_15).sum()) / n,
    )


def outcomes_at(
    patients: pa.Table,
    visits: pa.Table,
    years: float,
    days: int,
    longest_interval: int | None = None,
) -> Outcomes:
    """The outcomes `days` after enrolment (tables as the engine writes them: patient ids
    0..n-1, visits sorted by patient and day)."""
    horizon = horizon_days(years)
    enrol = _ints(patients, "enrol_day")
    base = _ints(patients, "baseline_vision")
    stop = _ints(patients, "discontinuation_day")
    death = _ints(patients, "death_day")
    n = enrol.size
    # The visit columns in their stored types (int32 ids and days): millions of rows.
    pid = _column(visits, "patient_id")
    rel = _column(visits, "day") - enrol.astype(np.int32)[pid]
    rows = np.flatnonzero(rel <= days)
    last = np.full(n, -1, np.int64)
    last[pid[rows]] = rows  # sorted by patient and day: the last row at or before T wins
    del rows
    injected = _column(visits, "injected").astype(bool, copy=False)
    injections = np.bincount(pid[injected & (rel < days)], minlength=n)
    del rel, injected
    vision = _column(visits, "vision")

    in_run = enrol + days <= horizon
    alive = (death < 0) | (death > enrol + days)
    seen = in_run & alive & (last >= 0)
    stopped = (stop >= 0) & (stop <= enrol + days)
    on = seen & ~stopped
    change = np.where(last >= 0, vision[np.maximum(last, 0)].astype(np.int64), 0) - base
    runs = int(in_run.sum())
    longest: float | None = None
    if longest_interval is not None and on.any():
        nxt = _ints(visits.select(["next_interval"]).take(pa.array(last[on])), "next_interval")
        longest = float((nxt >= longest_interval).sum()) / int(on.sum())
    return Outcomes(
        days=days,
        all_patients=_group(change[seen]),
        on_treatment=_group(change[on]),
        injections_mean=float(injections[seen].sum()) / int(seen.sum()) if seen.any() else None,
        discontinued_share=float((stopped & in_run).sum()) / runs if runs else None,
        dead_share=float(((death >= 0) & (death <= enrol + days) & in_run).sum()) / runs
        if runs
        else None,
        longest_interval_share=longest,
        ended_share=float(((stopped | ((death >= 0) & (death <= enrol + days))) & in_run).sum())
        / runs
        if runs
        else None,
    )
