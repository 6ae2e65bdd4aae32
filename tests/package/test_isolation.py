"""The reader's process boundary: a package is validated in a worker process that may die
without taking APE with it, and what comes back is exactly what an in-process check gives."""

from __future__ import annotations

import io
import os
import pickle
import subprocess
import sys
import threading
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from apesim import api, faults
from apesim.api import SimulationParameters
from apesim.errors import PackageFormatError
from apesim.package import early, import_package, inspect_package, isolation
from apesim.package import format as fmt
from apesim.workspace import Workspace
from tests.package.conftest import snapshot
from tests.package.processes import (
    APE,
    DEADLINE,
    LINUX,
    alive,
    descendants,
    gone,
    hanging_worker,
    kill_all,
)


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


def test_the_worker_sends_the_packages_stored_files_as_where_they_lie(
    valid_package: bytes, transport: str
) -> None:
    """The Parquet files come back as slices of the caller's own copy of the package (not
    copied through the socket), byte for byte what the package holds."""
    report = inspect_package(valid_package)
    assert report.validated is not None
    files = report.validated.folder_files
    with zipfile.ZipFile(io.BytesIO(valid_package)) as zf:
        for entry, local in fmt.FOLDER_FILES.items():
            assert bytes(files[local]) == zf.read(entry)
    stored = files[fmt.FOLDER_FILES[fmt.VISITS]]
    assert isinstance(stored, memoryview) and len(stored) > 0


def test_a_refusal_crosses_the_boundary_with_its_class_and_code(valid_package: bytes) -> None:
    report = inspect_package(valid_package[:-200])
    assert type(report.error) is PackageFormatError
    assert report.error.code == "zip.truncated"


@pytest.fixture(params=["forked", "early", "fork server", "spawned"])
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """Every way to a worker: forked from a caller without other threads, forked when the
    command started (the `ape` executable's, `early.py`: the test's first package goes to
    it), from the fork server (what a threaded caller such as the app uses), or a fresh
    interpreter through pipes (where there is no fork: Windows)."""
    if request.param == "early":
        early.start()
        assert isolation._early is not None, f"not forked: {threading.enumerate()}"
    if request.param == "fork server":
        monkeypatch.setattr(isolation, "_may_fork", lambda: False)
    if request.param == "spawned":
        monkeypatch.setattr(isolation, "_CAN_FORK", False)
    yield str(request.param)
    isolation.discard_early()


def test_a_single_threaded_caller_forks_and_a_threaded_one_uses_the_server() -> None:
    assert isolation._may_fork(), f"an earlier test left threads: {threading.enumerate()}"
    started = threading.Event()
    done = threading.Event()

    def wait() -> None:
        started.set()
        done.wait()

    other = threading.Thread(target=wait)
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
        ws, "v1_aflibercept_treat_and_extend", SimulationParameters(40_000, 3.0, 5), name="big"
    )
    big = tmp_path / "big.zip"
    api.export_package(ws, record.sim_id, big)
    assert inspect_package(big).ok
    report = inspect_package(big, limits=fmt.ReadLimits(max_reader_memory=4 << 20))
    assert report.error is not None and report.error.code == "package.unreadable"
    assert "memory" in str(report.error).lower()
    assert inspect_package(valid_package).ok


# -- Workers do not outlive their caller, nor crowd it. ---------------------------------------

CALLER = """
import sys
from apesim.package import inspect_package, isolation
if sys.argv[1] == "fork server":
    isolation._may_fork = lambda: False
if sys.argv[1] == "spawned":
    isolation._CAN_FORK = False
if sys.argv[1] == "early":
    from apesim.package import early
    early.start()
inspect_package(open(sys.argv[2], "rb").read())
"""


@pytest.mark.skipif(not LINUX, reason="finds processes through /proc")
def test_a_worker_dies_with_its_killed_caller(
    valid_package: bytes, tmp_path: Path, transport: str
) -> None:
    """A caller killed (kill -9) while its worker is busy takes the worker along: through
    the fork server, the server ends (its control socket closed), then its monitor, then the
    worker."""
    path = tmp_path / "p.zip"
    path.write_bytes(valid_package)
    args = [sys.executable, "-c", CALLER, transport, str(path)]
    with hanging_worker(args, dict(os.environ)) as (caller, workers):
        assert workers
        caller.kill()
        caller.wait()
        assert gone(workers), f"still running: {alive(workers)}"


@pytest.mark.skipif(not LINUX, reason="finds processes through /proc")
def test_a_caller_interrupted_while_waiting_ends_its_worker(
    valid_package: bytes, monkeypatch: pytest.MonkeyPatch, transport: str
) -> None:
    """Ctrl-C (or any exception) while the worker is busy: the worker is killed and reaped,
    not left running to its limits."""
    assert inspect_package(valid_package).ok  # the fork server, if any, is up
    before = descendants(os.getpid())
    expected = 2 if transport == "fork server" else 1  # a monitor and its worker
    started: set[tuple[int, str]] = set()

    def interrupted(stream: Any) -> Any:
        deadline = time.monotonic() + DEADLINE
        while len(started) < expected and time.monotonic() < deadline:
            started.update(descendants(os.getpid()) - before)
            time.sleep(0.02)
        raise KeyboardInterrupt

    monkeypatch.setenv(faults.ENV, "read.hang")
    monkeypatch.setattr(isolation, "_collect_stream", interrupted)
    try:
        with pytest.raises(KeyboardInterrupt):
            inspect_package(valid_package)
        assert len(started) == expected
        assert gone(started), f"still running: {alive(started)}"
    finally:
        kill_all(started)


def test_a_worker_that_fails_outside_a_stage_is_reported_as_failed(
    valid_package: bytes, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """An error after the stages (here a MemoryError copying the validated files) ends the
    worker with exit code 1 and its traceback on stderr, not silently with 0."""
    from apesim.package.stages import inspect_loaded

    def failing(source: Any, limits: fmt.ReadLimits, out: BinaryIO, base: Any = None) -> None:
        def started(stage: str) -> None:
            pickle.dump(stage, out)
            out.flush()

        inspect_loaded(source, limits, started)
        raise MemoryError("copying the validated files")

    assert isolation._may_fork()
    monkeypatch.setattr(isolation, "_check", failing)
    report = inspect_package(valid_package)
    assert report.error is not None and report.error.code == "package.unreadable"
    assert "reader process failed (exit code 1)" in str(report.error)
    assert "MemoryError: copying the validated files" in capfd.readouterr().err


def test_at_most_two_workers_run_at_once(
    valid_package: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Many sessions validating at once wait for a worker: each may take gigabytes."""
    real = isolation._inspect_served
    lock = threading.Lock()
    running = [0, 0]  # now, at most
    pair = threading.Barrier(2, timeout=60)  # two run together (else the limit is one)

    def counted(*args: Any) -> Any:
        with lock:
            running[0] += 1
            running[1] = max(running)
        try:
            pair.wait()
            return real(*args)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(isolation, "_inspect_served", counted)
    results: list[bool] = []

    def check() -> None:
        results.append(inspect_package(valid_package).ok)

    threads = [threading.Thread(target=check) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == [True] * 6
    assert running == [0, 2]


@pytest.fixture
def planted(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A working directory holding a module named like APE's package, and no fork server
    started yet (one started elsewhere would not show where it looks for modules)."""
    (tmp_path / "apesim").mkdir()
    (tmp_path / "apesim" / "__init__.py").write_text("raise SystemExit('planted')\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(isolation, "_server", None)
    yield
    if isolation._server is not None:
        isolation._server.control.close()
        isolation._server.process.wait()


@pytest.mark.usefixtures("planted")
def test_the_worker_interpreters_do_not_import_from_the_working_directory(
    valid_package: bytes, transport: str
) -> None:
    """`python -P`: the fork server and the --stdio worker import APE from where it is
    installed, not from a module planted in the current directory."""
    assert inspect_package(valid_package).ok


def test_the_worker_dumps_no_core(monkeypatch: pytest.MonkeyPatch) -> None:
    resource = pytest.importorskip("resource")
    limits: list[tuple[int, tuple[int, int]]] = []
    monkeypatch.setattr(resource, "setrlimit", lambda kind, value: limits.append((kind, value)))
    isolation._limit_resources(fmt.ReadLimits())
    assert (resource.RLIMIT_CORE, (0, 0)) in limits
