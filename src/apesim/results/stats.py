"""Summary statistics: a pure function of the tables and the simulated duration.

Vision, days and counts are integers, so every sum is exact and each statistic is a single
correctly-rounded division: the same tables give the same numbers and the same JSON bytes
on every machine. This module reads the rows (`SummaryPass`); `results.tally` says what
each statistic counts and divides.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.limits import DAYS_PER_YEAR
from apesim.results.numpy_view import table_ints, to_numpy
from apesim.results.summary import Summary
from apesim.results.tally import (
    CHANGE_15,
    YEAR1_DAYS,
    PatientFacts,
    Tally,
    summary_of,
    tally_patients,
)
from apesim.safeload import dump_json

__all__ = [
    "CHANGE_15",
    "DAYS_PER_YEAR",
    "YEAR1_DAYS",
    "SummaryPass",
    "compute_summary",
    "horizon_days",
    "run_starts",
    "summary_json",
    "tally_block",
]

IntArray = npt.NDArray[np.signedinteger[Any]]


def horizon_days(years: float) -> int:
    return round(years * DAYS_PER_YEAR)


IntVector = npt.NDArray[np.signedinteger[Any]]

VISIT_COLUMNS = ("patient_id", "day", "vision", "injected")  # what the statistics read


def run_starts(pid: IntVector) -> npt.NDArray[np.intp]:
    """Where each run of equal patient ids begins in a block of visit rows (sorted by
    patient): 0 and every row whose patient differs from the row before."""
    return np.flatnonzero(np.r_[True, pid[1:] != pid[:-1]])


class SummaryPass:
    """The summary statistics accumulated over the visits table one block of rows at a
    time (any cut; sorted by patient and day, every visit's patient in `patients`), so the
    working memory is a few arrays of one entry per patient, whatever the number of visits.

    Each block is read in its stored types, with counts per run of a patient's rows: the
    year-1 injections, the year-1 (LOCF) vision as the last row of a prefix (days increase
    within a patient), and the first and last injection found from the injections before
    the run."""

    def __init__(self, patients: pa.Table, years: float) -> None:
        self.years = years
        self.horizon = horizon_days(years)
        self.patients = patients
        pid = table_ints(patients, "patient_id")
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
        values = table_ints(self.patients, column)
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
        if starts is None:
            starts = run_starts(pid)
        # Each run's patient, as a position in the patients' (sorted) order: found once per
        # run, not per visit row.
        who = pid[starts] if self.positional else np.searchsorted(self.pid, pid[starts])
        limit = np.repeat(self.enrol32[who] + YEAR1_DAYS, np.diff(np.r_[starts, rows]))
        self.inj_year1[who] += np.add.reduceat(injected & (day < limit), starts, dtype=np.int32)
        seen = np.add.reduceat(day <= limit, starts, dtype=np.int32)  # a prefix of each run
        has = seen > 0
        self.vision_year1[who[has]] = vision[starts[has] + seen[has] - 1]
        count = np.add.reduceat(injected, starts, dtype=np.int32)
        treated = np.flatnonzero(count)
        if treated.size:
            shots = np.flatnonzero(injected)  # a run's shots follow the runs' before it
            before = (np.cumsum(count) - count)[treated]
            first, last = shots[before], shots[before + count[treated] - 1]
            treated_who = who[treated]
            unset = self.first_inj[treated_who] < 0
            self.first_inj[treated_who[unset]] = day[first[unset]]
            self.last_inj[treated_who] = day[last]
            self.inj_count[treated_who] += count[treated]

    def add_batch(self, batch: pa.RecordBatch | pa.Table) -> None:
        """A block given as a batch with (at least) the four visit columns the statistics
        read: patient_id, day, vision, injected."""
        if batch.num_rows:
            pid, day, vision, injected = (
                to_numpy(batch.column(name)) for name in ("patient_id", "day", "vision", "injected")
            )
            self.add(pid, day, vision, injected.astype(bool, copy=False))

    def tally(self) -> Tally:
        """The tally of the patients and every visit row added."""
        reasons = self.patients.column("discontinuation_reason").combine_chunks()
        by_reason: Counter[str] = Counter()
        if len(reasons):
            values = reasons.dictionary.to_pylist()
            index = to_numpy(reasons.indices, -1).astype(np.int64)
            for i, count in enumerate(np.bincount(index[index >= 0], minlength=len(values))):
                if count:
                    by_reason[str(values[i])] += int(count)
        facts = PatientFacts(
            enrol=self._sorted("enrol_day"),
            baseline=self._sorted("baseline_vision"),
            final=self._sorted("final_vision"),
            stop_day=self._sorted("discontinuation_day"),
            death_day=self._sorted("death_day"),
            reasons=by_reason,
            visits=self.visits,
            year1_injections=self.inj_year1,
            year1_vision=self.vision_year1,
            first_injection=self.first_inj,
            last_injection=self.last_inj,
            injections=self.inj_count,
        )
        return tally_patients(facts, self.horizon)

    def summary(self) -> Summary:
        """The statistics of the patients and every visit row added."""
        return summary_of(self.tally(), self.years)


def tally_block(patients: pa.Table, visits: pa.Table, years: float) -> Tally:
    """The tally of a block of patients: every visit of its patients, and no other, in
    `visits` (sorted by patient and day), as the engine's chunks are."""
    summary = SummaryPass(patients, years)
    for batch in visits.select(list(VISIT_COLUMNS)).to_batches():
        summary.add_batch(batch)
    return summary.tally()


def compute_summary(patients: pa.Table, visits: pa.Table, years: float) -> Summary:
    """The summary statistics of a simulation (see docs/model.md for each definition).

    `visits` must be sorted by patient and day, and every visit's patient must exist; it
    is read chunk by chunk (`SummaryPass`)."""
    summary = SummaryPass(patients, years)
    for batch in visits.select(list(VISIT_COLUMNS)).to_batches():
        summary.add_batch(batch)
    return summary.summary()


def summary_json(summary: Summary) -> str:
    """The bytes of summary_stats.json: sorted keys, so equal statistics give equal bytes."""
    return dump_json(summary)
