"""Outcomes for all patients and for patients still on treatment, at whole years: a small
table for the Vision outcomes tab (from `apesim.results.outcomes`)."""

from __future__ import annotations

import pandas as pd
import pyarrow as pa

from apesim.limits import DAYS_PER_YEAR
from apesim.results.outcomes import outcomes_over

YEARS_SHOWN = (1, 2, 3, 5, 10, 15, 20)


def outcomes_by_year(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """At 1, 2, 3, 5, ... years within the run: patients alive and observed, their mean
    vision change (all patients, carried forward also after stopping) and that of those still
    on treatment, mean injections so far, and the shares discontinued and dead by then (one
    pass over the visits for every year)."""
    shown = [year for year in YEARS_SHOWN if year <= years]
    found = outcomes_over(patients, visits, years, [round(y * DAYS_PER_YEAR) for y in shown])
    rows = [
        {
            "at": f"{year} year{'s' if year > 1 else ''}",
            "all patients": o.all_patients.n,
            "all: vision change": o.all_patients.mean_change,
            "on treatment": o.on_treatment.n,
            "on treatment: vision change": o.on_treatment.mean_change,
            "injections so far": o.injections_mean,
            "discontinued": o.discontinued_share,
            "dead": o.dead_share,
        }
        for year, o in zip(shown, found, strict=True)
    ]
    return pd.DataFrame(rows)
