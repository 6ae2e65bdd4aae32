"""A sweep's saved folder: a damaged or edited plan.json is one line naming the file, for
the report, the export and a resumed run alike, never a crash."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apesim import api
from apesim.cli import main
from apesim.sweep.spec import SweepError
from apesim.sweep.store import PLAN, save_plan, sweeps_dir
from apesim.workspace import Workspace


def _edit(change: Callable[[dict[str, Any]], Any]) -> Callable[[bytes], bytes]:
    def edit(raw: bytes) -> bytes:
        plan = json.loads(raw)
        changed = change(plan)
        return json.dumps(plan if changed is None else changed).encode()

    return edit


DAMAGES: dict[str, Callable[[bytes], bytes]] = {
    "not_json": lambda raw: raw[: len(raw) // 2],
    "not_utf8": lambda raw: b"\xff" + raw,
    "a_list": _edit(lambda plan: [plan]),
    "a_draw_without_its_seed": _edit(lambda plan: plan["draws"][0].pop("seed")),
    "draws_not_a_list": _edit(lambda plan: plan.update(draws={"0": plan["draws"][0]})),
    "a_value_not_a_number": _edit(
        lambda plan: plan["draws"][0]["values"].update({plan["varied"][0]: "seven"})
    ),
}


@pytest.fixture
def saved(sweep_file: Path, tmp_path: Path) -> tuple[Workspace, str]:
    """A sweep's folder as `ape sweep` saves it before its first draw runs."""
    ws = Workspace(tmp_path / "ws")
    plan = api.plan_sweep(ws, sweep_file)
    save_plan(ws, plan)
    return ws, plan.sweep_id


@pytest.mark.parametrize("damage", sorted(DAMAGES))
def test_a_damaged_saved_plan_is_one_line_naming_it(
    damage: str, saved: tuple[Workspace, str]
) -> None:
    ws, sid = saved
    path = sweeps_dir(ws) / sid / PLAN
    path.write_bytes(DAMAGES[damage](path.read_bytes()))
    for read in (api.sweep_report, lambda ws, sid: api.export_sweep(ws, sid, ws.root / "out")):
        with pytest.raises(SweepError) as caught:
            read(ws, sid)
        assert caught.value.code == "sweep.plan_damaged"
        assert str(caught.value).startswith(f"{path}: ") and "\n" not in str(caught.value)
    assert not (ws.root / "out").exists()


def test_the_cli_reports_a_damaged_plan_with_exit_2(
    saved: tuple[Workspace, str], capsys: pytest.CaptureFixture[str]
) -> None:
    ws, sid = saved
    (sweeps_dir(ws) / sid / PLAN).write_text("{bad")
    with pytest.raises(SystemExit) as done:
        main(["sweep", "report", sid, "-w", str(ws.root)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and err.count("\n") == 1 and "saved plan is damaged" in err
