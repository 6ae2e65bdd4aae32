"""Run Simulation: run with a progress bar and land on the overview; disabled (and why)
while an imported simulation is being viewed."""

from __future__ import annotations

from apesim import api
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import RUN, OpenPage, button, texts


def test_runs_a_simulation_and_opens_its_overview(open_page: OpenPage, ws: Workspace) -> None:
    at = open_page(RUN)
    assert not button(at, "Run simulation").disabled
    at.selectbox(key="run_protocol").set_value("prn_monthly")
    at.number_input(key="run_patients").set_value(120)
    at.number_input(key="run_years").set_value(1.5)
    at.number_input(key="run_seed").set_value(5)
    at.text_input(key="run_name").set_value("my PRN run")
    button(at, "Run simulation").click().run()
    assert not at.exception, at.exception
    [record] = ws.list()
    assert (record.name, record.patients, record.years, record.seed) == ("my PRN run", 120, 1.5, 5)
    assert record.protocol_name == api.get_protocol("prn_monthly").protocol.name
    assert not record.imported
    assert at.session_state["sim_id"] == record.sim_id
    assert at.title[0].value == "my PRN run"  # the Analysis Overview


def test_run_is_disabled_while_viewing_an_imported_simulation(
    open_page: OpenPage, ws: Workspace, imported: SimulationRecord
) -> None:
    at = open_page(RUN, sim_id=imported.sim_id)
    run = button(at, "Run simulation")
    assert run.disabled
    assert "imported simulations are read-only" in run.help
    shown = texts(at)
    assert "Run is disabled" in shown and "imported" in shown
    assert f"Viewing imported simulation from {imported.created_utc[:10]}" in shown
    # choosing to start a new simulation enables it again
    button(at, "Start a new simulation").click().run()
    assert not at.exception
    assert not button(at, "Run simulation").disabled
    assert "Viewing imported simulation" not in texts(at)
    assert len(ws.list()) == 1


def test_run_is_enabled_while_viewing_a_simulation_run_here(
    open_page: OpenPage, ran: SimulationRecord
) -> None:
    at = open_page(RUN, sim_id=ran.sim_id)
    assert not button(at, "Run simulation").disabled
    assert "Run is disabled" not in texts(at)
