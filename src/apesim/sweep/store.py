"""A sweep's folder in the workspace (`sweeps/<sweep id>/`): the sweep file as written, its
base protocol and the plan of draws, written once and atomically. A draw's results are an
ordinary simulation named after the sweep and the draw, found again by that name."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from apesim.safeload import dump_json, load_json, read_at_most
from apesim.storage import storage_errors
from apesim.sweep.plan import SweepPlan, draw_name
from apesim.sweep.spec import SweepError
from apesim.workspace.store import SimulationRecord, Workspace

SWEEPS = "sweeps"
SWEEP_FILE = "sweep.yaml"
BASE_PROTOCOL = "base_protocol.yaml"
PLAN = "plan.json"
PLAN_SCHEMA = "ape.sweep-plan/1"


def sweeps_dir(ws: Workspace) -> Path:
    return ws.root / SWEEPS


def plan_json(plan: SweepPlan) -> dict[str, Any]:
    """What plan.json holds: the sweep's id, design, and every draw's seed, values and
    protocol fingerprint."""
    spec = plan.spec
    return {
        "schema": PLAN_SCHEMA,
        "sweep_id": plan.sweep_id,
        "name": spec.name,
        "protocol": {
            "reference": spec.protocol,
            "name": plan.base.protocol.name,
            "version": plan.base.protocol.version,
            "fingerprint": plan.base.fingerprint,
        },
        "patients": spec.patients,
        "years": spec.years,
        "seed": spec.seed,
        "recruitment_months": spec.recruitment_months,
        "design": "grid" if spec.grid is not None else "distributions",
        "varied": spec.varied,
        "draws": [
            {**d.to_json(), "protocol_fingerprint": lp.fingerprint}
            for d, lp in zip(plan.draws, plan.protocols, strict=True)
        ],
    }


def save_plan(ws: Workspace, plan: SweepPlan) -> Path:
    """Write the sweep's folder unless it exists (a resumed sweep); refuse a folder of the
    same id whose plan differs (draws made by another numpy, for instance)."""
    folder = sweeps_dir(ws) / plan.sweep_id
    wanted = plan_json(plan)
    if folder.exists():
        saved = load_plan(ws, plan.sweep_id)
        if saved["draws"] != json.loads(dump_json(wanted["draws"])):
            raise SweepError(
                f"{plan.sweep_id}: the saved plan's draws differ from this sweep file's;"
                " the saved sweep cannot be resumed here"
            )
        return folder
    with storage_errors(ws.root, "writing the sweep"):
        sweeps_dir(ws).mkdir(exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{plan.sweep_id}-", dir=sweeps_dir(ws)))
        try:
            (tmp / SWEEP_FILE).write_text(plan.text, encoding="utf-8")
            (tmp / BASE_PROTOCOL).write_text(plan.base.text, encoding="utf-8")
            (tmp / PLAN).write_text(dump_json(wanted), encoding="utf-8")
            try:
                os.rename(tmp, folder)
            except OSError:
                if not folder.exists():
                    raise  # else another process saved the same plan first
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return folder


def load_plan(ws: Workspace, sid: str) -> dict[str, Any]:
    """The saved plan.json of a sweep (`SweepError` if there is no such sweep)."""
    path = sweeps_dir(ws) / sid / PLAN
    if not sid.startswith("sweep-") or os.sep in sid or not path.is_file():
        known = ", ".join(s.sweep_id for s in list_sweeps(ws)) or "none yet"
        raise SweepError(f"{sid}: no such sweep in the workspace (sweeps: {known})")
    return read_plan(path)


MAX_PLAN_BYTES = 64 * 1024 * 1024  # 10,000 draws take about 2 MB


class _SavedDraw(BaseModel):
    model_config = ConfigDict(extra="allow")
    index: int
    seed: int
    values: dict[str, float]
    protocol_fingerprint: str


class _SavedProtocol(BaseModel):
    model_config = ConfigDict(extra="allow")
    name: str


class _SavedPlan(BaseModel):
    """What the report, the export and a resumed run read of a saved plan.json."""

    model_config = ConfigDict(extra="allow")
    sweep_id: str
    name: str
    protocol: _SavedProtocol
    patients: int
    years: float
    varied: list[str]
    draws: list[_SavedDraw]


def read_plan(path: Path) -> dict[str, Any]:
    """A saved plan.json, checked to hold what its readers take from it: a damaged or
    edited one is a `SweepError` naming the file, not a crash in the report."""
    try:
        raw = read_at_most(path, MAX_PLAN_BYTES)
        if len(raw) > MAX_PLAN_BYTES:
            raise ValueError(f"larger than {MAX_PLAN_BYTES:,} bytes")
        data = load_json(raw.decode("utf-8"))
        _SavedPlan.model_validate(data)
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValidationError is one
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SweepError(
            f"{path}: the sweep's saved plan is damaged ({first}); run the sweep file again"
            " into another workspace, or remove the folder",
            code="sweep.plan_damaged",
        ) from None
    assert isinstance(data, dict)
    return data


def sweep_file(ws: Workspace, sid: str) -> Path:
    return sweeps_dir(ws) / sid / SWEEP_FILE


@dataclass(frozen=True)
class SweepInfo:
    """A sweep in the workspace, as `ape sweep list` and the app show it."""

    sweep_id: str
    name: str
    protocol_name: str
    draws: int
    complete: int

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "name": self.name,
            "protocol_name": self.protocol_name,
            "draws": self.draws,
            "complete": self.complete,
        }


def list_sweeps(ws: Workspace) -> list[SweepInfo]:
    out = []
    records = ws.list()
    for folder in sorted(sweeps_dir(ws).glob("sweep-*")):
        with contextlib.suppress(SweepError):  # a damaged plan: `sweep report` says how
            plan = read_plan(folder / PLAN)
            done = completed_draws(records, plan)
            out.append(
                SweepInfo(
                    sweep_id=plan["sweep_id"],
                    name=plan["name"],
                    protocol_name=plan["protocol"]["name"],
                    draws=len(plan["draws"]),
                    complete=len(done),
                )
            )
    return out


def completed_draws(records: list[SimulationRecord], plan: dict[str, Any]) -> dict[int, str]:
    """Draw index -> sim id of the draws whose simulation is in the workspace: named for the
    draw and run from its protocol, seed, patients and years (installed atomically, so a
    draw is either complete or absent)."""
    by_name = {r.name: r for r in records if r.name.startswith(plan["sweep_id"])}
    out = {}
    for draw in plan["draws"]:
        record = by_name.get(draw_name(plan["sweep_id"], draw["index"]))
        if (
            record is not None
            and record.protocol_fingerprint == draw["protocol_fingerprint"]
            and record.seed == draw["seed"]
            and record.patients == plan["patients"]
            and record.years == plan["years"]
        ):
            out[draw["index"]] = record.sim_id
    return out
