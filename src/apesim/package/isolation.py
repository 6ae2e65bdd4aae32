"""Validating an untrusted package in a child process, so that a crash in a library's native
code (Arrow's C++ Parquet reader has aborted the process on forged files) or a runaway
allocation ends the child, not APE: in the app that would be the server of every user.

A small fork server is started once per process: a fresh interpreter (`python -m
apesim.package.isolation FD`) that imports the reader and then waits, single-threaded, for
requests on a Unix socket. Each request brings a socket of its own; the server forks a
monitor, which forks the worker. The worker reads the package's bytes, runs every check under
resource limits (address space and CPU time) and writes back, as pickles, the code of each
stage as it starts and then the report (validated files as bytes). The monitor waits for the
worker and writes its exit status last, so a worker that dies gives a `package.unreadable`
finding at the stage it was in, naming the signal.

A caller that runs no other Python thread (the CLI, a script) forks its worker directly
instead: no second interpreter has to start, and the worker shares the package's bytes
instead of receiving them (the native threads of numpy and pyarrow register fork
handlers). A threaded caller (the app's server) must not fork, so it uses the fork server;
and not multiprocessing, whose spawn and fork server re-import the caller's main module (a
user's script without a main guard would run again). Where there is no fork at all
(Windows), each package gets a fresh interpreter (`python -m apesim.package.isolation
--stdio`) through pipes, without kernel limits. The boundary contains crashes and memory,
not privileges: the worker runs as the same user.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any, BinaryIO

try:  # POSIX only: elsewhere the worker runs without kernel limits
    import resource
except ImportError:  # pragma: no cover (Windows)
    resource = None  # type: ignore[assignment]

from apesim import faults
from apesim.errors import PackageFormatError
from apesim.package import format as fmt

if TYPE_CHECKING:
    from apesim.package.reader import PackageReport
    from apesim.package.source import LoadedSource

_CAN_FORK = hasattr(os, "fork")
_HEADER = 8  # bytes of the pickled header's length, little-endian
_EXIT = "exit"  # the monitor's last message: (_EXIT, wait status)


def _status(field: str) -> int:
    """A size from /proc/self/status (VmSize, VmRSS, VmHWM) in bytes, 0 where not told."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith(f"{field}:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _limit_resources(limits: fmt.ReadLimits) -> None:
    """Hard limits on the worker: a decode that runs away is stopped by the kernel. The
    memory limit is on what the worker adds to the address space it starts with (a worker
    forked from a caller inherits the caller's, whatever its size)."""
    if resource is None:
        return
    for kind, value in (
        (resource.RLIMIT_AS, _status("VmSize") + limits.max_reader_memory),
        (resource.RLIMIT_CPU, limits.max_reader_cpu_seconds),
    ):
        _, hard = resource.getrlimit(kind)
        if hard == resource.RLIM_INFINITY or value < hard:
            resource.setrlimit(kind, (value, value))


class _ForkServer:
    """The parent's handle on its fork server (started on first use, restarted if gone)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "apesim.package.isolation", str(theirs.fileno())],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
        )
        theirs.close()
        self.control = ours
        self.lock = threading.Lock()

    def connect(self) -> socket.socket:
        """A socket to a new worker."""
        mine, worker = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with self.lock:
                socket.send_fds(self.control, [b"r"], [worker.fileno()])
        finally:
            worker.close()
        return mine

    def alive(self) -> bool:
        return self.process.poll() is None


_server: _ForkServer | None = None
_server_lock = threading.Lock()


def _connect() -> socket.socket:
    global _server
    with _server_lock:
        if _server is None or not _server.alive():
            _server = _ForkServer()
        server = _server
    try:
        return server.connect()
    except OSError:  # the server died between the check and the request: once more
        with _server_lock:
            _server = _ForkServer()
            return _server.connect()


def _describe(code: int | None) -> str:
    if code is None:
        return "ended without a report"
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"ended with exit code {code}"


def _may_fork() -> bool:
    """Whether this process may fork its worker: no Python thread but the main one. The
    native threads numpy (OpenBLAS) and pyarrow (jemalloc) start register fork handlers;
    another Python thread could hold a lock the worker needs (the app's server has many)."""
    return threading.active_count() == 1 and threading.current_thread() is threading.main_thread()


def inspect_in_child(source: LoadedSource, limits: fmt.ReadLimits) -> PackageReport:
    """`reader.inspect_loaded` run in a worker process under resource limits: forked from
    this process when it runs no other Python thread (the CLI, scripts: no second
    interpreter to start, and the package's bytes are shared, not sent), else from the fork
    server (the app)."""
    if not _CAN_FORK:
        return _inspect_spawned(source, limits)
    if _may_fork():
        return _inspect_forked(source, limits)
    header = pickle.dumps((source.name, source.sha256, limits, os.environ.get(faults.ENV)))
    with _connect() as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(len(header).to_bytes(_HEADER, "little") + header)
            conn.sendall(source.data)
            conn.shutdown(socket.SHUT_WR)
        stage, report, ending = _collect(conn)
    code = None if ending is None else os.waitstatus_to_exitcode(ending[0])
    return _outcome(source, stage, report, code)


def _inspect_forked(source: LoadedSource, limits: fmt.ReadLimits) -> PackageReport:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the caller's code
        try:
            ours.close()
            _limit_resources(limits)
            with theirs.makefile("wb") as out:
                _check(source, limits, out)
        finally:
            os._exit(0)
    theirs.close()
    with ours:
        stage, report, _ = _collect(ours)
    _, status = os.waitpid(pid, 0)
    return _outcome(source, stage, report, os.waitstatus_to_exitcode(status))


def _inspect_spawned(source: LoadedSource, limits: fmt.ReadLimits) -> PackageReport:
    """Where there is no fork (Windows): a fresh interpreter per package, through pipes."""
    header = pickle.dumps((source.name, source.sha256, limits, os.environ.get(faults.ENV)))
    child = subprocess.Popen(
        [sys.executable, "-m", "apesim.package.isolation", "--stdio"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    out, _ = child.communicate(len(header).to_bytes(_HEADER, "little") + header + source.data)
    stage, report, _ = _collect_stream(io.BytesIO(out))
    return _outcome(source, stage, report, child.returncode)


def _collect(conn: socket.socket) -> tuple[str | None, PackageReport | None, Any]:
    """The stages a worker started, its report and the monitor's ending, as far as sent."""
    with conn.makefile("rb") as stream:
        return _collect_stream(stream)


def _collect_stream(stream: BinaryIO) -> tuple[str | None, PackageReport | None, Any]:
    stage: str | None = None
    report: PackageReport | None = None
    ending: Any = None
    while True:
        try:
            message: Any = pickle.load(stream)
        except Exception:  # end of the stream, or output cut short by a death
            break
        if isinstance(message, str):
            stage = message
        elif isinstance(message, tuple) and message[:1] == (_EXIT,):
            ending = message[1:]
        else:
            report = message
    return stage, report, ending


def _outcome(
    source: LoadedSource,
    stage: str | None,
    report: PackageReport | None,
    code: int | None,
) -> PackageReport:
    """The worker's report if it ended well, else a `package.unreadable` one. `code` is its
    exit code (negative: the signal that killed it)."""
    from apesim.package.reader import unreadable_report

    if report is not None and code == 0:
        return report
    return unreadable_report(
        source,
        stage,
        PackageFormatError(
            f"{source.name}: the package could not be read: the reader process "
            f"{_describe(code)} (the file is malformed, or beyond the reader's memory or "
            "time limit)",
            code="package.unreadable",
        ),
    )


def _check(source: LoadedSource, limits: fmt.ReadLimits, out: BinaryIO) -> None:
    """Run every stage, writing each stage's code as it starts, then the report."""
    from apesim.package.reader import inspect_loaded

    def started(stage: str) -> None:
        pickle.dump(stage, out)
        out.flush()

    resident = _status("VmRSS")  # a forked worker starts with its caller's pages
    report = inspect_loaded(source, limits, started)
    report.reader_peak_bytes = max(_status("VmHWM") - resident, 0)
    if report.validated is not None:  # memoryviews do not pickle: send bytes
        files: dict[str, bytes | memoryview] = {
            k: bytes(v) for k, v in report.validated.folder_files.items()
        }
        report.validated = dataclasses.replace(report.validated, folder_files=files)
    pickle.dump(report, out)
    out.flush()


# -- The fork server, its monitors and workers (in the child interpreter). -----------------


def _work(conn: socket.socket) -> None:
    """The fork server's worker: read the header and the package, then check it."""
    with conn.makefile("rb") as stream, conn.makefile("wb") as out:
        _work_on(stream, out)


def _work_on(stream: BinaryIO, out: BinaryIO) -> None:
    """Read the header and the package from `stream`, check it, report on `out`."""
    from apesim.package.source import LoadedSource

    size = int.from_bytes(stream.read(_HEADER), "little")
    name, sha256, limits, fault = pickle.loads(stream.read(size))
    if fault is not None:  # the caller's fault-injection point (a test hook)
        os.environ[faults.ENV] = fault
    _limit_resources(limits)
    data = stream.read()
    _check(LoadedSource(name, memoryview(data), sha256), limits, out)


def _monitor(conn: socket.socket) -> None:
    """Fork the worker, wait for it, and report how it ended."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        try:
            _work(conn)
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    with contextlib.suppress(OSError):
        conn.sendall(pickle.dumps((_EXIT, status)))
    conn.close()


def _serve(fd: int) -> None:
    """The fork server: one monitor per request, until the parent closes the socket."""
    # Preloaded and warmed once, shared by every worker: the reader, and the Parquet layouts
    # of the format's tables (whose first computation imports pandas).
    import apesim.package.reader  # noqa: F401
    from apesim.package.content import parquet_leaves
    from apesim.package.current import SCHEMAS

    for schema in SCHEMAS.values():
        parquet_leaves(schema)
    control = socket.socket(fileno=fd)
    signal.signal(signal.SIGCHLD, signal.SIG_IGN)  # monitors are reaped by the kernel
    while True:
        try:
            message, fds, _, _ = socket.recv_fds(control, 1, 1)
        except OSError:
            return
        if not message:
            return
        for extra in fds[1:]:
            os.close(extra)
        if not fds:
            continue
        conn = socket.socket(fileno=fds[0])
        if os.fork() == 0:
            control.close()
            try:
                _monitor(conn)
            finally:
                os._exit(0)
        conn.close()


if __name__ == "__main__":
    if sys.argv[1:] == ["--stdio"]:
        _work_on(sys.stdin.buffer, sys.stdout.buffer)
    else:
        _serve(int(sys.argv[1]))


__all__ = ["inspect_in_child"]
