"""A stored simulation read from its folder: lazily, and only what is asked for."""

from __future__ import annotations

import pytest

from apesim import api
from apesim.errors import SimulationNotFoundError
from apesim.results.stats import compute_summary
from apesim.workspace import layout
from apesim.workspace.results import SimulationResults, load_simulation
from apesim.workspace.store import SimulationRecord, Workspace


def test_load_by_id_or_name(workspace: Workspace, small_sim: SimulationRecord) -> None:
    for ref in (small_sim.sim_id, small_sim.name):
        sim = load_simulation(workspace, ref)
        assert isinstance(sim, SimulationResults)
        assert sim.record == small_sim
        assert sim.folder == workspace.path(small_sim)


def test_an_unknown_simulation_is_not_found(workspace: Workspace) -> None:
    with pytest.raises(SimulationNotFoundError):
        load_simulation(workspace, "no-such-simulation")


def test_tables_are_read_when_first_asked_for(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    sim = load_simulation(workspace, small_sim.sim_id)
    assert "patients" not in vars(sim)  # not read yet
    (sim.folder / layout.VISITS).unlink()  # only the visits are missing
    assert sim.patients.num_rows == small_sim.patients
    assert sim.metadata.sim_id == small_sim.sim_id
    with pytest.raises(FileNotFoundError):
        sim.visits  # noqa: B018


def test_the_summary_is_the_statistics_of_the_tables(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    sim = load_simulation(workspace, small_sim.sim_id)
    assert sim.summary == compute_summary(sim.patients, sim.visits, small_sim.years)
    assert sim.parameters["patients"] == small_sim.patients
    assert sim.protocol_text == api.get_protocol("v1_aflibercept_treat_and_extend").text
    assert sim.source_protocol_text is None  # run here, not converted from a package
    assert [e.action for e in sim.audit_events()] == ["protocol_loaded", "simulation_run"]
