"""Summary statistics in parts: integer tallies of blocks of patients, added up exactly.

A distributed run simulates its patients in blocks on other machines and never holds the
whole population in one place. Each block's `Tally` holds only integers (counts, sums and
histograms of vision), so adding tallies is exact and independent of the order, and
`summary_of` divides once at the end, exactly as `stats.compute_summary` does: the same
tables give the same `summary_stats.json` bytes, whether computed whole or block by block.
(tests/results/test_tally.py checks that equality on random tables cut at random places.)
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.limits import DAYS_PER_YEAR
from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.stats import CHANGE_15, YEAR1_DAYS, horizon_days
from apesim.results.summary import SUMMARY_SCHEMA, Change, Description, Summary

IntArray = npt.NDArray[np.int64]


@dataclass
class ChangeTally:
    """Vision change from baseline: count, sum, and how many gained or lost >= 15."""

    n: int = 0
    total: int = 0
    gain: int = 0
    loss: int = 0

    def add(self, other: ChangeTally) -> None:
        self.n += other.n
        self.total += other.total
        self.gain += other.gain
        self.loss += other.loss

    @classmethod
    def of(cls, before: IntArray, after: IntArray) -> ChangeTally:
        delta = after - before
        return cls(
            n=int(delta.size),
            total=int(delta.sum()),
            gain=int((delta >= CHANGE_15).sum()),
            loss=int((delta <= -CHANGE_15).sum()),
        )

    def change(self) -> Change:
        n = self.n
        if n == 0:
            return {"n": 0, "mean": None, "gain_15_share": None, "loss_15_share": None}
        return {
            "n": n,
            "mean": self.total / n,
            "gain_15_share": self.gain / n,
            "loss_15_share": self.loss / n,
        }


def _histogram(values: IntArray) -> Counter[int]:
    keys, counts = np.unique(values, return_counts=True)
    return Counter(dict(zip(keys.tolist(), counts.tolist(), strict=True)))


def _describe(hist: Counter[int]) -> Description:
    """Count, mean, sd and median of integer values from their histogram: the numbers
    `stats._describe` computes from the values themselves."""
    n = sum(hist.values())
    if n == 0:
        return {"n": 0, "mean": None, "sd": None, "median": None}
    s1 = sum(v * c for v, c in hist.items())
    s2 = sum(v * v * c for v, c in hist.items())
    sd = math.sqrt((n * s2 - s1 * s1) / (n * (n - 1))) if n > 1 else None
    return {"n": n, "mean": s1 / n, "sd": sd, "median": _median(hist, n)}


def _median(hist: Counter[int], n: int) -> float:
    """numpy's median of the values: the middle one, or the mean of the middle two."""
    wanted = [(n - 1) // 2, n // 2]
    found: list[int] = []
    seen = 0
    for value in sorted(hist):
        seen += hist[value]
        while wanted and wanted[0] < seen:
            found.append(value)
            wanted.pop(0)
        if not wanted:
            break
    return (found[0] + found[1]) / 2


@dataclass
class Tally:
    """The integers the summary statistics are made of, for some of a run's patients."""

    patients: int = 0
    visits: int = 0
    follow_days: int = 0
    injections: int = 0
    year1_injections: int = 0
    year1_patients: int = 0
    gap_days: int = 0
    gap_count: int = 0
    stopped: int = 0
    deaths: int = 0
    by_reason: Counter[str] = field(default_factory=Counter)
    vision_base: Counter[int] = field(default_factory=Counter)
    vision_year1: Counter[int] = field(default_factory=Counter)
    vision_end: Counter[int] = field(default_factory=Counter)
    change_year1: ChangeTally = field(default_factory=ChangeTally)
    change_end: ChangeTally = field(default_factory=ChangeTally)

    def add(self, other: Tally) -> None:
        """Add another block's tally to this one (exact, in any order)."""
        for name in (
            "patients",
            "visits",
            "follow_days",
            "injections",
            "year1_injections",
            "year1_patients",
            "gap_days",
            "gap_count",
            "stopped",
            "deaths",
        ):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.by_reason.update(other.by_reason)
        self.vision_base.update(other.vision_base)
        self.vision_year1.update(other.vision_year1)
        self.vision_end.update(other.vision_end)
        self.change_year1.add(other.change_year1)
        self.change_end.add(other.change_end)


def _ints(table: pa.Table, column: str, fill: int = -1) -> IntArray:
    col = table.column(column)
    if col.null_count:
        col = col.fill_null(fill)
    return col.to_numpy().astype(np.int64)


def _last_of_each(row: IntArray, rows: IntArray) -> IntArray:
    """Of `rows` (ascending, grouped by patient), the last of each patient."""
    who = row[rows]
    return rows[np.r_[who[1:] != who[:-1], True]] if rows.size else rows


def _first_of_each(row: IntArray, rows: IntArray) -> IntArray:
    """Of `rows` (ascending, grouped by patient), the first of each patient."""
    who = row[rows]
    return rows[np.r_[True, who[1:] != who[:-1]]] if rows.size else rows


def tally_block(patients: pa.Table, visits: pa.Table, years: float) -> Tally:
    """The tally of a block of patients: every visit of its patients, and no other, in
    `visits` (sorted by patient and day), as the engine's chunks are."""
    horizon = horizon_days(years)
    pid = _ints(patients, "patient_id")
    order = np.argsort(pid, kind="stable")
    pid = pid[order]
    enrol = _ints(patients, "enrol_day")[order]
    base = _ints(patients, "baseline_vision")[order]
    final = _ints(patients, "final_vision")[order]
    stop_day = _ints(patients, "discontinuation_day")[order]
    death = _ints(patients, "death_day")[order]
    n = int(pid.size)

    end = np.where(stop_day >= 0, stop_day, np.where(death >= 0, death, horizon))
    tally = Tally(
        patients=n,
        visits=int(visits.num_rows),
        follow_days=int(np.maximum(end - enrol, 0).sum()),
        stopped=int((stop_day >= 0).sum()),
        deaths=int((death >= 0).sum()),
        vision_base=_histogram(base),
        vision_end=_histogram(final),
        change_end=ChangeTally.of(base, final),
    )
    reasons = patients.column("discontinuation_reason").combine_chunks()
    if len(reasons):
        values = reasons.dictionary.to_pylist()
        idx = reasons.indices.fill_null(-1).to_numpy().astype(np.int64)
        for i, count in enumerate(np.bincount(idx[idx >= 0], minlength=len(values))):
            if count:
                tally.by_reason[str(values[i])] += int(count)

    # Per patient, from the visits: year-1 injections and (LOCF) vision, the first and last
    # injection day and the number of injections (the last row of a patient wins).
    row = np.searchsorted(pid, _ints(visits, "patient_id"))
    day = _ints(visits, "day")
    vision = _ints(visits, "vision")
    injected = visits.column("injected").to_numpy(zero_copy_only=False).astype(bool)
    rel = day - enrol[row]
    inj_year1 = np.bincount(row[injected & (rel < YEAR1_DAYS)], minlength=n)
    vision_year1 = np.full(n, -1, np.int64)
    early = _last_of_each(row, np.flatnonzero(rel <= YEAR1_DAYS))
    vision_year1[row[early]] = vision[early]
    inj_count = np.bincount(row[injected], minlength=n)
    first_inj = np.full(n, -1, np.int64)
    last_inj = np.full(n, -1, np.int64)
    rows = np.flatnonzero(injected)
    last = _last_of_each(row, rows)
    last_inj[row[last]] = day[last]
    first = _first_of_each(row, rows)
    first_inj[row[first]] = day[first]

    year1_seen = (enrol + YEAR1_DAYS <= horizon) & ((death < 0) | (death > enrol + YEAR1_DAYS))
    seen = year1_seen & (vision_year1 >= 0)
    treated = inj_count > 0
    tally.injections = int(inj_count.sum())
    tally.year1_injections = int(inj_year1[year1_seen].sum())
    tally.year1_patients = int(year1_seen.sum())
    tally.gap_days = int((last_inj[treated] - first_inj[treated]).sum())
    tally.gap_count = tally.injections - int(treated.sum())
    tally.vision_year1 = _histogram(vision_year1[seen])
    tally.change_year1 = ChangeTally.of(base[seen], vision_year1[seen])
    return tally


def summary_of(tally: Tally, years: float) -> Summary:
    """The summary statistics of the patients tallied (those of `stats.compute_summary`)."""
    by_reason = dict.fromkeys(DISCONTINUATION_REASONS, 0)
    for reason, count in tally.by_reason.items():
        if count:
            by_reason[reason] = by_reason.get(reason, 0) + count
    n, follow = tally.patients, tally.follow_days
    return {
        "schema": SUMMARY_SCHEMA,
        "patients": n,
        "visits": tally.visits,
        "years": years,
        "patient_years": follow / DAYS_PER_YEAR,
        "injections": {
            "total": tally.injections,
            "per_patient_year": tally.injections * DAYS_PER_YEAR / follow if follow else None,
            "year1_mean": (
                tally.year1_injections / tally.year1_patients if tally.year1_patients else None
            ),
            "year1_patients": tally.year1_patients,
        },
        "vision": {
            "baseline": _describe(tally.vision_base),
            "year1": _describe(tally.vision_year1),
            "end": _describe(tally.vision_end),
        },
        "vision_change": {
            "year1": tally.change_year1.change(),
            "end": tally.change_end.change(),
        },
        "discontinuation": {
            "total": tally.stopped,
            "rate": tally.stopped / n if n else None,
            "by_reason": dict(sorted(by_reason.items())),
        },
        "deaths": tally.deaths,
        "mean_treatment_interval_days": (
            tally.gap_days / tally.gap_count if tally.gap_count else None
        ),
    }
