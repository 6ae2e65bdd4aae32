"""One patient's record and visits."""

from __future__ import annotations

import pytest

from apesim import analysis, api


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
