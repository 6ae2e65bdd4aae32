"""Retention and limits as workspace settings: `ape gc` removes imported simulations past
their retention (a dry run unless --apply) on a clock the tests move; runs of the workspace
are removed only when named; every removal is recorded in the workspace's trail; the
package limits come from the settings unless a flag overrides them."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.errors import PackageLimitError, ParameterError, WorkspaceError
from apesim.package import export_package, import_package
from apesim.workspace import Workspace
from apesim.workspace.retention import REMOVED
from apesim.workspace.settings import SETTINGS, WorkspaceSettings, load_settings
from tests.test_cli import ape, ape_json

TE = "aflibercept_treat_and_extend"


def _package(root: Path, seed: int) -> bytes:
    ws = Workspace(root / f"source-{seed}")
    record = api.run_simulation(ws, TE, SimulationParameters(20, 1.0, seed))
    sink = io.BytesIO()
    export_package(ws, record.sim_id, sink)
    return sink.getvalue()


@pytest.fixture
def workspace(tmp_path: Path) -> tuple[Workspace, str, list[api.SimulationRecord]]:
    """A workspace with one run of its own and two imported simulations."""
    ws = Workspace(tmp_path / "ws")
    own = api.run_simulation(ws, TE, SimulationParameters(20, 1.0, 1), name="mine")
    imported = [
        import_package(ws, _package(tmp_path, seed), source_name=f"p{seed}.zip") for seed in (2, 3)
    ]
    return ws, own.sim_id, imported


def _imported_at(record: api.SimulationRecord) -> datetime:
    assert record.imported_utc is not None
    return datetime.fromisoformat(record.imported_utc.replace("Z", "+00:00"))


def test_gc_removes_nothing_before_the_retention_and_only_imports_after(
    workspace: tuple[Workspace, str, list[api.SimulationRecord]],
) -> None:
    ws, own, imported = workspace
    then = _imported_at(imported[-1])
    soon = api.collect_garbage(ws, older_than=timedelta(days=90), now=then + timedelta(days=89))
    assert soon.removals == []
    late = then + timedelta(days=91)
    dry = api.collect_garbage(ws, older_than=timedelta(days=90), now=late)
    assert sorted(r.record.sim_id for r in dry.removals) == sorted(r.sim_id for r in imported)
    assert not dry.applied and len(ws.list()) == 3  # a dry run removes nothing
    done = api.collect_garbage(ws, older_than=timedelta(days=90), now=late, apply=True)
    assert done.applied
    assert [r.sim_id for r in ws.list()] == [own]  # the workspace's own run stays
    for record in imported:
        assert not ws.path(record).exists()


def test_every_removal_is_recorded_in_the_workspace_trail(
    workspace: tuple[Workspace, str, list[api.SimulationRecord]],
) -> None:
    ws, _, imported = workspace
    late = _imported_at(imported[-1]) + timedelta(days=365)
    api.collect_garbage(ws, older_than=timedelta(days=90), now=late, apply=True)
    events = [e for e in ws.workspace_events() if e.action == REMOVED]
    assert sorted(e.details["sim_id"] for e in events) == sorted(r.sim_id for r in imported)
    for event in events:
        record = next(r for r in imported if r.sim_id == event.details["sim_id"])
        assert event.details["package_sha256"] == record.source_sha256
        assert event.details["removed_utc"] == late.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert event.details["reason"] == "retention"


def test_an_own_run_goes_only_when_named(
    workspace: tuple[Workspace, str, list[api.SimulationRecord]],
) -> None:
    ws, own, _ = workspace
    far = datetime.now(UTC) + timedelta(days=10_000)
    report = api.collect_garbage(ws, older_than=timedelta(days=1), now=far)
    assert own not in {r.record.sim_id for r in report.removals}
    api.collect_garbage(ws, names=["mine"], apply=True)
    assert own not in {r.sim_id for r in ws.list()}
    assert ws.workspace_events()[-1].details["reason"] == "named"


def test_gc_follows_the_workspace_setting_and_needs_a_policy(
    workspace: tuple[Workspace, str, list[api.SimulationRecord]],
) -> None:
    ws, _, imported = workspace
    with pytest.raises(ParameterError, match="no retention policy"):
        api.collect_garbage(ws)
    api.set_workspace_settings(ws, ["imported_retention_days=30"])
    late = _imported_at(imported[-1]) + timedelta(days=31)
    assert len(api.collect_garbage(ws, now=late).removals) == 2
    assert len(api.collect_garbage(ws, now=late - timedelta(days=2)).removals) == 0


def test_the_cli_gc_is_a_dry_run_unless_applied(
    workspace: tuple[Workspace, str, list[api.SimulationRecord]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws, _, _ = workspace
    report = ape_json(capsys, "gc", "--imported-older-than", "0d", "-w", str(ws.root))
    assert not report["applied"] and len(report["simulations"]) == 2
    assert len(ws.list()) == 3
    code, out, _ = ape(capsys, "gc", "--imported-older-than", "0d", "--apply", "-w", str(ws.root))
    assert code == 0 and "Removed" in out
    assert len(ws.list()) == 1
    code, _, err = ape(capsys, "gc", "--imported-older-than", "ninety", "-w", str(ws.root))
    assert code == 2 and "90d" in err and err.count("\n") == 1


def test_workspace_shows_and_sets_the_policy(
    workspace: tuple[Workspace, str, list[api.SimulationRecord]],
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws, _, _ = workspace
    info = ape_json(capsys, "workspace", "-w", str(ws.root))
    assert info["settings"] == WorkspaceSettings().to_json()
    assert info["retention"].startswith("none")
    info = ape_json(capsys, "workspace", "-w", str(ws.root), "--set", "imported_retention_days=90")
    assert info["settings"]["imported_retention_days"] == 90
    assert "90 days" in info["retention"]
    code, out, _ = ape(capsys, "workspace", "-w", str(ws.root))
    assert code == 0 and "retention" in out and "90 days" in out
    code, _, err = ape(capsys, "workspace", "-w", str(ws.root), "--set", "max_entries=3")
    assert code == 2 and "max_entries" in err and err.count("\n") == 1
    assert load_settings(ws.root).max_entries == 64  # nothing written


def test_a_settings_file_that_is_not_valid_is_one_line(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    (ws.root / SETTINGS).write_text(json.dumps({"imported_retention_days": "soon"}))
    with pytest.raises(WorkspaceError) as info:
        load_settings(ws.root)
    assert info.value.code == "settings.invalid" and "imported_retention_days" in str(info.value)


def test_package_limits_come_from_the_settings_unless_a_flag_overrides(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    package = tmp_path / "p.zip"
    package.write_bytes(_package(tmp_path, 4))
    ws = Workspace(tmp_path / "ws")
    api.set_workspace_settings(ws, ["max_entries=10"])
    limits = api.read_limits(load_settings(ws.root))
    assert limits.max_entries == 10
    with pytest.raises(PackageLimitError) as info:
        api.validate_package(package, limits=limits)
    assert info.value.code == "limit.entries" and "max_entries" in str(info.value)
    code, out, _ = ape(capsys, "inspect", str(package), "-w", str(ws.root), "--json")
    report = json.loads(out)
    assert code == 2 and report["error"]["code"] == "limit.entries"
    passed = [c["code"] for c in report["checks"] if c["passed"]]
    assert passed == []  # refused from the ZIP's directory, before any file was read
    report = ape_json(capsys, "inspect", str(package), "-w", str(ws.root), "--max-entries", "64")
    assert report["valid"]
    tiny = api.read_limits(load_settings(ws.root), max_unpacked_gib=1e-5)
    with pytest.raises(PackageLimitError) as info:
        api.validate_package(package, limits=tiny)
    assert "max_unpacked_gib" in str(info.value)


def test_the_signature_policy_and_these_settings_share_one_file(tmp_path: Path) -> None:
    """settings.json holds both the signature policy (workspace/trust.py) and retention and
    limits: each writer keeps the other's keys."""
    from apesim.workspace import trust

    ws = Workspace(tmp_path / "ws")
    api.set_workspace_settings(ws, ["imported_retention_days=30"])
    trust.save_settings(ws.root, trust.Settings(require_signature=True))
    assert load_settings(ws.root).imported_retention_days == 30
    api.set_workspace_settings(ws, ["max_entries=100"])
    assert trust.load_settings(ws.root).require_signature is True
    assert load_settings(ws.root).max_entries == 100
