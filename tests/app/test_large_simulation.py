"""Every page of a 100,000-patient simulation renders, first time and cached, without an
exception and with its charts. How fast is measured by benchmarks/bench_app.py (figures in
docs/benchmarks.md), never asserted here: a timed assertion fails on a busy machine and
passes on a slow change."""

from __future__ import annotations

import pytest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.workspace import Workspace
from tests.app.apptools import COMPARE, OVERVIEW, PROTOCOLS, RUN, OpenPage, charts


@pytest.mark.slow
def test_pages_of_a_100k_patient_simulation_render(open_page: OpenPage, ws: Workspace) -> None:
    params = SimulationParameters(patients=100_000, years=5.0, seed=1)
    big = api.run_simulation(ws, "v1_aflibercept_treat_and_extend", params, name="big")
    api.run_simulation(ws, "v1_prn_monthly", params, name="big PRN")
    at = open_page(sim_id=big.sim_id)

    def render(label: str) -> None:
        at.run()
        assert not at.exception, (label, at.exception)

    at.switch_page(OVERVIEW)
    render("overview, first time")
    assert len(charts(at)) == 3
    render("overview, cached")
    for tab in ("Treatment patterns", "Patients", "Audit Trail"):
        at.session_state["overview_tab"] = tab
        render(tab)
    at.switch_page(COMPARE)
    render("compare (second simulation first time)")
    assert len(charts(at)) == 1
    for page in (PROTOCOLS, RUN):
        at.switch_page(page)
        render(page)
