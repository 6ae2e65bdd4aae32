"""Export under faults: a real `ape export` killed (SIGKILL) at each step of recording its
audit event, at named fault-injection points (`apesim.faults`, APE_FAULT) rather than by
timing, leaves a workspace that recovers; and the partial files a killed export leaves in the
user's folder are removed by the next export there, never a live export's or a user's file.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import portalocker
import pytest

from apesim import api, audit, faults
from apesim.engine import SimulationParameters
from apesim.package import export_package, validate_package
from apesim.workspace import SimulationRecord, Workspace, layout
from apesim.workspace.store import REGISTRY, STAGING

TE = "v1_aflibercept_treat_and_extend"
TINY = SimulationParameters(patients=5, years=0.25, seed=3)
CREATED = "2026-01-02T03:04:05Z"
CREATED_AT = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
PARTIAL = ".ape-export-{}.zip.partial"


def ape_export(
    ws: Workspace, record: SimulationRecord, out: Path, fault: str | None = None
) -> subprocess.CompletedProcess[str]:
    """`ape export` as a real process; with `fault`, it kills itself at that point."""
    env = {k: v for k, v in os.environ.items() if k != faults.ENV}
    if fault is not None:
        env[faults.ENV] = fault
    return subprocess.run(
        [sys.executable, "-m", "apesim.cli", "export", record.sim_id, "-o", f"{out}/",
         "-w", str(ws.root), "--created", CREATED],
        capture_output=True, text=True, env=env, timeout=120,
    )  # fmt: skip


def partials(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(PARTIAL.format("*")))


def registered_head(ws: Workspace, record: SimulationRecord) -> str:
    db = sqlite3.connect(f"file:{ws.root / REGISTRY}?mode=ro", uri=True)
    try:
        row = db.execute(
            "SELECT audit_head FROM simulations WHERE sim_id = ?", (record.sim_id,)
        ).fetchone()
    finally:
        db.close()
    return str(row[0])


def trail_on_disk(ws: Workspace, record: SimulationRecord) -> list[audit.AuditEvent]:
    return audit.parse((ws.path(record) / layout.AUDIT).read_bytes())


# The points after which the killed export's event has been committed by the registry.
EXPORT_POINTS = tuple(p for p in faults.POINTS if p.startswith(("export.", "audit.")))
COMMITTED = EXPORT_POINTS[EXPORT_POINTS.index("audit.committed") :]


@pytest.mark.parametrize("point", EXPORT_POINTS)
def test_an_export_killed_at_any_step_of_its_audit_append_leaves_a_workspace_that_recovers(
    point: str, workspace: Workspace, tmp_path: Path
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="exported")
    out = tmp_path / "out"
    out.mkdir()
    before = workspace.read_audit(record)

    killed = ape_export(workspace, record, out, fault=point)
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    # The kill happened at that very step: the state it leaves shows which.
    assert [p.name for p in out.iterdir()] == partials(out) and len(partials(out)) == 1
    on_disk = trail_on_disk(workspace, record)
    journal = workspace.root / f"{REGISTRY}-journal"
    temporaries = list(workspace.path(record).glob(f".{layout.AUDIT}.*.tmp"))
    if point in ("audit.replaced", "export.recorded"):
        assert on_disk[:-1] == before and registered_head(workspace, record) == on_disk[-1].sha256
    else:
        assert on_disk == before  # the file still has the old trail
        committed = registered_head(workspace, record) != before[-1].sha256
        assert committed == (point in COMMITTED)
    assert journal.exists() == (point == "audit.registry_updated")
    assert bool(temporaries) == (point == "audit.temp_written")

    # It recovers: the next export works, the trail verifies, and nothing is left over.
    again = ape_export(workspace, record, out)
    assert again.returncode == 0, again.stderr
    events = workspace.read_audit(record)  # checked against the registry's head
    assert events[: len(before)] == before
    kept = point in COMMITTED  # a committed event is completed, never lost
    assert [e.action for e in events[len(before) :]] == ["exported"] * (kept + 1)
    assert audit.verify_chain(trail_on_disk(workspace, record)) is None
    packages = sorted(out.iterdir())
    assert [p.name for p in packages] == [events[-1].details["package_file"]]  # no partial
    assert validate_package(packages[0]).sha256 == events[-1].details["package_sha256"]
    assert sorted(p.name for p in workspace.path(record).iterdir()) == sorted(layout.REQUIRED)
    assert not journal.exists()
    assert list((workspace.root / STAGING).iterdir()) == []


def test_a_killed_exports_partial_file_has_a_recognisable_name_and_the_next_export_removes_it(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="exported")
    out = tmp_path / "out"
    out.mkdir()
    assert ape_export(workspace, record, out, fault="export.written").returncode == -9
    (left,) = partials(out)
    assert left.startswith(".ape-export-") and left.endswith(".zip.partial")
    result = export_package(workspace, record.sim_id, out)
    assert partials(out) == [] and sorted(out.iterdir()) == [result.path]


def test_the_partial_file_of_an_export_in_progress_is_not_removed(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="exported")
    live = tmp_path / PARTIAL.format("0" * 32)
    with open(live, "wb") as fh:  # a concurrent export holds its partial file's lock
        portalocker.lock(fh, portalocker.LockFlags.EXCLUSIVE)
        fh.write(b"PK being written")
        fh.flush()
        export_package(workspace, record.sim_id, tmp_path, created=CREATED_AT)
        assert live.read_bytes() == b"PK being written"
    # Its writer is gone now. (The same created date: exports a second apart differ.)
    export_package(workspace, record.sim_id, tmp_path, created=CREATED_AT)
    assert not live.exists()


def test_files_not_named_as_partial_packages_are_never_removed(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="exported")
    mine = [
        ".ape-export-notours.zip.partial",
        PARTIAL.format("0" * 31),
        PARTIAL.format("0" * 32) + ".bak",
        "report.zip.partial",
        ".ape-export-" + "0" * 32 + ".zip.part",
    ]
    for name in mine:
        (tmp_path / name).write_bytes(b"the user's")
    export_package(workspace, record.sim_id, tmp_path)
    for name in mine:
        assert (tmp_path / name).read_bytes() == b"the user's"


def test_concurrent_exports_into_one_folder_never_remove_each_others_partial_files(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="exported")
    out = tmp_path / "out"
    out.mkdir()
    runs = [subprocess.Popen(
        [sys.executable, "-m", "apesim.cli", "export", record.sim_id, "-o", f"{out}/",
         "-w", str(workspace.root), "--created", CREATED],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    ) for _ in range(4)]  # fmt: skip
    for run in runs:
        _, err = run.communicate(timeout=120)
        assert run.returncode == 0, err
    events = workspace.read_audit(record)
    assert [e.action for e in events].count("exported") == len(runs)
    assert [p.name for p in out.iterdir()] == [events[-1].details["package_file"]]
