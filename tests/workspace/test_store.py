"""The workspace store: atomic installs, sweeping leftovers, lookups, read-only imports.

Everything is real: runs of the engine, files in tmp_path, the SQLite registry, and for the
hardest case a child process killed in the middle of writing.
"""

from __future__ import annotations

import ast
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import portalocker
import pytest

from apesim import api, audit
from apesim.engine import SimulationParameters
from apesim.errors import (
    ApeError,
    DuplicateImportError,
    DuplicateSimulationError,
    ReadOnlySimulationError,
    SimulationNotFoundError,
    WorkspaceError,
)
from apesim.package import export_package, import_package
from apesim.workspace import SimulationRecord, Workspace, default_workspace, layout, store
from apesim.workspace.store import REGISTRY, SIMS, STAGING

TE = "v1_aflibercept_treat_and_extend"
TINY = SimulationParameters(patients=5, years=0.25, seed=3)


def registry_rows(root: Path) -> int:
    db = sqlite3.connect(root / REGISTRY)
    try:
        return int(db.execute("SELECT COUNT(*) FROM simulations").fetchone()[0])
    finally:
        db.close()


def contents(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def assert_untouched(root: Path) -> None:
    """Nothing of a simulation anywhere: no row, no folder, no staging leftovers."""
    assert registry_rows(root) == 0
    assert contents(root / SIMS) == []
    assert contents(root / STAGING) == []


# -- atomic runs -----------------------------------------------------------------------


class Interrupt(Exception):
    pass


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt, Interrupt])
def test_run_interrupted_mid_simulation_leaves_nothing(
    workspace: Workspace, error: type[BaseException]
) -> None:
    calls: list[int] = []

    def progress(done: int, total: int) -> None:
        calls.append(done)
        if len(calls) == 2:
            raise error("stop")

    with pytest.raises(error):
        api.run_simulation(
            workspace,
            TE,
            SimulationParameters(patients=50, years=1.0, seed=1),
            chunk_size=10,
            progress=progress,
        )
    assert calls == [10, 20], "the interruption came in the middle of the run"
    assert_untouched(workspace.root)
    assert Workspace(workspace.root).list() == []


def test_run_whose_install_fails_leaves_no_folder(workspace: Workspace) -> None:
    # A second install under an id that is already registered must not leave its folder.
    first = api.run_simulation(workspace, TE, TINY, name="first")
    with workspace.staging() as folder:
        (folder / layout.PATIENTS).write_bytes(b"x")
        (folder / layout.AUDIT).write_bytes(audit.serialise(audit.append([], "test", {})))
        with pytest.raises(WorkspaceError, match="already in the workspace"):
            workspace.install(folder, replace(first, folder=""))
    assert contents(workspace.root / SIMS) == [first.folder]
    assert contents(workspace.root / STAGING) == []
    assert registry_rows(workspace.root) == 1


KILLED_RUN = textwrap.dedent(
    """
    import os, signal, sys
    from apesim import api
    from apesim.engine import SimulationParameters
    from apesim.workspace import Workspace

    calls = []

    def progress(done, total):
        calls.append(done)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)

    api.run_simulation(
        Workspace(sys.argv[1]),
        "v1_aflibercept_treat_and_extend",
        SimulationParameters(patients=100, years=1.0, seed=1),
        chunk_size=10,
        progress=progress,
    )
    """
)


def test_run_killed_mid_write_is_swept_when_the_workspace_is_reopened(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    Workspace(root)
    child = subprocess.run(
        [sys.executable, "-c", KILLED_RUN, str(root)], capture_output=True, timeout=120
    )
    assert child.returncode == -signal.SIGKILL, child.stderr.decode()
    # The killed writer left its staging folder (with half-written Parquet) and its lock.
    left = contents(root / STAGING)
    assert len(left) == 2 and any(name.endswith(".lock") for name in left)
    assert registry_rows(root) == 0
    Workspace(root)
    assert_untouched(root)


def test_leftover_staging_folder_is_swept_on_reopen(workspace: Workspace) -> None:
    leftover = workspace.root / STAGING / "0123abcd"
    leftover.mkdir()
    (leftover / layout.VISITS).write_bytes(b"PAR1 half written")
    leftover.with_suffix(".lock").touch()
    Workspace(workspace.root)
    assert contents(workspace.root / STAGING) == []


def test_staging_folder_without_its_lock_file_is_swept(workspace: Workspace) -> None:
    leftover = workspace.root / STAGING / "4567cdef"
    leftover.mkdir()
    (leftover / layout.VISITS).write_bytes(b"PAR1 half written")
    Workspace(workspace.root)
    assert contents(workspace.root / STAGING) == []


def test_staging_folder_of_a_live_writer_is_kept(workspace: Workspace) -> None:
    with workspace.staging() as folder:
        (folder / layout.VISITS).write_bytes(b"being written")
        Workspace(workspace.root)  # another process opening the workspace meanwhile
        assert (folder / layout.VISITS).read_bytes() == b"being written"
    assert contents(workspace.root / STAGING) == []


def test_unregistered_folder_in_sims_is_swept_on_reopen(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    stray = workspace.root / SIMS / "not-in-the-registry"
    stray.mkdir()
    (stray / layout.SUMMARY).write_text("{}")
    Workspace(workspace.root)
    assert contents(workspace.root / SIMS) == [small_sim.folder]


def test_installed_run_has_every_file_of_a_simulation_folder(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    folder = workspace.path(small_sim)
    assert set(layout.REQUIRED) <= set(contents(folder))
    assert contents(workspace.root / STAGING) == []
    # The folder name is the workspace's own, never the id or the name.
    assert small_sim.folder not in {small_sim.sim_id, small_sim.name}
    events = audit.parse((folder / layout.AUDIT).read_bytes())
    [run] = [e for e in events if e.action == "simulation_run"]
    assert run.details["protocol_fingerprint"] == small_sim.protocol_fingerprint
    assert run.details["engine_version"] == small_sim.engine_version


# -- listing and lookup ----------------------------------------------------------------


@pytest.fixture
def two(workspace: Workspace) -> tuple[SimulationRecord, SimulationRecord]:
    alpha = api.run_simulation(workspace, TE, TINY, name="alpha")
    beta = api.run_simulation(workspace, "v1_prn_monthly", TINY, name="beta")
    return alpha, beta


def test_list_returns_every_simulation_in_creation_order(
    workspace: Workspace, two: tuple[SimulationRecord, SimulationRecord]
) -> None:
    records = workspace.list()
    assert {r.sim_id for r in records} == {r.sim_id for r in two}
    keys = [(r.created_utc, r.sim_id) for r in records]
    assert keys == sorted(keys)
    assert {r.name for r in records} == {"alpha", "beta"}


def test_get_by_full_id(workspace: Workspace, two: tuple[SimulationRecord, ...]) -> None:
    alpha, _ = two
    assert workspace.get(alpha.sim_id) == alpha


def test_get_by_unique_id_prefix(workspace: Workspace, two: tuple[SimulationRecord, ...]) -> None:
    alpha, _ = two
    assert workspace.get(alpha.sim_id[:-1]) == alpha


def test_get_by_name(workspace: Workspace, two: tuple[SimulationRecord, ...]) -> None:
    _, beta = two
    assert workspace.get("beta") == beta


def test_get_refuses_an_ambiguous_prefix(
    workspace: Workspace, two: tuple[SimulationRecord, ...]
) -> None:
    with pytest.raises(SimulationNotFoundError, match="matches 2 simulations"):
        workspace.get("sim-")


def test_get_refuses_an_unknown_reference(
    workspace: Workspace, two: tuple[SimulationRecord, ...]
) -> None:
    with pytest.raises(SimulationNotFoundError) as info:
        workspace.get("no-such-sim")
    assert str(info.value).startswith("no-such-sim: no such simulation")
    assert isinstance(info.value, ApeError)


@pytest.mark.parametrize("pattern", ["%", "sim_", "s%", "_"])
def test_get_treats_sql_wildcards_literally(
    workspace: Workspace, two: tuple[SimulationRecord, ...], pattern: str
) -> None:
    with pytest.raises(SimulationNotFoundError, match="no such simulation"):
        workspace.get(pattern)


def test_delete_removes_the_row_and_the_folder(
    workspace: Workspace, two: tuple[SimulationRecord, ...]
) -> None:
    alpha, beta = two
    workspace.delete("alpha")
    assert [r.sim_id for r in workspace.list()] == [beta.sim_id]
    assert not workspace.path(alpha).exists()
    assert not workspace.exists(alpha.sim_id)


# -- imported simulations are read-only ------------------------------------------------


def install_imported(ws: Workspace, original: SimulationRecord) -> SimulationRecord:
    """Install a copy of a run as an imported simulation, as the package importer does."""
    with ws.staging() as folder:
        for name in layout.REQUIRED:
            (folder / name).write_bytes((ws.path(original) / name).read_bytes())
        record = replace(
            original,
            sim_id=original.sim_id + "-imported",
            folder="",
            imported=True,
            source_format="ape-package/1",
            source_file="shared.apepkg",
            source_sha256="ab" * 32,
            imported_utc="2026-01-01T00:00:00Z",
        )
        return ws.install(folder, record)


def test_imported_simulation_is_read_only(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    imported = install_imported(workspace, small_sim)
    stored = workspace.get(imported.sim_id)
    assert stored.imported is True
    with pytest.raises(ReadOnlySimulationError, match="read-only"):
        workspace.ensure_writable(stored)


def test_simulation_run_here_is_writable(workspace: Workspace, small_sim: SimulationRecord) -> None:
    workspace.ensure_writable(workspace.get(small_sim.sim_id))


def test_imported_simulation_is_found_by_its_source(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    imported = install_imported(workspace, small_sim)
    assert workspace.find_by_source("ab" * 32) == imported
    assert workspace.find_by_source("cd" * 32) is None


def test_audit_can_be_appended_to_an_imported_simulation(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    imported = install_imported(workspace, small_sim)
    path = workspace.path(imported) / layout.AUDIT
    before = path.read_bytes()
    workspace.append_audit(imported, "viewed", {"by": "test"})
    after = path.read_bytes()
    assert after.startswith(before.removesuffix(b"\n]\n"))
    actions = [e.action for e in audit.parse(after)]
    assert actions == [e.action for e in audit.parse(before)] + ["viewed"]


# -- where the workspace lives ---------------------------------------------------------


def test_default_workspace_follows_ape_workspace(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("APE_WORKSPACE", str(tmp_path / "elsewhere"))
    assert default_workspace() == tmp_path / "elsewhere"
    assert Workspace().root == tmp_path / "elsewhere"


def test_default_workspace_is_under_the_user_data_directory(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("APE_WORKSPACE")
    assert default_workspace().parts[-2:] == ("ape", "workspace")


def test_workspace_that_cannot_be_created_is_a_workspace_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(WorkspaceError, match="cannot open workspace"):
        Workspace(blocker)
    assert os.path.isfile(blocker)


def test_editing_the_last_audit_event_is_detected(workspace: Workspace) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="audited")
    path = workspace.path(record) / layout.AUDIT
    events = audit.parse(path.read_bytes())
    forged = replace(events[-1], user="mallory")  # the chain alone cannot see this
    path.write_bytes(audit.serialise([*events[:-1], forged]))
    with pytest.raises(WorkspaceError, match="altered outside APE") as caught:
        api.load_simulation(workspace, record.sim_id).audit_events()
    assert caught.value.code == "audit.altered"
    with pytest.raises(WorkspaceError, match="altered outside APE"):
        workspace.append_audit(record, "exported", {})


def test_appending_keeps_the_registry_head_in_step(workspace: Workspace) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="audited")
    workspace.append_audit(record, "exported", {"n": 1})
    workspace.append_audit(record, "exported", {"n": 2})
    events = api.load_simulation(workspace, record.sim_id).audit_events()
    assert [e.details.get("n") for e in events[-2:]] == [1, 2]


# -- crash-safe appends (the kill -9 tests of a real export are in tests/package/test_writer.py)


def interrupted_append(ws: Workspace, record: SimulationRecord) -> audit.AuditEvent:
    """The state a kill leaves between an append's commit and its file replacement: the
    registry holds the new head and event, the trail file does not have it yet."""
    event = audit.append(ws.read_audit(record), "exported", {"n": 1})[-1]
    db = sqlite3.connect(ws.root / REGISTRY)
    with db:
        db.execute(
            "UPDATE simulations SET audit_head = ?, audit_event = ? WHERE sim_id = ?",
            (event.sha256, event.canonical(), record.sim_id),
        )
    db.close()
    return event


def test_an_append_interrupted_after_its_commit_is_completed_by_the_next_reader(
    workspace: Workspace,
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="audited")
    before = workspace.read_audit(record)
    event = interrupted_append(workspace, record)
    assert workspace.read_audit(record) == [*before, event]
    path = workspace.path(record) / layout.AUDIT
    assert audit.parse(path.read_bytes()) == [*before, event]  # written into the file
    workspace.append_audit(record, "exported", {"n": 2})
    assert [e.details.get("n") for e in workspace.read_audit(record)[-2:]] == [1, 2]


def test_an_event_appended_outside_ape_is_detected(workspace: Workspace) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="audited")
    path = workspace.path(record) / layout.AUDIT
    # A well-chained event: the chain alone cannot tell it from one of APE's.
    forged = audit.append(workspace.read_audit(record), "exported", {"by": "mallory"})
    path.write_bytes(audit.serialise(forged))
    for attempt in (
        lambda: workspace.read_audit(record),
        lambda: workspace.append_audit(record, "exported", {}),
    ):
        with pytest.raises(WorkspaceError, match="altered outside APE"):
            attempt()
    assert path.read_bytes() == audit.serialise(forged)


def test_a_trail_edited_while_an_append_was_interrupted_is_still_detected(
    workspace: Workspace,
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="audited")
    path = workspace.path(record) / layout.AUDIT
    before = workspace.read_audit(record)
    interrupted_append(workspace, record)
    edits = {
        "appended": audit.append(before, "exported", {"by": "mallory"}),
        "last edited": [*before[:-1], replace(before[-1], user="mallory")],
        "last removed": before[:-1],
    }
    for name, events in edits.items():
        path.write_bytes(audit.serialise(events))
        with pytest.raises(WorkspaceError, match="altered outside APE"):
            workspace.read_audit(record)
        assert path.read_bytes() == audit.serialise(events), name


def test_a_registered_event_that_does_not_hash_to_the_head_is_never_written(
    workspace: Workspace,
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="audited")
    path = workspace.path(record) / layout.AUDIT
    before = path.read_bytes()
    event = interrupted_append(workspace, record)
    db = sqlite3.connect(workspace.root / REGISTRY)
    with db:
        forged = replace(event, user="mallory").canonical()
        db.execute(
            "UPDATE simulations SET audit_event = ? WHERE sim_id = ?", (forged, record.sim_id)
        )
    db.close()
    with pytest.raises(WorkspaceError, match="altered outside APE"):
        workspace.read_audit(record)
    assert path.read_bytes() == before


def test_registry_of_version_1_gains_the_last_event_and_appends_stay_crash_safe(
    workspace: Workspace,
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="old")
    db = sqlite3.connect(workspace.root / REGISTRY)
    with db:
        db.execute("ALTER TABLE simulations DROP COLUMN audit_event")
        db.execute("PRAGMA user_version = 1")
    db.close()
    reopened = Workspace(workspace.root)
    assert reopened.read_audit(record)[-1].action == "simulation_run"
    event = interrupted_append(reopened, record)
    assert reopened.read_audit(record)[-1] == event
    db = sqlite3.connect(workspace.root / REGISTRY)
    assert db.execute("PRAGMA user_version").fetchone()[0] == store.REGISTRY_VERSION
    db.close()


def test_registry_of_an_earlier_version_is_migrated(workspace: Workspace) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="old")
    db = sqlite3.connect(workspace.root / "registry.sqlite")
    with db:
        db.execute("ALTER TABLE simulations DROP COLUMN audit_head")
        db.execute("PRAGMA user_version = 0")
    db.close()
    reopened = Workspace(workspace.root)
    events = api.load_simulation(reopened, record.sim_id).audit_events()
    assert events[-1].action == "simulation_run"
    db = sqlite3.connect(workspace.root / "registry.sqlite")
    assert db.execute("PRAGMA user_version").fetchone()[0] == store.REGISTRY_VERSION
    db.close()


# -- installs the registry refuses -----------------------------------------------------


def staged_trail(folder: Path) -> None:
    (folder / layout.AUDIT).write_bytes(audit.serialise(audit.append([], "test", {})))


def test_install_of_a_registered_id_is_a_duplicate(workspace: Workspace) -> None:
    first = api.run_simulation(workspace, TE, TINY, name="first")
    with workspace.staging() as folder:
        staged_trail(folder)
        with pytest.raises(DuplicateSimulationError, match="already in the workspace") as caught:
            workspace.install(folder, replace(first, folder=""))
    assert isinstance(caught.value, WorkspaceError) and caught.value.code == "duplicate"


def test_install_of_a_registered_source_package_is_a_duplicate(
    workspace: Workspace, small_sim: SimulationRecord
) -> None:
    imported = install_imported(workspace, small_sim)
    with workspace.staging() as folder:
        staged_trail(folder)
        with pytest.raises(DuplicateSimulationError, match="already in the workspace") as caught:
            workspace.install(folder, replace(imported, sim_id="sim-other", folder=""))
    assert caught.value.code == "duplicate"
    assert "source_sha256" in str(caught.value)
    assert registry_rows(workspace.root) == 2


def test_install_of_an_invalid_record_says_what_was_invalid(workspace: Workspace) -> None:
    # SQLite stores a NaN REAL as NULL: a NOT NULL failure, not a duplicate.
    first = api.run_simulation(workspace, TE, TINY, name="first")
    with workspace.staging() as folder:
        staged_trail(folder)
        record = replace(first, sim_id="sim-nan", folder="", runtime_seconds=float("nan"))
        with pytest.raises(WorkspaceError) as caught:
            workspace.install(folder, record)
    message = str(caught.value)
    assert not isinstance(caught.value, DuplicateSimulationError)
    assert caught.value.code != "duplicate"
    assert "already" not in message
    assert "sim-nan" in message and "invalid runtime_seconds nan" in message
    assert contents(workspace.root / SIMS) == [first.folder]
    assert contents(workspace.root / STAGING) == []
    assert registry_rows(workspace.root) == 1


def test_import_that_loses_a_race_to_the_same_package_is_a_duplicate_import(
    workspace: Workspace, small_sim: SimulationRecord, tmp_path: Path
) -> None:
    sink = io.BytesIO()
    export_package(workspace, small_sim.sim_id, sink)
    package = sink.getvalue()
    winners: list[SimulationRecord] = []

    class Racing(Workspace):
        """Another import of the same package, started at the same time, passes the same
        duplicate checks and registers first, while this one is about to install."""

        def install(
            self,
            staged: Path,
            record: SimulationRecord,
            *,
            replacing: SimulationRecord | None = None,
        ) -> SimulationRecord:
            if not winners:
                winners.append(import_package(Workspace(self.root), package))
            return super().install(staged, record, replacing=replacing)

    root = tmp_path / "other"
    with pytest.raises(DuplicateImportError) as caught:
        import_package(Racing(root), package)
    [winner] = winners
    assert caught.value.existing_sim_id == winner.sim_id
    assert f"already imported as {winner.sim_id} ({winner.name})" in str(caught.value)
    assert [r.sim_id for r in Workspace(root).list()] == [winner.sim_id]
    assert contents(root / SIMS) == [winner.folder]
    assert contents(root / STAGING) == []


# -- several processes on one workspace ------------------------------------------------


def run_together(script: str, runs: list[list[str]], go: Path) -> list[Any]:
    """Run `script` once per argument list in child processes, released together once all
    have started (each says so with a file `<go>.ready.<pid>`, then waits for the file
    `go`), and return what each printed (JSON)."""
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(go), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for args in runs
    ]
    try:
        deadline = time.monotonic() + 30
        while len(list(go.parent.glob(f"{go.name}.ready.*"))) < len(children):
            assert time.monotonic() < deadline, "the children did not start"
            time.sleep(0.01)
        go.touch()
        outputs = [child.communicate(timeout=60) for child in children]
    finally:
        for child in children:
            child.kill()
    for child, (_, err) in zip(children, outputs, strict=True):
        assert child.returncode == 0, err.decode()
    return [json.loads(out) for out, _ in outputs]


APPENDER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from apesim.workspace import Workspace

    go, root, sim_id, tag, count = sys.argv[1:]
    ws = Workspace(root)
    record = ws.get(sim_id)
    Path(f"{go}.ready.{os.getpid()}").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    errors = []
    for n in range(int(count)):
        for step in (lambda: ws.append_audit(record, "exported", {"by": tag, "n": n}),
                     lambda: ws.read_audit(record)):
            try:
                step()
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps(errors))
    """
)


def test_concurrent_appends_from_many_processes_keep_the_trail_whole(
    workspace: Workspace, tmp_path: Path
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="shared")
    before = workspace.read_audit(record)
    runs = [[str(workspace.root), record.sim_id, f"p{i}", "15"] for i in range(6)]
    # Each child appends and reads in turn, so reads meet other children's appends.
    assert run_together(APPENDER, runs, tmp_path / "go") == [[]] * len(runs)
    events = workspace.read_audit(record)
    assert events[: len(before)] == before
    added = sorted((e.details["by"], e.details["n"]) for e in events[len(before) :])
    assert added == sorted((f"p{i}", n) for i in range(6) for n in range(15))
    assert contents(workspace.path(record)) == sorted(layout.REQUIRED)  # no temporary files


def test_a_reader_during_an_append_waits_for_it_instead_of_calling_the_trail_altered(
    workspace: Workspace,
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="shared")
    path = workspace.path(record) / layout.AUDIT
    events = audit.append(workspace.read_audit(record), "exported", {})
    # An appender (of another process) caught between replacing the file and its commit.
    appender = sqlite3.connect(workspace.root / REGISTRY, isolation_level=None)
    try:
        appender.execute("BEGIN IMMEDIATE")
        appender.execute(
            "UPDATE simulations SET audit_head = ? WHERE sim_id = ?",
            (events[-1].sha256, record.sim_id),
        )
        path.write_bytes(audit.serialise(events))
        with ThreadPoolExecutor(1) as pool:
            read = pool.submit(workspace.read_audit, record)
            time.sleep(0.3)
            assert not read.done(), "the reader should wait for the appender's lock"
            appender.execute("COMMIT")
            assert read.result(timeout=10) == events
    finally:
        appender.close()


def test_an_append_whose_commit_fails_leaves_the_trail_as_it_was(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = api.run_simulation(workspace, TE, TINY, name="shared")
    path = workspace.path(record) / layout.AUDIT
    before = path.read_bytes()
    monkeypatch.setattr(store, "_TIMEOUT", 0.2)
    # A reader in the middle of a read transaction keeps the appender from committing.
    reader = sqlite3.connect(workspace.root / REGISTRY, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM simulations").fetchone()
        with pytest.raises(sqlite3.OperationalError, match="locked"):
            workspace.append_audit(record, "exported", {})
    finally:
        reader.close()
    assert path.read_bytes() == before
    assert workspace.read_audit(record)[-1].action == "simulation_run"
    assert contents(workspace.path(record)) == sorted(layout.REQUIRED)


STAGER = textwrap.dedent(
    """
    import json, os, sys, time
    from pathlib import Path
    from apesim.workspace import Workspace

    go, root, role, seconds = sys.argv[1:]
    ws = Workspace(root)
    Path(f"{go}.ready.{os.getpid()}").touch()
    while not Path(go).exists():
        time.sleep(0.001)
    errors, rounds, end = [], 0, time.monotonic() + float(seconds)
    while time.monotonic() < end:
        rounds += 1
        if role == "sweeper":
            ws._sweep()
            continue
        try:
            with ws.staging() as folder:
                (folder / "x").write_bytes(b"1")
                time.sleep(0.0005)
                if (folder / "x").read_bytes() != b"1":
                    errors.append("changed")
                if not folder.with_suffix(".lock").exists():
                    errors.append("lock file gone")
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")
    print(json.dumps([rounds, errors]))
    """
)


def test_staging_survives_other_processes_sweeping_all_the_time(
    workspace: Workspace, tmp_path: Path
) -> None:
    root = str(workspace.root)
    runs = [[root, role, "1.5"] for role in ("sweeper", "writer", "sweeper", "writer")]
    results = run_together(STAGER, runs, tmp_path / "go")
    for (role, *_), (rounds, errors) in zip((r[1:] for r in runs), results, strict=True):
        assert errors == [], role
        assert rounds > 10, role
    assert contents(workspace.root / STAGING) == []


def test_a_sweep_between_a_writers_open_and_lock_does_not_take_its_folder(
    workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = Workspace(workspace.root)  # as another process would see it
    real_lock = portalocker.lock
    swept: list[bool] = []

    def lock(fd: int, flags: portalocker.LockFlags) -> None:
        if not swept:  # the writer's first lock: the other sweeps just before it
            swept.append(True)
            other._sweep()
        real_lock(fd, flags)

    monkeypatch.setattr(portalocker, "lock", lock)
    with workspace.staging() as folder:
        assert swept
        (folder / layout.VISITS).write_bytes(b"being written")
        other._sweep()
        assert (folder / layout.VISITS).read_bytes() == b"being written"
        assert folder.with_suffix(".lock").exists()
    assert contents(workspace.root / STAGING) == []


HOLDER = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    from apesim.workspace.store import lock_file
    fd = lock_file(Path(sys.argv[1]), create=sys.argv[2] == "create")
    Path(sys.argv[3]).write_text("held" if fd is not None else "refused")
    time.sleep(60)
    """
)


def _hold(path: Path, mode: str, said: Path) -> tuple[subprocess.Popen[bytes], str]:
    """A child process that takes `path`'s lock (`mode`: create or open) and keeps it (and
    its descriptor) until killed; returns it and what it said: held or refused."""
    child = subprocess.Popen([sys.executable, "-c", HOLDER, str(path), mode, str(said)])
    deadline = time.monotonic() + 30
    while not said.exists() or not said.read_text():
        assert child.poll() is None, "the child died"
        assert time.monotonic() < deadline, "the child did not lock"
        time.sleep(0.01)
    return child, said.read_text()


def test_a_lock_file_is_held_across_processes_until_its_holder_dies(tmp_path: Path) -> None:
    """The staging and partial-file lock between two real processes: while one holds it the
    other cannot take it (nor can a second child), and the operating system releases it
    when the holder is killed."""
    path = tmp_path / "x.lock"
    holder, said = _hold(path, "create", tmp_path / "first")
    try:
        assert said == "held"
        assert store.lock_file(path, create=False) is None  # held by the child
        assert store.lock_file(path, create=True) is None  # and not ours to create
        other, said = _hold(path, "open", tmp_path / "second")
        other.kill()
        other.wait()
        assert said == "refused"
    finally:
        holder.kill()
        holder.wait()
    fd = store.lock_file(path, create=False)  # released by the holder's death
    assert fd is not None
    try:
        third, said = _hold(path, "open", tmp_path / "third")  # now we hold it
        third.kill()
        third.wait()
        assert said == "refused"
    finally:
        store.unlock_remove(path, fd)
    assert not path.exists()


def test_no_module_of_ape_imports_fcntl() -> None:
    """fcntl does not exist on Windows: importing it in the workspace made APE unimportable
    there (locks are portalocker's)."""
    src = Path(store.__file__).resolve().parents[1]
    posix_only = {"fcntl"}
    found = []
    for path in sorted(src.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            found += [
                f"{path.relative_to(src)}: {n}" for n in names if n.split(".")[0] in posix_only
            ]
    assert found == []


def test_a_registry_row_gives_back_the_metadata_it_was_made_from(tmp_path: Path) -> None:
    """Export writes the README from the row (not decoding metadata.parquet): the row holds
    every field of the simulation's metadata, its creation time to the second."""
    ws = Workspace(tmp_path / "ws")
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(20, 0.5, 4), name="row"
    )
    meta = api.load_simulation(ws, record.sim_id).metadata
    assert ws.get(record.sim_id).metadata() == replace(
        meta, created_utc=meta.created_utc.replace(microsecond=0)
    )
