"""The analysis functions behind the app's charts: hand-checked cases on tiny tables, and
brute-force references (one patient at a time) on a simulation run by the real engine."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from apesim import analysis, api, audit
from apesim.results.schema import PATIENTS_SCHEMA, VISITS_SCHEMA
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord

MONTH = 365.25 / 12


def _patients(rows: list[dict[str, object]]) -> pa.Table:
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


def _visits(rows: list[tuple[int, int, int, bool]]) -> pa.Table:
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


@pytest.fixture
def tiny() -> tuple[pa.Table, pa.Table]:
    """Two patients over 0.2 years (73 days: months 0, 1 and 2).

    Patient 0 is seen on days 0 and 40 and stops treatment at day 40; patient 1 is seen
    on days 0, 30 and 61."""
    patients = _patients(
        [
            {
                "patient_id": 0,
                "baseline_vision": 50,
                "final_vision": 60,
                "injections": 1,
                "visits": 2,
                "discontinuation_day": 40,
                "discontinuation_reason": "premature",
            },
            {
                "patient_id": 1,
                "baseline_vision": 70,
                "final_vision": 74,
                "injections": 3,
                "visits": 3,
            },
        ]
    )
    visits = _visits(
        [
            (0, 0, 50, True),
            (0, 40, 60, False),
            (1, 0, 70, True),
            (1, 30, 72, True),
            (1, 61, 74, True),
        ]
    )
    return patients, visits


@pytest.fixture
def sim(small_sim: SimulationRecord, workspace: Workspace) -> api.SimulationResults:
    return api.load_simulation(workspace, small_sim.sim_id)


# -- mean vision over time ------------------------------------------------------------------


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
        "prn_monthly",
        SimulationParameters(patients=60, years=1.5, seed=3, recruitment_months=6),
    )
    sim = api.load_simulation(workspace, record.sim_id)
    curve = analysis.mean_vision_over_time(sim.patients, sim.visits, sim.record.years)
    expected = _reference_mean_vision(sim)
    assert curve["patients"].tolist() == expected["patients"].tolist()
    np.testing.assert_allclose(curve["mean"], expected["mean"], rtol=0, atol=1e-12)


# -- vision distributions and categories ---------------------------------------------------


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
    patients = _patients([{"patient_id": 0, "baseline_vision": 0, "final_vision": 100}])
    dist = analysis.vision_distribution(patients, bin_width=5)
    assert dist["letters"].max() == 95
    final = dist[dist["measure"] == "Final"]
    assert final.loc[final["letters"] == 95, "patients"].item() == 1
    base = dist[dist["measure"] == "Baseline"]
    assert base.loc[base["letters"] == 0, "patients"].item() == 1


def test_vision_change_categories_come_from_the_summary(sim: api.SimulationResults) -> None:
    cats = analysis.vision_change_categories(sim.summary)
    end = cats[cats["when"] == "At the end"].set_index("category")["share"]
    change = sim.summary["vision_change"]["end"]
    assert end["Gained ≥15 letters"] == change["gain_15_share"]
    assert end["Lost ≥15 letters"] == change["loss_15_share"]
    assert end.sum() == pytest.approx(1.0)


# -- treatment patterns --------------------------------------------------------------------


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
    visits = _visits([(0, 0, 50, False), (0, 28, 50, False)])
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


# -- one patient ---------------------------------------------------------------------------


def test_patient_trajectory(sim: api.SimulationResults) -> None:
    first, last = analysis.patient_ids(sim.patients)
    assert (first, last) == (0, sim.record.patients - 1)
    trajectory = analysis.patient_trajectory(sim.patients, sim.visits, 5)
    record = analysis.patient_record(sim.patients, 5)
    assert len(trajectory) == record["visits"]
    assert trajectory["injected"].sum() == record["injections"]
    assert trajectory["vision"].iloc[0] == record["baseline_vision"]
    assert trajectory["vision"].iloc[-1] == record["final_vision"]
    assert trajectory["month"].iloc[0] == 0.0
    assert set(trajectory["state"]) <= {"NAIVE", "STABLE", "ACTIVE", "HIGHLY_ACTIVE"}
    with pytest.raises(KeyError, match="patient 99999"):
        analysis.patient_record(sim.patients, 99999)


# -- summaries and comparisons ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (1234567, "int", "1,234,567"),
        (0.24348, "pct", "24.3 %"),
        (5.92083, "+1f", "+5.9"),
        (-0.25, "+1f", "-0.2"),
        (7.886, "2f", "7.89"),
        (None, "2f", "–"),
        (float("nan"), "1f", "–"),
    ],
)
def test_format_value(value: object, fmt: str, shown: str) -> None:
    assert analysis.format_value(value, fmt) == shown


def test_summary_table(sim: api.SimulationResults) -> None:
    table = analysis.summary_table(sim.summary).set_index("statistic")["value"]
    assert table["Patients"] == f"{sim.record.patients:,}"
    assert table["Gaining ≥15 letters at end"] == (
        f"{100 * sim.summary['vision_change']['end']['gain_15_share']:.1f} %"
    )
    reasons = [s for s in table.index if s.startswith("Discontinued: ")]
    assert len(reasons) == len(sim.summary["discontinuation"]["by_reason"])
    assert (
        analysis.summary_value(sim.summary, "vision.end.mean")
        == (sim.summary["vision"]["end"]["mean"])
    )
    assert analysis.summary_value(sim.summary, "vision.nowhere") is None


def test_comparison_table(sim: api.SimulationResults) -> None:
    other = {**sim.summary, "patients": 5}
    table = analysis.comparison_table(
        [("first", sim.summary), ("second", other)], header={"Protocol": ["A 1", "B 2"]}
    )
    assert list(table.columns) == ["first", "second"]
    assert table.index[0] == "Protocol"
    assert table.loc["Protocol"].tolist() == ["A 1", "B 2"]
    assert table.loc["Patients"].tolist() == [f"{sim.record.patients:,}", "5"]
    assert len(table) == 1 + len(analysis.SUMMARY_FIELDS)
    with pytest.raises(ValueError, match="unique"):
        analysis.comparison_table([("same", sim.summary), ("same", other)])
    with pytest.raises(ValueError, match="header row"):
        analysis.comparison_table([("a", sim.summary)], header={"Protocol": ["x", "y"]})


def test_combine_curves(sim: api.SimulationResults) -> None:
    curve = analysis.mean_vision_over_time(sim.patients, sim.visits, sim.record.years)
    both = analysis.combine_curves([("a", curve), ("b", curve)])
    assert len(both) == 2 * len(curve)
    assert both["simulation"].unique().tolist() == ["a", "b"]
    assert analysis.combine_curves([]).empty


# -- audit trail and protocols ---------------------------------------------------------------


def test_audit_table() -> None:
    events = audit.append([], "simulation_run", {"sim_id": "sim-1", "b": 2}, user="ana")
    events = audit.append(events, "exported", {"file": "x.zip"}, user="ben")
    table = analysis.audit_table(events)
    assert table["action"].tolist() == ["simulation_run", "exported"]
    assert table["user"].tolist() == ["ana", "ben"]
    assert table["details"].iloc[0] == '{"b": 2, "sim_id": "sim-1"}'


@pytest.mark.parametrize(
    "key", ["aflibercept_treat_and_extend", "aflibercept_fixed_8_weekly", "prn_monthly"]
)
def test_protocol_tables(key: str) -> None:
    protocol = api.get_protocol(key).protocol
    tables = analysis.protocol_tables(protocol)
    assert list(tables) == [
        "Regimen",
        "Disease transitions per visit (probability)",
        "Treatment effect (multiplier on a transition after an injection)",
        "Vision change per visit (ETDRS letters)",
        "Baseline population",
        "Discontinuation, mortality and population",
    ]
    transitions = tables["Disease transitions per visit (probability)"]
    np.testing.assert_allclose(transitions.sum(axis=1), 1.0)
    regimen = tables["Regimen"]["value"]
    assert regimen["Loading doses"] == str(protocol.regimen.loading_doses)
    assert tables["Vision change per visit (ETDRS letters)"].shape == (4, 4)


def test_patient_outcome() -> None:
    base = {
        "enrol_day": 10,
        "discontinuation_day": None,
        "discontinuation_reason": None,
        "death_day": None,
    }
    assert analysis.patient_outcome(base) == "in follow-up until the end of the simulation"
    died = analysis.patient_outcome({**base, "death_day": 375})
    assert died == "died on day 365 (month 12.0)"
    stopped = {**base, "discontinuation_day": 100, "discontinuation_reason": "poor_vision"}
    assert analysis.patient_outcome(stopped) == (
        "treatment discontinued on day 90 (month 3.0): poor vision (futility)"
    )
