"""Random simulation tables for property tests: any number of patients (ids 0..n-1 as the
engine writes them, or sparse), in any order, staggered enrolment, visits sorted by patient
and day, discontinuations, deaths, visions over any range, tables cut into several chunks."""

from __future__ import annotations

import itertools
from typing import Any

import pyarrow as pa
from hypothesis import strategies as st

from apesim.results.schema import DISCONTINUATION_REASONS, PATIENTS_SCHEMA, VISITS_SCHEMA

YEARS = (0.05, 0.2, 1.0, 2.5, 5.0)


def _chunked(rows: list[dict[str, Any]], schema: pa.Schema, cuts: list[int]) -> pa.Table:
    """A table of `rows` cut into chunks at `cuts` (each chunk its own dictionaries)."""
    edges = sorted({0, len(rows), *(c for c in cuts if 0 < c < len(rows))})
    parts = [pa.Table.from_pylist(rows[a:b], schema=schema) for a, b in itertools.pairwise(edges)]
    return pa.concat_tables(parts) if parts else schema.empty_table()


@st.composite
def simulations(draw: st.DrawFn) -> tuple[pa.Table, pa.Table, float]:
    """(patients, visits, years)."""
    years = draw(st.sampled_from(YEARS))
    horizon = round(years * 365.25)
    n = draw(st.integers(0, 25))
    if draw(st.booleans()):
        ids = list(range(n))
    else:
        ids = sorted(draw(st.sets(st.integers(0, 10_000), min_size=n, max_size=n)))
    low = draw(st.integers(-10, 60))
    high = low + draw(st.integers(0, 60))
    patients: list[dict[str, Any]] = []
    visits: list[dict[str, Any]] = []
    for pid in ids:
        enrol = draw(st.integers(0, max(0, horizon - 1)))
        day, days = enrol, []
        for _ in range(draw(st.integers(0, 12))):
            if day >= horizon:
                break
            days.append(day)
            day += draw(st.integers(1, 120))
        visions = [draw(st.integers(low, high)) for _ in days]
        injected = [draw(st.booleans()) for _ in days]
        stop = reason = death = None
        if days and draw(st.booleans()):
            stop = draw(st.sampled_from(days))
            keep = days.index(stop) + 1
            days, visions, injected = days[:keep], visions[:keep], injected[:keep]
            reason = draw(st.sampled_from((*DISCONTINUATION_REASONS, None)))
        elif draw(st.booleans()):
            # now and then a death before the last visit: every implementation drops
            # the visits after follow-up ends
            after = days[-1] + 1 if days and draw(st.integers(0, 3)) else enrol
            death = draw(st.integers(after, horizon + 5))
        patients.append(
            {
                "patient_id": pid,
                "enrol_day": enrol,
                "baseline_age": 75,
                "sex": "F",
                "baseline_vision": visions[0] if visions else low,
                "final_vision": visions[-1] if visions else low,
                "injections": sum(injected),
                "visits": len(days),
                "discontinuation_day": stop,
                "discontinuation_reason": reason,
                "death_day": death,
            }
        )
        for k, (d, v, i) in enumerate(zip(days, visions, injected, strict=True)):
            visits.append(
                {
                    "patient_id": pid,
                    "day": d,
                    "visit": k,
                    "state": "STABLE",
                    "vision": v,
                    "injected": i,
                    "next_interval": 28,
                }
            )
    patients = draw(st.permutations(patients))
    cuts = draw(st.lists(st.integers(0, max(0, len(visits))), max_size=4))
    return (
        _chunked(patients, PATIENTS_SCHEMA, cuts),
        _chunked(visits, VISITS_SCHEMA, cuts),
        years,
    )
