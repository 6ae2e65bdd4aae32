"""The reader's process boundary: a package is validated in a worker process that may die
without taking APE with it, and what comes back is exactly what an in-process check gives."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from apesim import api
from apesim.api import SimulationParameters
from apesim.errors import PackageFormatError
from apesim.package import format as fmt
from apesim.package import import_package, inspect_package, isolation
from apesim.workspace import Workspace
from tests.package.conftest import snapshot

APE = str(Path(sys.executable).parent / "ape")


def test_the_worker_reports_what_an_in_process_check_reports(
    valid_package: bytes, transport: str
) -> None:
    isolated = inspect_package(valid_package)
    local = inspect_package(valid_package, isolate=False)
    assert isolated.ok and local.ok
    assert isolated.to_json() == local.to_json()
    assert isolated.validated is not None and local.validated is not None
    assert {k: bytes(v) for k, v in isolated.validated.folder_files.items()} == {
        k: bytes(v) for k, v in local.validated.folder_files.items()
    }
    assert isolated.validated.metadata == local.validated.metadata


def test_a_refusal_crosses_the_boundary_with_its_class_and_code(valid_package: bytes) -> None:
    report = inspect_package(valid_package[:-200])
    assert type(report.error) is PackageFormatError
    assert report.error.code == "zip.truncated"


@pytest.fixture(params=["forked", "fork server", "spawned"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every way to a worker: forked from a caller without other threads, from the fork
    server (what a threaded caller such as the app uses), or a fresh interpreter through
    pipes (where there is no fork: Windows)."""
    if request.param == "fork server":
        monkeypatch.setattr(isolation, "_may_fork", lambda: False)
    if request.param == "spawned":
        monkeypatch.setattr(isolation, "_CAN_FORK", False)
    return str(request.param)


def test_a_single_threaded_caller_forks_and_a_threaded_one_uses_the_server() -> None:
    assert isolation._may_fork()
    started = threading.Event()
    done = threading.Event()
    other = threading.Thread(target=lambda: (started.set(), done.wait()))
    other.start()
    started.wait()
    try:
        assert not isolation._may_fork()
    finally:
        done.set()
        other.join()


def test_a_worker_killed_while_decoding_is_a_finding_not_a_crash(
    valid_package: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    monkeypatch.setenv("APE_FAULT", "read.tables")
    ws = Workspace(tmp_path / "ws")
    before = snapshot(tmp_path)
    report = inspect_package(valid_package, source_name="evil.zip")
    assert not report.ok and report.error is not None
    assert report.error.code == "package.unreadable"
    assert "killed by SIGKILL" in str(report.error) and "\n" not in str(report.error)
    passed = [c.code for c in report.checks if c.passed]
    failed = [c.code for c in report.checks if c.passed is False]
    assert failed == ["tables"] and passed[-1] == "content", "the stage it died in"
    with pytest.raises(PackageFormatError):
        import_package(ws, valid_package, source_name="evil.zip")
    assert snapshot(tmp_path) == before, "nothing written"
    monkeypatch.delenv("APE_FAULT")
    assert inspect_package(valid_package).ok, "the next package is read as usual"


def test_ape_verify_exits_2_when_its_reader_dies(valid_package: bytes, tmp_path: Path) -> None:
    path = tmp_path / "p.zip"
    path.write_bytes(valid_package)
    done = subprocess.run(
        [APE, "verify", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "APE_FAULT": "read.tables", "APE_WORKSPACE": str(tmp_path / "ws")},
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert "reader process was killed by SIGKILL" in done.stderr
    assert done.stderr.count("\n") == 1


def test_concurrent_checks_from_threads_each_get_their_own_worker(valid_package: bytes) -> None:
    """The app validates from several sessions' threads at once."""
    results: list[bool] = []

    def check() -> None:
        results.append(inspect_package(valid_package).ok)

    threads = [threading.Thread(target=check) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 4


def test_the_worker_runs_under_the_memory_limit(
    valid_package: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package that needs more memory than the worker may add (here 4 MiB, for tables that
    decode to tens of MB) is refused as unreadable, and the caller goes on. Through the fork
    server, whose small heap holds no spare memory (a worker forked from a warm caller may
    find what it needs already mapped: the limit bounds what is added)."""
    monkeypatch.setattr(isolation, "_may_fork", lambda: False)
    ws = Workspace(tmp_path / "ws")
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(40_000, 3.0, 5), name="big"
    )
    big = tmp_path / "big.zip"
    api.export_package(ws, record.sim_id, big)
    assert inspect_package(big).ok
    report = inspect_package(big, limits=fmt.ReadLimits(max_reader_memory=4 << 20))
    assert report.error is not None and report.error.code == "package.unreadable"
    assert "memory" in str(report.error).lower()
    assert inspect_package(valid_package).ok
