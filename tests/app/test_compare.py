"""Compare: two or more simulations, run here or imported, side by side."""

from __future__ import annotations

import json

from apesim import api
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import COMPARE, OpenPage, charts, run_small, texts, visible_frame


def test_needs_two_simulations(open_page: OpenPage, ran: SimulationRecord) -> None:
    at = open_page(COMPARE)
    assert "at least two simulations" in texts(at)
    assert not charts(at)


def test_compares_a_run_and_an_imported_simulation(
    open_page: OpenPage, ws: Workspace, ran: SimulationRecord, imported: SimulationRecord
) -> None:
    at = open_page(COMPARE)
    assert set(at.multiselect(key="compare_ids").value) == {ran.sim_id, imported.sim_id}
    table = visible_frame(at.table[0].value)
    assert len(table.columns) == 2
    assert sorted(table.loc["Origin"].tolist()) == [
        f"imported {imported.imported_utc[:10]}",
        "run here",
    ]
    for record in (ran, imported):
        summary = api.load_simulation(ws, record.sim_id).summary
        column = next(c for c in table.columns if record.sim_id[-6:] in c)
        assert table.loc["Injections", column] == f"{summary['injections']['total']:,}"
        final = summary["vision"]["end"]["mean"]
        assert final is not None
        assert table.loc["Final vision, mean", column] == f"{final:.1f} letters"
    [chart] = charts(at)
    figure = json.loads(chart.proto.spec)
    lines = [t["name"] for t in figure["data"] if t.get("mode") == "lines"]
    assert sorted(lines) == sorted(table.columns)
    assert "95 % confidence bands" in figure["layout"]["title"]["text"]


def test_three_simulations_and_a_choice_of_one(open_page: OpenPage, ws: Workspace) -> None:
    for seed in (1, 2, 3):
        run_small(ws, name=f"seed {seed}", seed=seed)
    at = open_page(COMPARE)
    ids = [r.sim_id for r in ws.list()]
    at.multiselect(key="compare_ids").set_value(ids).run()
    assert not at.exception
    assert len(visible_frame(at.table[0].value).columns) == 3
    at.multiselect(key="compare_ids").set_value(ids[:1]).run()
    assert "Choose two or more simulations" in texts(at)
    assert not charts(at)
