"""The workspace store: atomic installs, sweeping leftovers, lookups, read-only imports.

Everything is real: runs of the engine, files in tmp_path, the SQLite registry, and for the
hardest case a child process killed in the middle of writing.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
from dataclasses import replace
from pathlib import Path

import pytest

from apesim import api, audit
from apesim.engine import SimulationParameters
from apesim.errors import (
    ApeError,
    ReadOnlySimulationError,
    SimulationNotFoundError,
    WorkspaceError,
)
from apesim.workspace import SimulationRecord, Workspace, default_workspace, layout
from apesim.workspace.store import REGISTRY, SIMS, STAGING

TE = "aflibercept_treat_and_extend"
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
        "aflibercept_treat_and_extend",
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
    beta = api.run_simulation(workspace, "prn_monthly", TINY, name="beta")
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
    assert db.execute("PRAGMA user_version").fetchone()[0] == 1
    db.close()
