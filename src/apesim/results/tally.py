"""Summary statistics as integer tallies: the one place that says which patients and values
each statistic counts, and divides.

`stats.SummaryPass` reduces visit rows to a few numbers per patient; `tally_patients` turns
those into a `Tally` of integers only (counts, sums, histograms of vision), so adding the
tallies of blocks of patients is exact and independent of the order; `summary_of` divides
once at the end. A whole run and a run simulated in blocks on other machines (issue 14)
thus give the same `summary_stats.json` bytes (tests/results/test_tally.py).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from apesim.limits import DAYS_PER_YEAR
from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.summary import SUMMARY_SCHEMA, Change, Description, Summary

YEAR1_DAYS = 365  # year-1 statistics: injections before, and vision at, this many days
CHANGE_15 = 15  # letters gained or lost that count as a change of three lines

IntArray = npt.NDArray[np.signedinteger[Any]]  # in their stored types; sums in int64


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
        delta = after.astype(np.int32) - before
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


def histogram(values: IntArray) -> Counter[int]:
    """How often each integer value occurs."""
    if not values.size:
        return Counter()
    low = int(values.min())
    counts = np.bincount(values.astype(np.int64) - low)
    (present,) = np.nonzero(counts)
    return Counter(dict(zip((present + low).tolist(), counts[present].tolist(), strict=True)))


def describe(hist: Counter[int]) -> Description:
    """Count, mean, sd and median of integer values from their histogram (the sums are
    exact integers, so each figure is one correctly rounded division)."""
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


@dataclass(frozen=True)
class PatientFacts:
    """One entry per patient (all in the same order): the patients table's columns the
    statistics read (-1 for none) and what the visits gave each patient."""

    enrol: IntArray
    baseline: IntArray
    final: IntArray
    stop_day: IntArray
    death_day: IntArray
    reasons: Counter[str]  # discontinuations by reason
    visits: int  # visit rows of these patients
    year1_injections: IntArray  # injections before day YEAR1_DAYS after enrolment
    year1_vision: IntArray  # the last reading at or before that day; -1 for none
    first_injection: IntArray  # day; -1 for none
    last_injection: IntArray
    injections: IntArray


def tally_patients(facts: PatientFacts, horizon: int) -> Tally:
    """The tally of these patients in a run of `horizon` days: who counts for which
    statistic (the year-1 figures count patients enrolled a year before the horizon and
    alive a year after enrolment, the interval between injections counts treated patients).
    """
    enrol, base, final = facts.enrol, facts.baseline, facts.final
    stop_day, death = facts.stop_day, facts.death_day
    end = np.where(stop_day >= 0, stop_day, np.where(death >= 0, death, horizon))
    year1_seen = (enrol + YEAR1_DAYS <= horizon) & ((death < 0) | (death > enrol + YEAR1_DAYS))
    seen = year1_seen & (facts.year1_vision >= 0)
    treated = facts.injections > 0
    injections = int(facts.injections.sum())
    # The gaps between a patient's consecutive injections add up to its last injection day
    # minus its first. No injection at all (possible when every patient stops at visit 0):
    # no interval.
    gap_days = int((facts.last_injection[treated] - facts.first_injection[treated]).sum())
    return Tally(
        patients=int(enrol.size),
        visits=facts.visits,
        follow_days=int(np.maximum(end - enrol, 0).sum()),
        injections=injections,
        year1_injections=int(facts.year1_injections[year1_seen].sum()),
        year1_patients=int(year1_seen.sum()),
        gap_days=gap_days,
        gap_count=injections - int(treated.sum()),
        stopped=int((stop_day >= 0).sum()),
        deaths=int((death >= 0).sum()),
        by_reason=Counter(facts.reasons),
        vision_base=histogram(base),
        vision_year1=histogram(facts.year1_vision[seen]),
        vision_end=histogram(final),
        change_year1=ChangeTally.of(base[seen], facts.year1_vision[seen]),
        change_end=ChangeTally.of(base, final),
    )


def summary_of(tally: Tally, years: float) -> Summary:
    """The summary statistics of the patients tallied (see docs/model.md for each)."""
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
            "baseline": describe(tally.vision_base),
            "year1": describe(tally.vision_year1),
            "end": describe(tally.vision_end),
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
