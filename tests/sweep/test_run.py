"""Running a sweep: every draw an ordinary simulation with its own seed and exact protocol
(re-runnable and exportable alone); an interrupted or partly deleted sweep is resumed by
running the same file again, which runs only the draws missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from apesim import api
from apesim.workspace import Workspace
from tests.sweep.conftest import write_sweep


def test_each_draw_is_a_simulation_of_its_own_seed_and_protocol(
    tmp_path: Path, sweep_file: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    plan = api.plan_sweep(ws, sweep_file)
    seen: list[tuple[int, int]] = []
    result = api.run_sweep(ws, plan, progress=lambda d, t: seen.append((d, t)))
    assert (result.planned, result.ran, result.skipped) == (6, 6, 0)
    assert seen[0] == (0, 6) and seen[-1] == (6, 6)
    records = {r.name: r for r in ws.list()}
    for draw, lp in zip(plan.draws, plan.protocols, strict=True):
        record = records[plan.draw_name(draw)]
        assert record.seed == draw.seed
        assert record.protocol_fingerprint == lp.fingerprint
        sim = api.load_simulation(ws, record.sim_id)
        assert sim.protocol_text == lp.text
    # A draw reproduces alone, from what its simulation recorded.
    first = records[plan.draw_name(plan.draws[0])]
    _, identical = api.rerun_simulation(ws, first.sim_id)
    assert identical


def test_running_the_same_sweep_again_runs_only_the_missing_draws(
    tmp_path: Path, sweep_file: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    plan = api.plan_sweep(ws, sweep_file)

    class Interrupted(Exception):
        pass

    def stop_after_two(done: int, total: int) -> None:
        if done == 2:
            raise Interrupted

    with pytest.raises(Interrupted):  # as a Ctrl-C during the third draw would
        api.run_sweep(ws, plan, progress=stop_after_two)
    assert len(ws.list()) == 2
    resumed = api.run_sweep(ws, api.plan_sweep(ws, sweep_file))
    assert (resumed.ran, resumed.skipped) == (4, 2)
    # A draw deleted from the workspace is run again, and only it.
    gone = next(r for r in ws.list() if r.name == plan.draw_name(plan.draws[3]))
    ws.delete(gone.sim_id)
    again = api.run_sweep(ws, plan)
    assert (again.ran, again.skipped) == (1, 5)
    assert sorted(r.name for r in ws.list()) == sorted(plan.draw_name(d) for d in plan.draws)
    [info] = api.list_sweeps(ws)
    assert (info.sweep_id, info.draws, info.complete) == (plan.sweep_id, 6, 6)


def test_a_sweep_varies_the_fields_of_a_model_2_protocol(tmp_path: Path) -> None:
    text = (
        "protocol: aflibercept_treat_and_extend\npatients: 80\nyears: 1\nseed: 3\ndraws: 3\n"
        "parameters:\n"
        "  disease.non_responder_share: {distribution: beta, alpha: 10, beta: 90}\n"
        "  vision.gain.at_reference: {distribution: normal, mean: 10.0, sd: 1.5}\n"
    )
    ws = Workspace(tmp_path / "ws")
    plan = api.plan_sweep(ws, write_sweep(tmp_path, text))
    api.run_sweep(ws, plan)
    records = {r.name: r for r in ws.list()}
    for draw, lp in zip(plan.draws, plan.protocols, strict=True):
        assert records[plan.draw_name(draw)].engine_version == "2.0.0"
        shown = lp.protocol.model_dump(mode="json")
        assert shown["vision"]["gain"]["at_reference"] == draw.values["vision.gain.at_reference"]
