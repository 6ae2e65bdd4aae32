"""Outcomes at a time after enrolment, for all patients and for those still on treatment:
a pure function of the tables (trials and registries report both, and after stopping a
patient's vision goes on changing under model 2.0).

At time T (days after each patient's enrolment), over the patients whose T falls within the
run and who are alive at T: vision is the last observed reading at or before T (carried
forward, as trials do for missed visits); "on treatment" are those not discontinued by T.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.results.numpy_view import table_ints, to_numpy
from apesim.results.stats import CHANGE_15, horizon_days, run_starts

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
    return outcomes_over(patients, visits, years, [days], longest_interval)[0]


def outcomes_over(
    patients: pa.Table,
    visits: pa.Table,
    years: float,
    days: Sequence[int],
    longest_interval: int | None = None,
) -> list[Outcomes]:
    """The outcomes at each of `days` after enrolment, from one pass over the visits, block
    by block in their stored types (a million patients have some twenty million visits):
    per patient and time, the last reading at or before it, the next interval then, and the
    injections before it."""
    enrol = table_ints(patients, "enrol_day").astype(np.int64)
    n, times = int(enrol.size), list(days)
    last_vision = np.full((len(times), n), -1, np.int16)  # -1: no reading by then
    injections = np.zeros((len(times), n), np.int32)
    last_next = None if longest_interval is None else np.full((len(times), n), -1, np.int32)
    enrol32 = enrol.astype(np.int32)
    offsets = np.array(times, dtype=np.int64)
    columns = ["patient_id", "day", "vision", "injected"]
    for batch in visits.select(
        columns + ([] if last_next is None else ["next_interval"])
    ).to_batches():
        if not batch.num_rows:
            continue
        pid, day, vision = (to_numpy(batch.column(c)) for c in columns[:3])
        injected = to_numpy(batch.column("injected")).astype(bool, copy=False)
        nxt = None if last_next is None else to_numpy(batch.column("next_interval"), -1)
        starts = run_starts(pid)
        who = pid[starts]  # sorted by patient and day: a later block's rows are later visits
        # One sorted key for the block: each run's days after enrolment, offset by the run's
        # index, so that the rows of a run at or before T are found by one search per run.
        runs = np.arange(starts.size, dtype=np.int64) << 32
        key = np.repeat(runs - enrol32[who], np.diff(np.r_[starts, batch.num_rows])) + day
        shots = np.r_[0, np.cumsum(injected, dtype=np.int32)]  # injections before each row
        # Every run's every time at once (sorted: by run, then time), one search a side.
        wanted = (runs[:, None] + offsets).ravel()
        ends = np.searchsorted(key, wanted, side="right").reshape(-1, len(times)).T
        befores = np.searchsorted(key, wanted, side="left").reshape(-1, len(times)).T
        for j in range(len(times)):
            has = ends[j] > starts  # the run has a row at or before T
            at = ends[j][has] - 1
            last_vision[j, who[has]] = vision[at]
            if last_next is not None and nxt is not None:
                last_next[j, who[has]] = nxt[at]
            injections[j, who] += shots[befores[j]] - shots[starts]  # rows before T
    people = _People(
        enrol,
        table_ints(patients, "baseline_vision").astype(np.int64),
        table_ints(patients, "discontinuation_day").astype(np.int64),
        table_ints(patients, "death_day").astype(np.int64),
        horizon_days(years),
    )
    return [
        _outcomes(
            people,
            t,
            last_vision[j],
            injections[j],
            None if last_next is None else last_next[j],
            longest_interval,
        )
        for j, t in enumerate(times)
    ]


@dataclass(frozen=True)
class _People:
    """The patients' columns the outcomes read, and the run's horizon in days."""

    enrol: IntArray
    base: IntArray
    stop: IntArray
    death: IntArray
    horizon: int


def _outcomes(
    people: _People,
    days: int,
    last_vision: npt.NDArray[np.int16],
    injections: npt.NDArray[np.int32],
    last_next: npt.NDArray[np.int32] | None,
    longest_interval: int | None,
) -> Outcomes:
    """The outcomes at `days` from what the pass found for each patient by then."""
    enrol, base, stop, death = people.enrol, people.base, people.stop, people.death
    in_run = enrol + days <= people.horizon
    alive = (death < 0) | (death > enrol + days)
    seen = in_run & alive & (last_vision >= 0)
    stopped = (stop >= 0) & (stop <= enrol + days)
    on = seen & ~stopped
    change = last_vision.astype(np.int64) - base
    runs = int(in_run.sum())
    died = (death >= 0) & (death <= enrol + days)
    longest: float | None = None
    if last_next is not None and longest_interval is not None and on.any():
        longest = float((last_next[on] >= longest_interval).sum()) / int(on.sum())
    return Outcomes(
        days=days,
        all_patients=_group(change[seen]),
        on_treatment=_group(change[on]),
        injections_mean=float(injections[seen].sum()) / int(seen.sum()) if seen.any() else None,
        discontinued_share=float((stopped & in_run).sum()) / runs if runs else None,
        dead_share=float((died & in_run).sum()) / runs if runs else None,
        longest_interval_share=longest,
        ended_share=float(((stopped | died) & in_run).sum()) / runs if runs else None,
    )
