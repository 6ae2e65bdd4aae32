"""One patient: the range of ids, a patient's record and visits."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from apesim.analysis.followup import DAYS_PER_MONTH, ints


def patient_ids(patients: pa.Table) -> tuple[int, int]:
    """The smallest and largest patient id (for a picker)."""
    ids = ints(patients, "patient_id")
    return int(ids.min()), int(ids.max())


def patient_trajectory(patients: pa.Table, visits: pa.Table, patient_id: int) -> pd.DataFrame:
    """One patient's visits: day, month (since enrolment), visit, state, vision, injected,
    next_interval (days; empty after the last visit or at discontinuation)."""
    pid = visits.column("patient_id").to_numpy()  # stored type: no int64 copy of every row
    lo, hi = np.searchsorted(pid, np.array([patient_id, patient_id + 1], np.int64))
    rows = visits.slice(int(lo), int(hi - lo))
    enrol = patient_record(patients, patient_id)["enrol_day"]
    frame = rows.select(
        ["day", "visit", "state", "vision", "injected", "next_interval"]
    ).to_pandas()
    frame["state"] = frame["state"].astype(str)
    frame["month"] = (frame["day"] - enrol) / DAYS_PER_MONTH
    next_interval = frame["next_interval"]
    frame["next_interval"] = next_interval.where(next_interval >= 0).astype("Int64")
    return frame[["day", "month", "visit", "state", "vision", "injected", "next_interval"]]


def patient_record(patients: pa.Table, patient_id: int) -> dict[str, Any]:
    """One row of the patients table as a dict (raises KeyError if there is no such id)."""
    ids = ints(patients, "patient_id")
    hits = np.flatnonzero(ids == patient_id)
    if hits.size == 0:
        raise KeyError(f"patient {patient_id}: not in this simulation")
    row: dict[str, Any] = patients.slice(int(hits[0]), 1).to_pylist()[0]
    return row
