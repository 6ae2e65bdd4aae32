"""Tiny hand-written tables for the analysis tests."""

from __future__ import annotations

import pyarrow as pa

from apesim.results.schema import PATIENTS_SCHEMA, VISITS_SCHEMA


def patients_table(rows: list[dict[str, object]]) -> pa.Table:
    defaults = {
        "enrol_day": 0,
        "baseline_age": 75,
        "sex": "F",
        "injections": 0,
        "visits": 0,
        "discontinuation_day": None,
        "discontinuation_reason": None,
        "death_day": None,
    }
    return pa.Table.from_pylist([{**defaults, **r} for r in rows], schema=PATIENTS_SCHEMA)


def visits_table(rows: list[tuple[int, int, int, bool]]) -> pa.Table:
    """(patient_id, day, vision, injected) rows, in order."""
    return pa.Table.from_pylist(
        [
            {
                "patient_id": p,
                "day": d,
                "visit": 0,
                "state": "STABLE",
                "vision": v,
                "injected": i,
                "next_interval": 28,
            }
            for p, d, v, i in rows
        ],
        schema=VISITS_SCHEMA,
    )
