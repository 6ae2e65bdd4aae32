"""Agreement with the earlier data/summary_stats.json: every quantity it states, recomputed
from the converted tables with the earlier engines' definitions, within rounding."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apesim.errors import PackageFormatError, PackageIntegrityError
from apesim.package.legacy.columns import FloatArray
from apesim.package.legacy.format import REL_TOL, SUMMARY, SUMMARY_KEYS
from apesim.package.legacy.tables import Converted


def check_summary(summary: Any) -> None:
    """summary_stats.json: an object whose known quantities are numbers or null."""
    if not isinstance(summary, dict):
        raise PackageFormatError(
            "data/summary_stats.json: must be a JSON object", code="summary.schema"
        )
    for key in SUMMARY_KEYS:
        value = summary.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
            raise PackageFormatError(
                f"data/summary_stats.json: {key}: not a number", code="summary.schema"
            )


def _mean_sd(values: FloatArray, ddof: int) -> tuple[float, float]:
    """Mean and standard deviation as the earlier engines computed them (0 when undefined)."""
    n = values.size
    if n == 0:
        return 0.0, 0.0
    mean = math.fsum(values) / n
    if n <= ddof:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((values - mean) ** 2) / (n - ddof))


def final_vision_definitions(converted: Converted) -> dict[str, tuple[float, float]]:
    """The earlier engines' definitions of the final vision's mean and sd: the visit-based
    engines over every patient's last vision with the sample sd; the time-based engine over
    the patients seen at least once with the population sd (numpy's default)."""
    seen = converted.last_vision[~np.isnan(converted.last_vision)]
    return {
        "all patients, sample sd": _mean_sd(converted.final_vision, 1),
        "all patients, population sd": _mean_sd(converted.final_vision, 0),
        "patients seen, sample sd": _mean_sd(seen, 1),
        "patients seen, population sd": _mean_sd(seen, 0),
    }


def _close(declared: float, recomputed: float) -> bool:
    return math.isclose(declared, recomputed, rel_tol=REL_TOL, abs_tol=REL_TOL)


def earlier_statistics(converted: Converted) -> dict[str, float]:
    """The earlier summary's counts and rates, recomputed from the converted tables."""
    n = converted.patients.num_rows
    visits = converted.visits.num_rows
    injections = int(pc.sum(converted.visits.column("injected").cast(pa.int64())).as_py() or 0)
    return {
        "total_patients": n,
        "patient_count": n,
        "total_visits": visits,
        "total_injections": injections,
        "mean_visits_per_patient": visits / n if n else 0.0,
        "discontinuation_rate": int(converted.discontinued.sum()) / n if n else 0.0,
    }


def check_declared_summary(declared: dict[str, Any], converted: Converted) -> None:
    """Every quantity the earlier summary_stats.json states must agree with the tables."""
    recomputed = earlier_statistics(converted)
    for key, value in recomputed.items():
        stated = declared.get(key)
        if stated is not None and not (
            stated == value if isinstance(value, int) else _close(float(stated), value)
        ):
            raise PackageIntegrityError(
                f"{SUMMARY}: {key} is {stated}, but the tables give {value}",
                code="consistency.summary",
            )
    mean, sd = declared.get("mean_final_vision"), declared.get("std_final_vision")
    if mean is None and sd is None:
        return
    for got_mean, got_sd in final_vision_definitions(converted).values():
        if (mean is None or _close(mean, got_mean)) and (sd is None or _close(sd, got_sd)):
            return
    raise PackageIntegrityError(
        f"{SUMMARY}: mean_final_vision {mean} and std_final_vision {sd} agree with no "
        "definition of the earlier APE recomputed from the tables",
        code="consistency.summary",
    )
