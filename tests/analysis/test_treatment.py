"""Treatment patterns: hand-checked cases on tiny tables and patient-by-patient counts on a
simulation run by the real engine."""

from __future__ import annotations

from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim import analysis, api
from apesim.analysis import followup, treatment
from tests.analysis import reference
from tests.analysis.random_tables import simulations
from tests.analysis.tables import visits_table


def test_injections_per_year_by_hand(tiny: tuple[pa.Table, pa.Table]) -> None:
    patients, visits = tiny
    dist = analysis.injections_per_year(patients, visits, 0.2)
    assert dist.to_dict("list") == {"year": [1, 1], "injections": [1, 3], "patients": [1, 1]}
    means = analysis.mean_injections_per_year(dist)
    assert means.to_dict("list") == {"year": [1], "patients": [2], "mean": [2.0]}


def test_injections_per_year_matches_a_patient_by_patient_count(
    sim: api.SimulationResults,
) -> None:
    dist = analysis.injections_per_year(sim.patients, sim.visits, sim.record.years)
    patients = sim.patients.to_pandas()
    visits = sim.visits.to_pandas().merge(patients[["patient_id", "enrol_day"]])
    visits["year"] = np.floor((visits["day"] - visits["enrol_day"]) / 365.25).astype(int) + 1
    end = analysis.follow_up_end(sim.patients, sim.record.years)
    for year in (1, 2):
        present = patients["enrol_day"].to_numpy() + round((year - 1) * 365.25) < end
        counts = (
            visits[visits["injected"] & (visits["year"] == year)]
            .groupby("patient_id")
            .size()
            .reindex(patients["patient_id"][present], fill_value=0)
        )
        expected = counts.value_counts().sort_index()
        got = dist[dist["year"] == year].set_index("injections")["patients"]
        assert got.to_dict() == expected.to_dict()
    # every injection of a patient in follow-up is counted once
    total = (dist["injections"] * dist["patients"]).sum()
    assert total == sim.summary["injections"]["total"]


def test_treatment_intervals(tiny: tuple[pa.Table, pa.Table], sim: api.SimulationResults) -> None:
    _, visits = tiny
    # patient 0 has one injection (no interval); patient 1 has gaps of 30 and 31 days
    frame = analysis.treatment_intervals(visits)
    assert frame.to_dict("list") == {"weeks": [4], "intervals": [2], "share": [1.0]}
    real = analysis.treatment_intervals(sim.visits)
    injected = sim.patients.column("injections").to_numpy()
    assert real["intervals"].sum() == injected.sum() - (injected > 0).sum()
    mean_days = sim.summary["mean_treatment_interval_days"]
    weeks = (real["weeks"] * real["intervals"]).sum() / real["intervals"].sum()
    assert weeks * 7 == pytest.approx(mean_days, abs=3.5)  # rounding to weeks


def test_treatment_intervals_of_no_injections() -> None:
    visits = visits_table([(0, 0, 50, False), (0, 28, 50, False)])
    assert analysis.treatment_intervals(visits).empty


def test_visits(sim: api.SimulationResults) -> None:
    per_patient = analysis.visits_per_patient(sim.patients)
    assert per_patient["patients"].sum() == sim.patients.num_rows
    assert (per_patient["visits"] * per_patient["patients"]).sum() == sim.visits.num_rows
    per_year = analysis.visits_per_year(sim.patients, sim.visits, sim.record.years)
    assert set(per_year["kind"]) == {"Injection", "Monitoring only"}
    assert per_year["visits"].sum() == sim.visits.num_rows
    injections = per_year[per_year["kind"] == "Injection"]["visits"].sum()
    assert injections == sim.summary["injections"]["total"]
    first = per_year[per_year["year"] == 1]
    assert (first["patients"] == sim.patients.num_rows).all()


def test_discontinuations_over_time(
    tiny: tuple[pa.Table, pa.Table], sim: api.SimulationResults
) -> None:
    patients, _ = tiny
    frame = analysis.discontinuations_over_time(patients, 0.2)
    premature = frame[frame["reason"] == "premature"]
    assert premature["patients"].tolist() == [0, 1, 1]  # day 40 is in month 1
    assert premature["share"].tolist() == [0.0, 0.5, 0.5]
    real = analysis.discontinuations_over_time(sim.patients, sim.record.years)
    last = real[real["month"] == real["month"].max()].set_index("reason")["patients"]
    assert last.to_dict() == sim.summary["discontinuation"]["by_reason"]
    for _, part in real.groupby("reason"):
        assert part["patients"].is_monotonic_increasing


# -- the block-by-block rewrites against the earlier implementations -------------------------


@settings(max_examples=300, deadline=None)
@given(simulations(), st.integers(1, 9))
def test_treatment_patterns_are_the_earlier_implementations(
    tables: tuple[pa.Table, pa.Table, float], block: int
) -> None:
    """Identical frames (values and types) on random tables cut into blocks of any size."""
    patients, visits, years = tables
    with mock.patch.object(followup, "BLOCK_ROWS", block):
        got = {
            "injections": treatment.injections_per_year(patients, visits, years),
            "intervals": treatment.treatment_intervals(visits),
            "visits": treatment.visits_per_year(patients, visits, years),
            "discontinuations": treatment.discontinuations_over_time(patients, years),
        }
    expected = {
        "injections": reference.injections_per_year(patients, visits, years),
        "intervals": reference.treatment_intervals(visits),
        "visits": reference.visits_per_year(patients, visits, years),
        "discontinuations": reference.discontinuations_over_time(patients, years),
    }
    for name, frame in expected.items():
        pd.testing.assert_frame_equal(got[name], frame, obj=name)
