"""The summary statistics as computed before they went chunk by chunk (issue 8), kept word
for word as the reference the chunked `results.stats.compute_summary` must equal."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.limits import DAYS_PER_YEAR
from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.summary import SUMMARY_SCHEMA, Change, Description, Summary

__all__ = ["CHANGE_15", "reference_summary"]

YEAR1_DAYS = 365
CHANGE_15 = 15

IntArray = npt.NDArray[np.int64]


def horizon_days(years: float) -> int:
    return round(years * DAYS_PER_YEAR)


def _ints(table: pa.Table, column: str, fill: int = -1) -> IntArray:
    col = table.column(column)
    if col.null_count:
        col = col.fill_null(fill)
    return col.to_numpy().astype(np.int64)


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


def _native(table: pa.Table, column: str) -> npt.NDArray[Any]:
    """A non-null column as numpy in its own type (a view when the column is one chunk)."""
    return table.column(column).to_numpy(zero_copy_only=False)


def reference_summary(patients: pa.Table, visits: pa.Table, years: float) -> Summary:
    """The summary statistics of a simulation (see docs/model.md for each definition).

    `visits` must be sorted by patient and day, and every visit's patient must exist.
    """
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

    # Visit columns stay in their compact types (a million patients make ~19 million rows).
    v_pid = _native(visits, "patient_id")
    if n and pid[0] == 0 and pid[-1] == n - 1 and bool(np.all(np.diff(pid) == 1)):
        row_patient = v_pid  # ids are their own positions
    else:
        row_patient = np.searchsorted(pid, v_pid).astype(np.int32)
    v_day = _native(visits, "day")
    v_vision = _native(visits, "vision")
    v_inj = _native(visits, "injected").astype(bool, copy=False)
    rel = v_day - enrol.astype(np.int32)[row_patient]

    end = np.where(stop_day >= 0, stop_day, np.where(death >= 0, death, horizon))
    follow_days = int(np.maximum(end - enrol, 0).sum())
    injections = int(v_inj.sum())

    year1_seen = (enrol + YEAR1_DAYS <= horizon) & ((death < 0) | (death > enrol + YEAR1_DAYS))
    inj_year1 = np.bincount(row_patient[v_inj & (rel < YEAR1_DAYS)], minlength=n)
    n_year1 = int(year1_seen.sum())
    # Rows are sorted by patient and day, so a patient's visits within year 1 are the first
    # `within` of its rows: the last of them is its year-1 (LOCF) vision.
    starts = np.concatenate(([0], np.cumsum(np.bincount(row_patient, minlength=n))[:-1]))
    within = np.bincount(row_patient[rel <= YEAR1_DAYS], minlength=n)
    vision_year1 = np.full(n, -1, np.int64)
    vision_year1[within > 0] = v_vision[(starts + within - 1)[within > 0]]
    seen = year1_seen & (vision_year1 >= 0)
    del rel

    # The gaps between a patient's consecutive injections add up to its last injection day
    # minus its first, so the mean interval needs only each patient's first and last.
    # No injection at all (possible when every patient stops at visit 0): no interval.
    inj_patient, inj_day = row_patient[v_inj], v_day[v_inj]
    gap_days = gap_count = 0
    if inj_day.size:
        first = np.flatnonzero(np.r_[True, inj_patient[1:] != inj_patient[:-1]])
        last = np.r_[first[1:], inj_day.size] - 1
        gap_days = int((inj_day[last].astype(np.int64) - inj_day[first]).sum())
        gap_count = int((last - first).sum())

    stopped = stop_day >= 0
    reasons = patients.column("discontinuation_reason").combine_chunks()
    reason_values = reasons.dictionary.to_pylist()
    reason_idx = reasons.indices.fill_null(-1).to_numpy().astype(np.int64)
    by_reason = dict.fromkeys(DISCONTINUATION_REASONS, 0)
    for i, count in enumerate(
        np.bincount(reason_idx[reason_idx >= 0], minlength=len(reason_values))
    ):
        if count:
            by_reason[str(reason_values[i])] = by_reason.get(str(reason_values[i]), 0) + int(count)

    return {
        "schema": SUMMARY_SCHEMA,
        "patients": n,
        "visits": int(visits.num_rows),
        "years": years,
        "patient_years": follow_days / DAYS_PER_YEAR,
        "injections": {
            "total": injections,
            "per_patient_year": injections * DAYS_PER_YEAR / follow_days if follow_days else None,
            "year1_mean": int(inj_year1[year1_seen].sum()) / n_year1 if n_year1 else None,
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
