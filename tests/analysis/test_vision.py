"""Mean vision over time and the vision distributions: hand-checked cases on tiny tables,
and brute-force references (one patient at a time) on a simulation run by the real engine."""

from __future__ import annotations

import math
from unittest import mock

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim import analysis, api
from apesim.analysis import followup, vision
from apesim.workspace import Workspace
from tests.analysis import reference
from tests.analysis.random_tables import simulations
from tests.analysis.tables import patients_table

MONTH = 365.25 / 12


def test_mean_vision_by_hand(tiny: tuple[pa.Table, pa.Table]) -> None:
    patients, visits = tiny
    curve = analysis.mean_vision_over_time(patients, visits, 0.2)
    assert curve["month"].tolist() == [0, 1, 2]
    assert curve["patients"].tolist() == [2, 2, 1]
    # month 1 is day 30: patient 0 still has the vision of day 0, patient 1 that of day 30;
    # month 2 is day 60: patient 0 has stopped, patient 1's visit of day 61 is not yet due.
    assert curve["mean"].tolist() == [60.0, 61.0, 72.0]
    sd0 = math.sqrt(((50 - 60) ** 2 + (70 - 60) ** 2) / 1)
    assert curve["sd"].iloc[0] == pytest.approx(sd0)
    half = analysis.Z_95 * sd0 / math.sqrt(2)
    assert curve["ci_low"].iloc[0] == pytest.approx(60 - half)
    assert curve["ci_high"].iloc[0] == pytest.approx(60 + half)
    # one patient left: no spread, the band collapses onto the mean
    assert math.isnan(curve["sd"].iloc[2])
    assert curve["ci_low"].iloc[2] == curve["ci_high"].iloc[2] == 72.0


def _reference_mean_vision(sim: api.SimulationResults) -> pd.DataFrame:
    """One patient and one month at a time: the definition, spelled out."""
    patients = sim.patients.to_pandas()
    visits = sim.visits.to_pandas()
    horizon = round(sim.record.years * 365.25)
    months = range(int((horizon - 1) // MONTH) + 1)
    values: dict[int, list[int]] = {m: [] for m in months}
    for row in patients.itertuples():
        if not pd.isna(row.discontinuation_day):
            end = int(row.discontinuation_day) + 1
        elif not pd.isna(row.death_day):
            end = int(row.death_day)
        else:
            end = horizon
        own = visits[visits["patient_id"] == row.patient_id]
        rel = (own["day"] - row.enrol_day).to_numpy()
        for m in months:
            day = int(m * MONTH)
            if row.enrol_day + day < end:
                values[m].append(int(own["vision"].to_numpy()[rel <= day][-1]))
    return pd.DataFrame(
        {
            "month": list(months),
            "patients": [len(values[m]) for m in months],
            "mean": [float(np.mean(values[m])) for m in months],
        }
    )


def test_mean_vision_matches_the_definition(sim: api.SimulationResults) -> None:
    curve = analysis.mean_vision_over_time(sim.patients, sim.visits, sim.record.years)
    expected = _reference_mean_vision(sim)
    assert curve["month"].tolist() == expected["month"].tolist()
    assert curve["patients"].tolist() == expected["patients"].tolist()
    np.testing.assert_allclose(curve["mean"], expected["mean"], rtol=0, atol=1e-12)
    assert (curve["ci_low"] <= curve["mean"]).all() and (curve["mean"] <= curve["ci_high"]).all()
    # month 0 is everyone's baseline
    assert curve["mean"].iloc[0] == pytest.approx(sim.summary["vision"]["baseline"]["mean"])


def test_mean_vision_of_a_recruited_population(workspace: Workspace) -> None:
    """With staggered enrolment, months count from each patient's own enrolment."""
    from apesim.engine.simulate import SimulationParameters

    record = api.run_simulation(
        workspace,
        "v1_prn_monthly",
        SimulationParameters(patients=60, years=1.5, seed=3, recruitment_months=6),
    )
    sim = api.load_simulation(workspace, record.sim_id)
    curve = analysis.mean_vision_over_time(sim.patients, sim.visits, sim.record.years)
    expected = _reference_mean_vision(sim)
    assert curve["patients"].tolist() == expected["patients"].tolist()
    np.testing.assert_allclose(curve["mean"], expected["mean"], rtol=0, atol=1e-12)


def test_vision_distribution_counts_every_patient_once(sim: api.SimulationResults) -> None:
    dist = analysis.vision_distribution(sim.patients)
    n = sim.patients.num_rows
    for measure, column in (("Baseline", "baseline_vision"), ("Final", "final_vision")):
        part = dist[dist["measure"] == measure]
        assert part["patients"].sum() == n
        assert part["share"].sum() == pytest.approx(1.0)
        values = sim.patients.column(column).to_numpy()
        in_bin = ((values >= 50) & (values < 55)).sum()
        assert part.loc[part["letters"] == 50, "patients"].item() == in_bin


def test_vision_distribution_puts_100_letters_in_the_last_bin(
    tiny: tuple[pa.Table, pa.Table],
) -> None:
    patients = patients_table([{"patient_id": 0, "baseline_vision": 0, "final_vision": 100}])
    dist = analysis.vision_distribution(patients, bin_width=5)
    assert dist["letters"].max() == 95
    final = dist[dist["measure"] == "Final"]
    assert final.loc[final["letters"] == 95, "patients"].item() == 1
    base = dist[dist["measure"] == "Baseline"]
    assert base.loc[base["letters"] == 0, "patients"].item() == 1


def test_combine_curves(sim: api.SimulationResults) -> None:
    curve = analysis.mean_vision_over_time(sim.patients, sim.visits, sim.record.years)
    both = analysis.combine_curves([("a", curve), ("b", curve)])
    assert len(both) == 2 * len(curve)
    assert both["simulation"].unique().tolist() == ["a", "b"]
    assert analysis.combine_curves([]).empty


# -- the block-by-block rewrite against the earlier implementation ---------------------------


@settings(max_examples=300, deadline=None)
@given(simulations(), st.integers(1, 9))
def test_mean_vision_is_the_earlier_implementations(
    tables: tuple[pa.Table, pa.Table, float], block: int
) -> None:
    """Identical frames (values and types) on random tables cut into blocks of any size."""
    patients, visits, years = tables
    with mock.patch.object(followup, "BLOCK_ROWS", block):
        got = vision.mean_vision_over_time(patients, visits, years)
    pd.testing.assert_frame_equal(got, reference.mean_vision_over_time(patients, visits, years))
