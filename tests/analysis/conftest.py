"""Fixtures of the analysis tests: two hand-checked patients, and a small real simulation."""

from __future__ import annotations

import pyarrow as pa
import pytest

from apesim import api
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.analysis.tables import patients_table, visits_table


@pytest.fixture
def tiny() -> tuple[pa.Table, pa.Table]:
    """Two patients over 0.2 years (73 days: months 0, 1 and 2).

    Patient 0 is seen on days 0 and 40 and stops treatment at day 40; patient 1 is seen
    on days 0, 30 and 61."""
    patients = patients_table(
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
    visits = visits_table(
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
