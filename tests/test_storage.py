"""The disk's refusals are the user's to fix: a full disk, a read-only file system or a file
size limit during export, import or run exits 2 with one line naming the path and what to do,
and leaves nothing partial behind.

Real conditions only: a small tmpfs that really fills, a tmpfs remounted read-only (root
ignores permission bits, not a read-only mount), RLIMIT_FSIZE in a child process, and a
SQLite database opened read-only.
"""

from __future__ import annotations

import errno
import os
import resource
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from apesim import api
from apesim.cli import main
from apesim.engine import SimulationParameters
from apesim.package import export_package
from apesim.storage import storage_error
from apesim.workspace import SimulationRecord, Workspace
from apesim.workspace.store import REGISTRY, SIMS, STAGING
from tests.disk import fill, listing, remount_read_only, tmpfs

TE = "v1_aflibercept_treat_and_extend"
CREATED = "2026-01-02T03:04:05Z"


def ape(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    """Run the CLI in-process: (exit code, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    code = info.value.code
    assert isinstance(code, int)
    return code, capsys.readouterr().err


def assert_user_error(code: int, err: str, *words: str) -> None:
    """Exit 2 with exactly one line, no traceback, no "internal error", naming `words`."""
    assert code == 2, err
    assert err.startswith("ape: error: ") and err.count("\n") == 1, err
    assert "internal error" not in err and "Traceback" not in err
    for word in words:
        assert word in err, err


def exported_events(ws: Workspace, record: SimulationRecord) -> int:
    return sum(e.action == "exported" for e in ws.read_audit(record))


def run_small(ws: Workspace, patients: int = 200) -> SimulationRecord:
    return api.run_simulation(ws, TE, SimulationParameters(patients=patients, years=2.0, seed=7))


# -- the translation -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("number", "code"),
    [
        (errno.ENOSPC, "storage.no_space"),
        (errno.EDQUOT, "storage.no_space"),
        (errno.EFBIG, "storage.too_large"),
        (errno.EROFS, "storage.read_only"),
        (errno.EACCES, "storage.permission"),
        (errno.EPERM, "storage.permission"),
    ],
)
def test_disk_refusals_become_storage_errors_with_stable_codes(number: int, code: str) -> None:
    error = storage_error(OSError(number, os.strerror(number)), "/data/out", "writing it")
    assert error is not None and error.code == code
    message = str(error)
    assert message.startswith("/data/out: ") and "\n" not in message
    assert "writing it" in message and "choose another location" in message


def test_other_os_errors_are_not_storage_errors() -> None:
    assert storage_error(OSError(errno.ENOENT, "gone"), "/x", "reading") is None
    assert storage_error(ValueError("no"), "/x", "reading") is None


def test_a_read_only_sqlite_database_is_a_storage_error(tmp_path: Path) -> None:
    path = tmp_path / "r.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE t (x)")
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        with pytest.raises(sqlite3.OperationalError) as caught:
            db.execute("INSERT INTO t VALUES (1)")
    finally:
        db.close()
    error = storage_error(caught.value, tmp_path, "recording")
    assert error is not None and error.code == "storage.read_only"


# -- export ----------------------------------------------------------------------------


def test_export_to_a_full_disk_exits_2_and_leaves_no_partial_file(
    workspace: Workspace,
    small_sim: SimulationRecord,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with tmpfs(tmp_path / "usb", "8k") as usb:
        code, err = ape(
            capsys, "export", small_sim.sim_id, "-o", f"{usb}/", "-w", str(workspace.root),
            "--created", CREATED,
        )  # fmt: skip
        assert_user_error(code, err, str(usb), "No space left on device", "free some space")
        assert listing(usb) == []
    assert exported_events(workspace, small_sim) == 0  # nothing was exported
    export_package(workspace, small_sim.sim_id, tmp_path)  # the workspace is fine


def test_export_into_a_read_only_folder_exits_2_naming_it(
    workspace: Workspace,
    small_sim: SimulationRecord,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with tmpfs(tmp_path / "cdrom", "1m") as cdrom:
        remount_read_only(cdrom)
        code, err = ape(
            capsys, "export", small_sim.sim_id, "-o", f"{cdrom}/", "-w", str(workspace.root)
        )
        assert_user_error(code, err, str(cdrom), "Read-only file system", "make it writable")
    assert exported_events(workspace, small_sim) == 0


def test_export_from_a_read_only_workspace_leaves_no_package(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    out.mkdir()
    with tmpfs(tmp_path / "disk", "4m") as disk:
        ws = Workspace(disk / "ws")
        record = run_small(ws)
        remount_read_only(disk)
        code, err = ape(capsys, "export", record.sim_id, "-o", f"{out}/", "-w", str(ws.root))
        # The package could not be recorded in the audit trail, so there is no package.
        assert_user_error(code, err, str(ws.root), "readonly", "make it writable")
        assert listing(out) == []
        assert exported_events(ws, record) == 0  # and the workspace still reads


def test_export_beyond_the_file_size_limit_exits_2(
    workspace: Workspace, small_sim: SimulationRecord, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    out.mkdir()

    def limit() -> None:  # in the child: EFBIG instead of death by SIGXFSZ
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8192, 8192))

    done = subprocess.run(
        [sys.executable, "-m", "apesim.cli", "export", small_sim.sim_id, "-o", f"{out}/",
         "-w", str(workspace.root)],
        capture_output=True, text=True, preexec_fn=limit, timeout=120,
    )  # fmt: skip
    assert_user_error(done.returncode, done.stderr, str(out), "File too large")
    assert listing(out) == []
    assert exported_events(workspace, small_sim) == 0


# -- run and import --------------------------------------------------------------------


def assert_nothing_installed(ws: Workspace) -> None:
    assert listing(ws.root / STAGING) == []
    assert listing(ws.root / SIMS) == []
    with sqlite3.connect(ws.root / REGISTRY) as db:
        assert db.execute("SELECT COUNT(*) FROM simulations").fetchone()[0] == 0


def test_run_into_a_full_workspace_exits_2_and_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with tmpfs(tmp_path / "disk", "1m") as disk:
        ws = Workspace(disk / "ws")
        fill(disk)
        code, err = ape(
            capsys, "run", "-p", TE, "--patients", "2000", "--years", "2", "-w", str(ws.root)
        )
        assert_user_error(code, err, str(ws.root), "No space left on device", "free some space")
        assert_nothing_installed(ws)
        assert ape(capsys, "list", "-w", str(ws.root))[0] == 0


def test_import_into_a_full_workspace_exits_2_and_leaves_nothing(
    workspace: Workspace,
    small_sim: SimulationRecord,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = export_package(workspace, small_sim.sim_id, tmp_path).path
    assert package is not None
    with tmpfs(tmp_path / "disk", "1m") as disk:
        ws = Workspace(disk / "ws")
        fill(disk)
        code, err = ape(capsys, "import", str(package), "-w", str(ws.root))
        assert_user_error(code, err, str(ws.root), "No space left on device", "free some space")
        assert_nothing_installed(ws)


@pytest.mark.parametrize("command", ["run", "import"])
def test_run_or_import_into_a_read_only_workspace_exits_2_saying_what_to_do(
    command: str,
    workspace: Workspace,
    small_sim: SimulationRecord,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = export_package(workspace, small_sim.sim_id, tmp_path).path
    argv = {
        "run": ["run", "-p", TE, "--patients", "20", "--years", "1"],
        "import": ["import", str(package)],
    }[command]
    with tmpfs(tmp_path / "disk", "1m") as disk:
        ws = Workspace(disk / "ws")
        remount_read_only(disk)
        code, err = ape(capsys, *argv, "-w", str(ws.root))
        assert_user_error(code, err, str(ws.root), "Read-only file system", "make it writable")
        assert_nothing_installed(ws)
