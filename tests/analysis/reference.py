"""The analyses as they were before the block-by-block rewrite (issue 8), kept verbatim as
references: the property tests check that the rewrite gives identical frames on random
tables. (The row-sized int64 copies and the Python loop over reasons are why they were
replaced; they are right, only slow.)"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.stats import DAYS_PER_YEAR, horizon_days
from apesim.results.summary import REASON_LABELS

DAYS_PER_MONTH = DAYS_PER_YEAR / 12
Z_95 = 1.959963984540054

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class _Prepared:
    """The columns every analysis needs, as int64 arrays, patients sorted by id."""

    pid: IntArray  # patient ids, ascending
    enrol: IntArray
    end: IntArray  # first day no longer in follow-up (exclusive), per patient
    row_patient: IntArray  # index into pid of each visit row
    rel: IntArray  # day of each visit counted from its patient's enrolment
    vision: IntArray
    injected: npt.NDArray[np.bool_]


def _ints(table: pa.Table, column: str, fill: int = -1) -> IntArray:
    col = table.column(column)
    if col.null_count:
        col = col.fill_null(fill)
    return np.asarray(col.to_numpy(), dtype=np.int64)


def follow_up_end(patients: pa.Table, years: float) -> IntArray:
    """Per patient (in table order), the first day after follow-up: the day after a
    discontinuation visit, else the day of death, else the end of the simulated period."""
    horizon = horizon_days(years)
    stop = _ints(patients, "discontinuation_day")
    death = _ints(patients, "death_day")
    return np.where(stop >= 0, stop + 1, np.where(death >= 0, death, horizon))


def _prepare(patients: pa.Table, visits: pa.Table, years: float) -> _Prepared:
    pid = _ints(patients, "patient_id")
    order = np.argsort(pid, kind="stable")
    pid = pid[order]
    enrol = _ints(patients, "enrol_day")[order]
    end = follow_up_end(patients, years)[order]
    v_pid = _ints(visits, "patient_id")
    if pid.size and pid[0] == 0 and pid[-1] == pid.size - 1 and bool(np.all(np.diff(pid) == 1)):
        row_patient = v_pid  # ids are 0..n-1, as the engine writes them
    else:
        row_patient = np.searchsorted(pid, v_pid)
    rel = _ints(visits, "day") - enrol[row_patient]
    injected = np.asarray(visits.column("injected").to_numpy(zero_copy_only=False), dtype=bool)
    return _Prepared(pid, enrol, end, row_patient, rel, _ints(visits, "vision"), injected)


def _months(years: float) -> IntArray:
    """Whole months since enrolment that fall inside the simulated period."""
    last = int((horizon_days(years) - 1) // DAYS_PER_MONTH)
    return np.arange(last + 1, dtype=np.int64)


def mean_vision_over_time(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """Mean vision (ETDRS letters) at each month since enrolment, with a 95 % confidence band.

    At month m a patient counts while still in follow-up (not discontinued, alive, inside
    the simulated period), with the vision measured at their last visit on or before that
    day. Columns: month, patients, mean, sd, ci_low, ci_high (the normal-approximation
    interval of the mean; equal to the mean when fewer than two patients remain).
    """
    p = _prepare(patients, visits, years)
    months = _months(years)
    size = months.size
    if p.rel.size == 0:
        return _vision_frame([])
    # Each visit's vision holds from the first month on or after it until the month of the
    # patient's next visit (or the end of follow-up): add it over that range of months.
    first = _months_before(p.rel, size)
    stop = _months_before((p.end - p.enrol)[p.row_patient], size)
    last_of_patient = np.r_[p.row_patient[1:] != p.row_patient[:-1], True]
    following = _months_before(np.r_[p.rel[1:], 0], size)
    stop = np.where(last_of_patient, stop, np.minimum(following, stop))
    keep = first < stop
    first, stop, vision = first[keep], stop[keep], p.vision[keep].astype(np.float64)

    def spread(weights: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        on = np.bincount(first, weights, minlength=size + 1)
        off = np.bincount(stop, weights, minlength=size + 1)
        return np.rint(np.cumsum(on - off)[:size])

    count, s1, s2 = spread(None), spread(vision), spread(vision * vision)
    rows: list[tuple[int, int, float, float, float, float]] = []
    for month in range(size):
        n = int(count[month])
        if n == 0:
            continue
        mean = s1[month] / n
        if n > 1:
            var = (n * int(s2[month]) - int(s1[month]) ** 2) / (n * (n - 1))
            sd = math.sqrt(max(var, 0.0))
            half = Z_95 * sd / math.sqrt(n)
        else:
            sd, half = float("nan"), 0.0
        rows.append((month, n, float(mean), sd, mean - half, mean + half))
    return _vision_frame(rows)


def _months_before(days: IntArray, size: int) -> IntArray:
    """How many of the months 0..size-1 start before each day: the first month whose
    first day, floor(m * DAYS_PER_MONTH), is on or after `days`. (DAYS_PER_MONTH is
    30.4375, exact in binary, so the division is exact enough for whole days.)"""
    return np.clip(np.ceil(days / DAYS_PER_MONTH), 0, size).astype(np.int64)


def _vision_frame(rows: list[tuple[int, int, float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["month", "patients", "mean", "sd", "ci_low", "ci_high"])
    return frame.astype({"month": "int64", "patients": "int64", "mean": "float64", "sd": "float64"})


def injections_per_year(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """How many injections each patient had in each year of treatment.

    Year k counts the patients still in follow-up at its start and their injections
    during it. Long format: year (1, 2, ...), injections, patients (with that many).
    """
    p = _prepare(patients, visits, years)
    n_years = max(1, math.ceil(horizon_days(years) / DAYS_PER_YEAR - 1e-9))
    year_of = np.floor(p.rel / DAYS_PER_YEAR).astype(np.int64)
    frames = []
    for k in range(n_years):
        start = round(k * DAYS_PER_YEAR)
        present = p.enrol + start < p.end
        if not present.any():
            continue
        hits = p.injected & (year_of == k)
        per_patient = np.bincount(p.row_patient[hits], minlength=p.pid.size)[present]
        counts = np.bincount(per_patient)
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


def treatment_intervals(visits: pa.Table) -> pd.DataFrame:
    """Distribution of the time between consecutive injections of the same patient, in
    whole weeks. Columns: weeks, intervals, share."""
    pid = _ints(visits, "patient_id")
    day = _ints(visits, "day")
    injected = np.asarray(visits.column("injected").to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(injected)
    same = pid[rows][1:] == pid[rows][:-1]
    gaps = np.diff(day[rows])[same]
    if gaps.size == 0:
        return pd.DataFrame({"weeks": [], "intervals": [], "share": []})
    weeks = np.rint(gaps / 7).astype(np.int64)
    counts = np.bincount(weeks)
    keep = np.flatnonzero(counts)
    return pd.DataFrame(
        {"weeks": keep, "intervals": counts[keep], "share": counts[keep] / gaps.size}
    )


def visits_per_year(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """Mean visits per patient in each year of treatment, split into injection visits and
    monitoring-only visits. Year k counts the patients still in follow-up at its start.
    Long format: year, kind ("Injection" / "Monitoring only"), visits, patients, per_patient.
    """
    p = _prepare(patients, visits, years)
    n_years = max(1, math.ceil(horizon_days(years) / DAYS_PER_YEAR - 1e-9))
    year_of = np.floor(p.rel / DAYS_PER_YEAR).astype(np.int64)
    rows = []
    for k in range(n_years):
        present = int((p.enrol + round(k * DAYS_PER_YEAR) < p.end).sum())
        if not present:
            continue
        in_year = year_of == k
        for kind, mask in (("Injection", p.injected), ("Monitoring only", ~p.injected)):
            count = int((in_year & mask).sum())
            rows.append((k + 1, kind, count, present, count / present))
    return pd.DataFrame(rows, columns=["year", "kind", "visits", "patients", "per_patient"])


def discontinuations_over_time(patients: pa.Table, years: float) -> pd.DataFrame:
    """Cumulative discontinuations by reason at each month since enrolment.

    Long format: month, reason (code), label (words), patients (discontinued by the end of
    that month), share (of all patients).
    """
    n = patients.num_rows
    months = _months(years)
    stop = _ints(patients, "discontinuation_day")
    enrol = _ints(patients, "enrol_day")
    reasons = patients.column("discontinuation_reason").to_pylist()
    month_of = np.floor((stop - enrol) / DAYS_PER_MONTH).astype(np.int64)
    frames = []
    for reason in DISCONTINUATION_REASONS:
        mask = np.array([r == reason for r in reasons], dtype=bool) & (stop >= 0)
        counts = np.bincount(np.clip(month_of[mask], 0, months[-1]), minlength=months.size)
        cumulative = np.cumsum(counts[: months.size])
        frames.append(
            pd.DataFrame(
                {
                    "month": months,
                    "reason": reason,
                    "label": REASON_LABELS.get(reason, reason),
                    "patients": cumulative.astype(np.int64),
                    "share": cumulative / n if n else 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
