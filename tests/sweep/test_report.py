"""The sweep report: mean and 95% interval per outcome across draws, and the parameters
ranked by Spearman's rank correlation with each outcome; the export of a whole sweep."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from apesim import api
from apesim.cli import main
from apesim.errors import ApeError
from apesim.sweep.report import build_report, spearman
from apesim.workspace import Workspace


def test_spearman_is_one_for_any_increasing_relation_and_ranks_ties() -> None:
    x = [0.1, 0.5, 0.2, 0.9, 0.3]
    assert spearman(x, [v**3 for v in x]) == pytest.approx(1.0)
    assert spearman(x, [-np.exp(v) for v in x]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None  # a constant has no rank order
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)


def _plan(values: list[dict[str, float]]) -> dict[str, object]:
    return {
        "sweep_id": "sweep-000000000000",
        "name": "t",
        "protocol": {"name": "p"},
        "varied": ["a", "b"],
        "draws": [{"index": i, "seed": i, "values": v} for i, v in enumerate(values)],
    }


def test_the_report_ranks_the_parameter_that_drives_an_outcome_first() -> None:
    rng = np.random.default_rng(1)
    values = [{"a": float(rng.uniform()), "b": float(rng.uniform())} for _ in range(200)]
    summaries = {
        i: {
            "vision_change": {"year1": {"mean": 10 * v["a"]}, "end": {"mean": v["b"]}},
            "injections": {"per_patient_year": 7.0},
            "discontinuation": {"rate": None},
        }
        for i, v in enumerate(values)
    }
    done = {i: f"sim-{i}" for i in range(200)}
    report = build_report(_plan(values), done, summaries)
    y1 = next(o for o in report.outcomes if o.key == "vision_change_year1")
    assert y1.n == 200
    assert y1.low is not None and y1.high is not None and y1.mean is not None
    assert 0 <= y1.low < y1.mean < y1.high <= 10
    assert y1.low == pytest.approx(np.percentile([10 * v["a"] for v in values], 2.5))
    assert [s.parameter for s in report.ranking("vision_change_year1")] == ["a", "b"]
    assert [s.parameter for s in report.ranking("vision_change_end")] == ["b", "a"]
    assert report.ranking("injections_per_year")[0].spearman is None  # constant outcome
    disc = next(o for o in report.outcomes if o.key == "discontinuation")
    assert (disc.n, disc.mean) == (0, None)


def test_report_and_export_of_a_run_sweep(
    tmp_path: Path, sweep_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws_path = tmp_path / "ws"
    ws = Workspace(ws_path)
    plan = api.plan_sweep(ws, sweep_file)
    api.run_sweep(ws, plan)
    with pytest.raises(SystemExit) as info:
        main(["sweep", "report", plan.sweep_id, "--json", "-w", str(ws_path)])
    assert info.value.code == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["draws_complete"] == 6
    assert {o["key"] for o in shown["outcomes"]} == {
        "vision_change_year1",
        "vision_change_end",
        "injections_per_year",
        "discontinuation",
    }
    assert set(shown["sensitivity"]["injections_per_year"][0]) == {
        "outcome",
        "parameter",
        "spearman",
    }
    # The whole sweep as one folder: the sweep file, its plan and one batch of the draws,
    # whose packages import into a fresh workspace.
    out = tmp_path / "out"
    folder = api.export_sweep(ws, plan.sweep_id, out)
    assert (folder / "sweep.yaml").read_text(encoding="utf-8") == sweep_file.read_text(
        encoding="utf-8"
    )
    assert sorted(p.name for p in folder.iterdir()) == [
        "base_protocol.yaml",
        "plan.json",
        f"{plan.sweep_id}.apebatch",
        "sweep.yaml",
    ]
    other = Workspace(tmp_path / "other")
    imported = api.import_many(other, [str(folder / f"{plan.sweep_id}.apebatch")])
    assert imported.count("ok") == 6
    assert {r.seed for r in other.list()} == {d.seed for d in plan.draws}
    with pytest.raises(ApeError, match="exists already"):
        api.export_sweep(ws, plan.sweep_id, out)  # never over an earlier export
    # Or the batch alone.
    batch = api.export_sweep(ws, plan.sweep_id, tmp_path / "psa.apebatch")
    assert zipfile.is_zipfile(batch)
    again = api.import_many(Workspace(tmp_path / "third"), [str(batch)])
    assert again.count("ok") == 6


def test_an_unknown_sweep_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ws = tmp_path / "ws"
    Workspace(ws)
    with pytest.raises(SystemExit) as info:
        main(["sweep", "report", "sweep-nothere", "-w", str(ws)])
    err = capsys.readouterr().err
    assert info.value.code == 2 and err.count("\n") == 1 and "no such sweep" in err
