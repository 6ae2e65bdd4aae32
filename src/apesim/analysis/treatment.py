"""Treatment patterns: injections and visits per year of treatment, intervals between
injections, visits per patient, and discontinuations over time."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from apesim.analysis.followup import (
    DAYS_PER_MONTH,
    FollowUp,
    follow_up,
    ints,
    months,
    visit_blocks,
    year_of_table,
)
from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.stats import DAYS_PER_YEAR, horizon_days
from apesim.results.summary import REASON_LABELS

IntArray = npt.NDArray[np.int64]


def _treatment_years(years: float) -> int:
    """The years of treatment a simulated period holds (its last may be partial)."""
    return max(1, math.ceil(horizon_days(years) / DAYS_PER_YEAR - 1e-9))


def _present(fu: FollowUp, k: int) -> npt.NDArray[np.bool_]:
    """Per patient: still in follow-up at the start of treatment year k (0-based)."""
    return fu.enrol + round(k * DAYS_PER_YEAR) < fu.end


@dataclass(frozen=True)
class TreatmentPatterns:
    """The treatment patterns of a simulation, computed in one pass over its visits."""

    injections_per_year: pd.DataFrame  # see `injections_per_year`
    treatment_intervals: pd.DataFrame  # see `treatment_intervals`
    visits_per_year: pd.DataFrame  # see `visits_per_year`


def treatment_patterns(patients: pa.Table, visits: pa.Table, years: float) -> TreatmentPatterns:
    """`injections_per_year`, `treatment_intervals` and `visits_per_year` at once: the
    visits are read once for the three (the Treatment patterns tab shows them together)."""
    fu = follow_up(patients, years)
    n_years = _treatment_years(years)
    year_of = year_of_table(n_years)
    origin = fu.origin(visits, year_of.lo)
    # Visits by (patient, year + 1, injected), where years -1 (before enrolment) and n_years
    # (after the last) are counted and dropped: one bincount a block, over the block's
    # patients (the rows of a patient are consecutive, so the blocks barely overlap).
    column = year_of.values + 1  # year + 1, in 0 .. n_years + 1
    cells = (n_years + 2) * 2
    injections = np.zeros((fu.size, n_years), np.int32)  # per patient and treatment year
    by_year = np.zeros((n_years + 2, 2), np.int64)
    intervals = _Intervals()
    for _, block in visit_blocks(visits, ("patient_id", "day", "injected")):
        injected, day, pid = block["injected"], block["day"], block["patient_id"]
        if not pid.size:
            continue
        row_patient = fu.rows(pid)
        key = np.take(column, day - origin[row_patient], mode="clip") * 2 + injected
        low, high = int(row_patient.min()), int(row_patient.max())
        key += (row_patient - low) * cells
        counts = np.bincount(key, minlength=(high - low + 1) * cells)
        counts = counts.reshape(high - low + 1, n_years + 2, 2)
        injections[low : high + 1] += counts[:, 1:-1, 1]
        by_year += counts.sum(axis=0)
        intervals.add(pid[injected], day[injected])
    return TreatmentPatterns(
        injections_per_year=_injection_frame(fu, injections),
        treatment_intervals=intervals.frame(),
        visits_per_year=_visits_frame(fu, by_year[1:-1]),
    )


def injections_per_year(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """How many injections each patient had in each year of treatment.

    Year k counts the patients still in follow-up at its start and their injections
    during it. Long format: year (1, 2, ...), injections, patients (with that many).
    """
    return treatment_patterns(patients, visits, years).injections_per_year


def _injection_frame(fu: FollowUp, by_patient: npt.NDArray[np.int32]) -> pd.DataFrame:
    frames = []
    for k in range(by_patient.shape[1]):
        present = _present(fu, k)
        if not present.any():
            continue
        counts = np.bincount(by_patient[:, k][present])
        frames.append(
            pd.DataFrame(
                {
                    "year": k + 1,
                    "injections": np.arange(counts.size, dtype=np.int64),
                    "patients": counts.astype(np.int64),
                }
            )
        )
    if not frames:
        return pd.DataFrame({"year": [], "injections": [], "patients": []}, dtype="int64")
    out = pd.concat(frames, ignore_index=True)
    return out[out["patients"] > 0].reset_index(drop=True)


def mean_injections_per_year(distribution: pd.DataFrame) -> pd.DataFrame:
    """From `injections_per_year`: per year, patients and mean injections per patient."""
    if distribution.empty:
        return pd.DataFrame({"year": [], "patients": [], "mean": []})
    weighted = distribution.assign(total=distribution["injections"] * distribution["patients"])
    out = weighted.groupby("year", as_index=False)[["patients", "total"]].sum()
    out["mean"] = out["total"] / out["patients"]
    return out[["year", "patients", "mean"]]


class _Intervals:
    """Intervals between consecutive injections of the same patient, by whole weeks,
    counted block by block (the last injection of a block carried into the next)."""

    def __init__(self) -> None:
        self.counts = np.zeros(0, np.int64)  # intervals by days
        self.total = 0
        self._pid = np.zeros(0, np.int64)
        self._day = np.zeros(0, np.int64)

    def add(self, pid: npt.NDArray[np.integer[Any]], day: npt.NDArray[np.integer[Any]]) -> None:
        """The next injection visits, in table order."""
        pids = np.concatenate((self._pid, pid))
        days = np.concatenate((self._day, day))
        if pids.size:
            self._pid, self._day = pids[-1:], days[-1:]
        gaps = np.diff(days)[pids[1:] == pids[:-1]]
        if gaps.size == 0:
            return
        by_days = np.bincount(gaps)  # counted by days; rounded to weeks once, in `frame`
        if by_days.size > self.counts.size:
            self.counts = np.pad(self.counts, (0, by_days.size - self.counts.size))
        self.counts[: by_days.size] += by_days
        self.total += gaps.size

    def frame(self) -> pd.DataFrame:
        if self.total == 0:
            return pd.DataFrame({"weeks": [], "intervals": [], "share": []})
        weeks = np.rint(np.arange(self.counts.size) / 7).astype(np.int64)
        by_weeks = np.zeros(int(weeks[-1]) + 1, np.int64)
        np.add.at(by_weeks, weeks, self.counts)
        keep = np.flatnonzero(by_weeks)
        counts = by_weeks[keep]
        return pd.DataFrame({"weeks": keep, "intervals": counts, "share": counts / self.total})


def treatment_intervals(visits: pa.Table) -> pd.DataFrame:
    """Distribution of the time between consecutive injections of the same patient, in
    whole weeks. Columns: weeks, intervals, share."""
    intervals = _Intervals()
    for _, block in visit_blocks(visits, ("patient_id", "day", "injected")):
        injected = block["injected"]
        intervals.add(block["patient_id"][injected], block["day"][injected])
    return intervals.frame()


def visits_per_patient(patients: pa.Table) -> pd.DataFrame:
    """Number of patients by their number of visits. Columns: visits, patients."""
    values = ints(patients, "visits")
    counts = np.bincount(values) if values.size else np.zeros(0, np.int64)
    keep = np.flatnonzero(counts)
    return pd.DataFrame({"visits": keep, "patients": counts[keep].astype(np.int64)})


def visits_per_year(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """Mean visits per patient in each year of treatment, split into injection visits and
    monitoring-only visits. Year k counts the patients still in follow-up at its start.
    Long format: year, kind ("Injection" / "Monitoring only"), visits, patients, per_patient.
    """
    return treatment_patterns(patients, visits, years).visits_per_year


def _visits_frame(fu: FollowUp, counts: IntArray) -> pd.DataFrame:
    """From visits by (year, injected)."""
    rows = []
    for k in range(counts.shape[0]):
        present = int(_present(fu, k).sum())
        if not present:
            continue
        for kind, count in (("Injection", counts[k, 1]), ("Monitoring only", counts[k, 0])):
            rows.append((k + 1, kind, int(count), present, int(count) / present))
    return pd.DataFrame(rows, columns=["year", "kind", "visits", "patients", "per_patient"])


def category_codes(column: pa.ChunkedArray, values: Sequence[str]) -> IntArray:
    """Per row, the position of its value in `values`; -1 for a null or any other value."""
    found = pc.index_in(column, value_set=pa.array(list(values), pa.string()))
    return np.asarray(found.fill_null(-1).to_numpy(), dtype=np.int64)


def discontinuations_over_time(patients: pa.Table, years: float) -> pd.DataFrame:
    """Cumulative discontinuations by reason at each month since enrolment.

    Long format: month, reason (code), label (words), patients (discontinued by the end of
    that month), share (of all patients).
    """
    n = patients.num_rows
    month_numbers = months(years)
    stop = ints(patients, "discontinuation_day")
    enrol = ints(patients, "enrol_day")
    codes = category_codes(patients.column("discontinuation_reason"), DISCONTINUATION_REASONS)
    month_of = np.floor((stop - enrol) / DAYS_PER_MONTH).astype(np.int64)
    stopped = stop >= 0
    frames = []
    for code, reason in enumerate(DISCONTINUATION_REASONS):
        mask = (codes == code) & stopped
        counts = np.bincount(
            np.clip(month_of[mask], 0, month_numbers[-1]), minlength=month_numbers.size
        )
        cumulative = np.cumsum(counts[: month_numbers.size])
        frames.append(
            pd.DataFrame(
                {
                    "month": month_numbers,
                    "reason": reason,
                    "label": REASON_LABELS.get(reason, reason),
                    "patients": cumulative.astype(np.int64),
                    "share": cumulative / n if n else 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
