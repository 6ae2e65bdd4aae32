"""Summary statistics: a pure function of the tables and the simulated duration.

Vision, days and counts are integers, so every sum is exact and each statistic is a single
correctly-rounded division: the same tables give the same numbers and the same JSON bytes
on every machine.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.limits import DAYS_PER_YEAR
from apesim.results.numpy_view import to_numpy
from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.summary import SUMMARY_SCHEMA, Change, Description, Summary
from apesim.safeload import dump_json

YEAR1_DAYS = 365
CHANGE_15 = 15

IntArray = npt.NDArray[np.int64]


def horizon_days(years: float) -> int:
    return round(years * DAYS_PER_YEAR)


def _ints(table: pa.Table, column: str, fill: int = -1) -> IntArray:
    return to_numpy(table.column(column), fill).astype(np.int64)


def _describe(values: IntArray) -> Description:
    n = int(values.size)
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "median": None}
    s1 = int(values.sum())
    s2 = int((values * values).sum())
    sd = math.sqrt((n * s2 - s1 * s1) / (n * (n - 1))) if n > 1 else None
    return {"n": n, "mean": s1 / n, "sd": sd, "median": float(np.median(values))}


def _change(before: IntArray, after: IntArray) -> Change:
    delta = after - before
    n = int(delta.size)
    if n == 0:
        return {"n": 0, "mean": None, "gain_15_share": None, "loss_15_share": None}
    return {
        "n": n,
        "mean": int(delta.sum()) / n,
        "gain_15_share": int((delta >= CHANGE_15).sum()) / n,
        "loss_15_share": int((delta <= -CHANGE_15).sum()) / n,
    }


IntVector = npt.NDArray[np.signedinteger[Any]]


def run_starts(pid: IntVector) -> npt.NDArray[np.intp]:
    """Where each run of equal patient ids begins in a block of visit rows (sorted by
    patient): 0 and every row whose patient differs from the row before."""
    return np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])


class SummaryPass:
    """The summary statistics accumulated over the visits table one block of rows at a
    time (any cut; sorted by patient and day, every visit's patient in `patients`), so the
    working memory is a few arrays of one entry per patient, whatever the number of visits.

    Each block is read in its stored types: per run of a patient's rows, the year-1
    injections and year-1 (LOCF) vision come from counts of a prefix (days increase within
    a patient), and the first and last injection from the running count of injections."""

    def __init__(self, patients: pa.Table, years: float) -> None:
        self.years = years
        self.horizon = horizon_days(years)
        self.patients = patients
        pid = _ints(patients, "patient_id")
        n = int(pid.size)
        self.positional = n > 0 and pid[0] == 0 and pid[-1] == n - 1
        self.positional = self.positional and bool(np.all(np.diff(pid) == 1))
        self.order = None if self.positional else np.argsort(pid, kind="stable")
        self.pid = pid if self.order is None else pid[self.order]
        self.enrol32 = self._sorted("enrol_day").astype(np.int32)
        self.n = n
        self.visits = 0
        # Per patient: injections in year 1, the year-1 (LOCF) vision, the first and last
        # injection day and the number of injections. A later block's rows of a patient are
        # later visits: the last row seen wins.
        self.inj_year1 = np.zeros(n, np.int64)
        self.vision_year1 = np.full(n, -1, np.int64)
        self.first_inj = np.full(n, -1, np.int64)
        self.last_inj = np.full(n, -1, np.int64)
        self.inj_count = np.zeros(n, np.int64)

    def _sorted(self, column: str) -> IntArray:
        values = _ints(self.patients, column)
        return values if self.order is None else values[self.order]

    def add(
        self,
        pid: IntVector,
        day: IntVector,
        vision: IntVector,
        injected: npt.NDArray[np.bool_],
        starts: npt.NDArray[np.intp] | None = None,
    ) -> None:
        """One block of visit rows as numpy arrays; `starts` are its `run_starts` if known."""
        rows = int(pid.size)
        if not rows:
            return
        self.visits += rows
        row_patient = pid if self.positional else np.searchsorted(self.pid, pid).astype(np.int32)
        if starts is None:
            starts = run_starts(row_patient)
        ends = np.r_[starts[1:], rows]
        who = row_patient[starts]
        rel = day - np.repeat(self.enrol32[who], ends - starts)
        wide = np.int32 if rows < 2**31 else np.int64

        def per_run(mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.int64]:
            running = np.cumsum(mask, dtype=wide)
            return (running[ends - 1] - running[starts] + mask[starts]).astype(np.int64)

        self.inj_year1[who] += per_run(injected & (rel < YEAR1_DAYS))
        seen = per_run(rel <= YEAR1_DAYS)  # a prefix of each run: days increase
        has = seen > 0
        self.vision_year1[who[has]] = vision[starts[has] + seen[has] - 1]
        shots = np.flatnonzero(injected)
        if shots.size:
            shot_who = row_patient[shots]
            at = run_starts(shot_who)  # each treated patient's first injection in `shots`
            firsts, lasts = shots[at], shots[np.r_[at[1:], shots.size] - 1]
            first_who = shot_who[at]
            unset = self.first_inj[first_who] < 0
            self.first_inj[first_who[unset]] = day[firsts[unset]]
            self.last_inj[first_who] = day[lasts]
            self.inj_count[first_who] += np.diff(np.r_[at, shots.size])

    def add_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        """A block given as a batch with (at least) the four visit columns the statistics
        read: patient_id, day, vision, injected."""
        if batch.num_rows:
            pid, day, vision, injected = (
                to_numpy(batch.column(name)) for name in ("patient_id", "day", "vision", "injected")
            )
            self.add(pid, day, vision, injected.astype(bool, copy=False))

    def summary(self) -> Summary:
        """The statistics of the patients and every visit row added."""
        patients, years, horizon = self.patients, self.years, self.horizon
        n = self.n
        enrol = self._sorted("enrol_day")
        base = self._sorted("baseline_vision")
        final = self._sorted("final_vision")
        stop_day = self._sorted("discontinuation_day")
        death = self._sorted("death_day")
        end = np.where(stop_day >= 0, stop_day, np.where(death >= 0, death, horizon))
        follow_days = int(np.maximum(end - enrol, 0).sum())

        inj_count, vision_year1 = self.inj_count, self.vision_year1
        injections = int(inj_count.sum())
        year1_seen = (enrol + YEAR1_DAYS <= horizon) & ((death < 0) | (death > enrol + YEAR1_DAYS))
        n_year1 = int(year1_seen.sum())
        seen = year1_seen & (vision_year1 >= 0)
        # The gaps between a patient's consecutive injections add up to its last injection
        # day minus its first. No injection at all (possible when every patient stops at
        # visit 0): no interval.
        treated = inj_count > 0
        gap_days = int((self.last_inj[treated] - self.first_inj[treated]).sum())
        gap_count = injections - int(treated.sum())

        stopped = stop_day >= 0
        reasons = patients.column("discontinuation_reason").combine_chunks()
        reason_values = reasons.dictionary.to_pylist()
        reason_idx = to_numpy(reasons.indices, -1).astype(np.int64)
        by_reason = dict.fromkeys(DISCONTINUATION_REASONS, 0)
        for i, count in enumerate(
            np.bincount(reason_idx[reason_idx >= 0], minlength=len(reason_values))
        ):
            if count:
                value = str(reason_values[i])
                by_reason[value] = by_reason.get(value, 0) + int(count)

        return {
            "schema": SUMMARY_SCHEMA,
            "patients": n,
            "visits": self.visits,
            "years": years,
            "patient_years": follow_days / DAYS_PER_YEAR,
            "injections": {
                "total": injections,
                "per_patient_year": injections * DAYS_PER_YEAR / follow_days
                if follow_days
                else None,
                "year1_mean": int(self.inj_year1[year1_seen].sum()) / n_year1 if n_year1 else None,
                "year1_patients": n_year1,
            },
            "vision": {
                "baseline": _describe(base),
                "year1": _describe(vision_year1[seen]),
                "end": _describe(final),
            },
            "vision_change": {
                "year1": _change(base[seen], vision_year1[seen]),
                "end": _change(base, final),
            },
            "discontinuation": {
                "total": int(stopped.sum()),
                "rate": int(stopped.sum()) / n if n else None,
                "by_reason": dict(sorted(by_reason.items())),
            },
            "deaths": int((death >= 0).sum()),
            "mean_treatment_interval_days": gap_days / gap_count if gap_count else None,
        }


def compute_summary(patients: pa.Table, visits: pa.Table, years: float) -> Summary:
    """The summary statistics of a simulation (see docs/model.md for each definition).

    `visits` must be sorted by patient and day, and every visit's patient must exist; it
    is read chunk by chunk (`SummaryPass`)."""
    summary = SummaryPass(patients, years)
    for batch in visits.select(["patient_id", "day", "vision", "injected"]).to_batches():
        summary.add_batch(batch)
    return summary.summary()


def summary_json(summary: Summary) -> str:
    """The bytes of summary_stats.json: sorted keys, so equal statistics give equal bytes."""
    return dump_json(summary)
