"""Summary statistics: a pure function of the tables and the simulated duration.

Vision, days and counts are integers, so every sum is exact and each statistic is a single
correctly-rounded division: the same tables give the same numbers and the same JSON bytes
on every machine.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.limits import DAYS_PER_YEAR
from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.summary import SUMMARY_SCHEMA, Change, Description, Summary
from apesim.safeload import dump_json

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


def compute_summary(patients: pa.Table, visits: pa.Table, years: float) -> Summary:
    """The summary statistics of a simulation (see docs/model.md for each definition).

    `visits` must be sorted by patient and day, and every visit's patient must exist. The
    visits are read one chunk at a time into per-patient accumulators, so the working
    memory is a few arrays of one entry per patient, whatever the number of visits.
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
    positional = n > 0 and pid[0] == 0 and pid[-1] == n - 1 and bool(np.all(np.diff(pid) == 1))
    enrol32 = enrol.astype(np.int32)

    end = np.where(stop_day >= 0, stop_day, np.where(death >= 0, death, horizon))
    follow_days = int(np.maximum(end - enrol, 0).sum())

    # Per patient: injections in year 1, the year-1 (LOCF) vision, the first and last
    # injection day and the number of injections. Rows are sorted by patient and day, so a
    # later row of a patient is a later visit: the last row seen wins.
    inj_year1 = np.zeros(n, np.int64)
    vision_year1 = np.full(n, -1, np.int64)
    first_inj = np.full(n, -1, np.int64)
    last_inj = np.full(n, -1, np.int64)
    inj_count = np.zeros(n, np.int64)
    for batch in visits.select(["patient_id", "day", "vision", "injected"]).to_batches():
        if not batch.num_rows:
            continue
        v_pid = batch.column(0).to_numpy(zero_copy_only=False)
        row_patient = v_pid if positional else np.searchsorted(pid, v_pid).astype(np.int32)
        # Sorted by patient: this chunk's patients are the range lo..hi-1.
        lo, hi = int(row_patient[0]), int(row_patient[-1]) + 1
        v_day = batch.column(1).to_numpy(zero_copy_only=False)
        v_inj = batch.column(3).to_numpy(zero_copy_only=False).astype(bool, copy=False)
        rel = v_day - enrol32[row_patient]
        local = row_patient - lo
        inj_year1[lo:hi] += np.bincount(local[v_inj & (rel < YEAR1_DAYS)], minlength=hi - lo)
        rows = np.flatnonzero(rel <= YEAR1_DAYS)
        if rows.size:
            who = row_patient[rows]
            last = rows[np.r_[who[1:] != who[:-1], True]]
            vision = batch.column(2).to_numpy(zero_copy_only=False)
            vision_year1[row_patient[last]] = vision[last]
        rows = np.flatnonzero(v_inj)
        if rows.size:
            who = row_patient[rows]
            starts = np.r_[True, who[1:] != who[:-1]]
            ends = np.r_[who[1:] != who[:-1], True]
            first_who, first_day = who[starts], v_day[rows[starts]]
            unset = first_inj[first_who] < 0
            first_inj[first_who[unset]] = first_day[unset]
            last_inj[who[ends]] = v_day[rows[ends]]
            inj_count[lo:hi] += np.bincount(local[rows], minlength=hi - lo)

    injections = int(inj_count.sum())
    year1_seen = (enrol + YEAR1_DAYS <= horizon) & ((death < 0) | (death > enrol + YEAR1_DAYS))
    n_year1 = int(year1_seen.sum())
    seen = year1_seen & (vision_year1 >= 0)
    # The gaps between a patient's consecutive injections add up to its last injection day
    # minus its first. No injection at all (possible when every patient stops at visit 0):
    # no interval.
    treated = inj_count > 0
    gap_days = int((last_inj[treated] - first_inj[treated]).sum())
    gap_count = injections - int(treated.sum())

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


def summary_json(summary: Summary) -> str:
    """The bytes of summary_stats.json: sorted keys, so equal statistics give equal bytes."""
    return dump_json(summary)
