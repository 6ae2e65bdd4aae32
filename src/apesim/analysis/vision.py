"""Vision outcomes: mean vision over time with its confidence band, and the distributions of
vision at baseline and at the end."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from apesim.analysis.followup import (
    follow_up,
    ints,
    months,
    months_before,
    months_before_table,
    visit_blocks,
)

Z_95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal

IntArray = npt.NDArray[np.int64]
VisionRow = tuple[int, int, float, float, float, float]


def mean_vision_over_time(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """Mean vision (ETDRS letters) at each month since enrolment, with a 95 % confidence band.

    At month m a patient counts while still in follow-up (not discontinued, alive, inside
    the simulated period), with the vision measured at their last visit on or before that
    day. Columns: month, patients, mean, sd, ci_low, ci_high (the normal-approximation
    interval of the mean; equal to the mean when fewer than two patients remain).
    """
    size = months(years).size
    if visits.num_rows == 0:
        return _vision_frame([])
    fu = follow_up(patients, years)
    low_high = pc.min_max(visits.column("vision")).as_py()
    vmin, vmax = int(low_high["min"]), int(low_high["max"])
    width = vmax - vmin + 1
    bins = (size + 1) * width
    # Each visit's vision holds from the first month on or after it until the month of the
    # patient's next visit (or the end of follow-up). Count it, by vision, where it starts
    # (+1) and where it stops (-1): the running sum over months is then every month's
    # histogram of visions, whose count, sum and sum of squares are exact integers.
    histogram = np.zeros(bins, np.int64)
    table = months_before_table(size)
    origin = fu.origin(visits, table.lo)
    end_month = months_before(fu.end - fu.enrol, size).astype(np.int32)
    for own, block in visit_blocks(visits, ("patient_id", "day", "vision"), lookahead=1):
        row_patient = fu.rows(block["patient_id"])
        first = table.at(block["day"] - origin[row_patient])
        if first.size > own:  # the next block's first row follows this block's last
            following = first[1:]
            last = row_patient[1:] != row_patient[:-1]
        else:  # the last block: its last row is its patient's last
            following = np.r_[first[1:], 0]
            last = np.r_[row_patient[1:] != row_patient[:-1], True]
        first, row_patient = first[:own], row_patient[:own]
        stop = end_month[row_patient]
        np.minimum(stop, following, out=stop, where=~last)
        np.maximum(stop, first, out=stop)  # nothing held (first >= stop): the two cancel
        shift = block["vision"][:own].astype(np.int32)
        if vmin:
            shift -= vmin
        histogram += np.bincount(first * width + shift, minlength=bins)
        histogram -= np.bincount(stop * width + shift, minlength=bins)
    change = histogram.reshape(size + 1, width)
    letters = np.arange(vmin, vmax + 1, dtype=np.int64)
    count = np.cumsum(change.sum(axis=1))[:size]
    s1 = np.cumsum(change @ letters)[:size]
    s2 = np.cumsum(change @ (letters * letters))[:size]
    return _vision_frame(_band(count, s1, s2))


def _band(count: IntArray, s1: IntArray, s2: IntArray) -> list[VisionRow]:
    """Rows of the frame from each month's count, sum and sum of squares of vision."""
    rows: list[VisionRow] = []
    for month in range(count.size):
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
    return rows


def _vision_frame(rows: list[VisionRow]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["month", "patients", "mean", "sd", "ci_low", "ci_high"])
    return frame.astype({"month": "int64", "patients": "int64", "mean": "float64", "sd": "float64"})


def combine_curves(curves: Iterable[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Several `mean_vision_over_time` frames stacked, with a `simulation` column."""
    frames = [frame.assign(simulation=label) for label, frame in curves]
    if not frames:
        return _vision_frame([]).assign(simulation=pd.Series(dtype=str))
    return pd.concat(frames, ignore_index=True)


def vision_distribution(patients: pa.Table, bin_width: int = 5) -> pd.DataFrame:
    """Counts of patients by vision at baseline and at the end, in bins of `bin_width`
    letters. Long format: letters (bin start), measure ("Baseline" / "Final"), patients,
    share (of all patients)."""
    n = patients.num_rows
    edges = np.arange(0, 100 + bin_width, bin_width)
    frames = []
    for column, label in (("baseline_vision", "Baseline"), ("final_vision", "Final")):
        values = ints(patients, column)
        counts = np.bincount(
            np.minimum(values // bin_width, len(edges) - 2), minlength=len(edges) - 1
        )
        frames.append(
            pd.DataFrame(
                {
                    "letters": edges[:-1],
                    "measure": label,
                    "patients": counts[: len(edges) - 1].astype(np.int64),
                    "share": counts[: len(edges) - 1] / n if n else 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)
