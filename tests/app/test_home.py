"""Home: the empty workspace offers a demo; a full one lists its simulations."""

from __future__ import annotations

from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import OpenPage, button, texts, visible


def test_empty_workspace_offers_a_demo_simulation(open_page: OpenPage, ws: Workspace) -> None:
    at = open_page()
    assert "Your workspace is empty" in [h.value for h in at.subheader]
    button(at, "Run the demo simulation").click().run()
    assert not at.exception, at.exception
    [record] = ws.list()
    assert record.name == "Demo: treat-and-extend"
    assert record.patients == 2_000
    # straight to the Analysis Overview of the demo
    assert at.session_state["sim_id"] == record.sim_id
    assert visible(at.title[0].value) == record.name
    assert at.metric[0].label == "Vision change at 1 year"


def test_lists_the_simulations_and_opens_the_overview(
    open_page: OpenPage, ran: SimulationRecord
) -> None:
    at = open_page()
    frame = at.dataframe[0].value
    assert frame["id"].tolist() == [ran.sim_id]
    assert frame["origin"].tolist() == ["run here"]
    assert "Viewing imported simulation" not in texts(at)
    button(at, "Open Analysis Overview").click().run()
    assert not at.exception
    assert at.session_state["sim_id"] == ran.sim_id
    assert visible(at.title[0].value) == ran.name


def test_imported_simulation_has_the_banner(
    open_page: OpenPage, imported: SimulationRecord
) -> None:
    at = open_page(sim_id=imported.sim_id)
    assert f"Viewing imported simulation from {imported.created_utc[:10]}" in texts(at)
    assert at.dataframe[0].value["origin"].tolist() == [f"imported {imported.imported_utc[:10]}"]
