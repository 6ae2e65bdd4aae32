"""Sweeps page: a sweep's outcome table across its draws, the distribution of an outcome,
the parameters ranked by their effect on it (tornado) and an outcome against a parameter."""

from __future__ import annotations

import json
from pathlib import Path

from apesim import api
from apesim.workspace import Workspace
from tests.app.apptools import SWEEPS, OpenPage, charts, texts, visible_frame
from tests.sweep.conftest import write_sweep


def test_without_a_sweep_the_page_says_how_to_run_one(open_page: OpenPage) -> None:
    at = open_page(SWEEPS)
    assert "ape sweep SWEEP.yaml" in texts(at)
    assert not charts(at)


def test_shows_a_sweeps_outcomes_and_sensitivity(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    plan = api.plan_sweep(ws, write_sweep(tmp_path))
    api.run_sweep(ws, plan)
    report = api.sweep_report(ws, plan.sweep_id)
    at = open_page(SWEEPS)
    assert "6 of 6 draws complete" in texts(at)
    table = visible_frame(at.table[0].value)
    y1 = next(o for o in report.outcomes if o.key == "vision_change_year1")
    assert y1.mean is not None
    assert table.loc[y1.label, "Mean"] == f"{y1.mean:.2f}"
    histogram, tornado, scatter = (json.loads(c.proto.spec) for c in charts(at))
    assert len(histogram["data"][0]["x"]) == 6  # one value per draw
    ranked = [s.parameter for s in report.ranking("vision_change_year1")]
    assert tornado["data"][0]["y"][::-1] == ranked  # the strongest at the top
    assert len(scatter["data"][0]["x"]) == 6
