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

Why not `fork` from APE itself or multiprocessing: forking the app's threaded server is
unsafe, and multiprocessing's spawn and fork server re-import the caller's main module (a
user's script without a main guard would run again). The boundary contains crashes and
memory, not privileges: the worker runs as the same user.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pickle
import resource
import signal
import socket
import subprocess
import sys
import threading
from typing import TYPE_CHECKING, Any

from apesim import faults
from apesim.errors import PackageFormatError
from apesim.package import format as fmt

if TYPE_CHECKING:
    from apesim.package.reader import PackageReport
    from apesim.package.source import LoadedSource

_HEADER = 8  # bytes of the pickled header's length, little-endian
_EXIT = "exit"  # the monitor's last message: (_EXIT, wait status, worker's peak bytes)


def _limit_resources(limits: fmt.ReadLimits) -> None:
    """Hard limits on the worker: a decode that runs away is stopped by the kernel."""
    for kind, value in (
        (resource.RLIMIT_AS, limits.max_reader_memory),
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


def _describe(status: int | None) -> str:
    if status is None:
        return "ended without a report"
    code = os.waitstatus_to_exitcode(status)
    if code < 0:
        try:
            return f"was killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"was killed by signal {-code}"
    return f"ended with exit code {code}"


def inspect_in_child(source: LoadedSource, limits: fmt.ReadLimits) -> PackageReport:
    """`reader.inspect_loaded` run in a worker process under resource limits."""
    from apesim.package.reader import unreadable_report

    header = pickle.dumps((source.name, source.sha256, limits, os.environ.get(faults.ENV)))
    with _connect() as conn:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            conn.sendall(len(header).to_bytes(_HEADER, "little") + header)
            conn.sendall(source.data)
            conn.shutdown(socket.SHUT_WR)
        stream = conn.makefile("rb")
        stage: str | None = None
        report: PackageReport | None = None
        status: int | None = None
        peak: int | None = None
        while True:
            try:
                message: Any = pickle.load(stream)
            except Exception:  # end of the stream, or output cut short by a death
                break
            if isinstance(message, str):
                stage = message
            elif isinstance(message, tuple) and message[:1] == (_EXIT,):
                _, status, peak = message
            else:
                report = message
        stream.close()
    if report is not None and status is not None and os.waitstatus_to_exitcode(status) == 0:
        report.reader_peak_bytes = peak
        return report
    return unreadable_report(
        source,
        stage,
        PackageFormatError(
            f"{source.name}: the package could not be read: the reader process "
            f"{_describe(status)} (the file is malformed, or beyond the reader's memory or "
            "time limit)",
            code="package.unreadable",
        ),
    )


# -- The fork server, its monitors and workers (in the child interpreter). -----------------


def _work(conn: socket.socket) -> None:
    """The worker: read the header and the package, report each stage, then the report."""
    from apesim.package.reader import inspect_loaded
    from apesim.package.source import LoadedSource

    stream = conn.makefile("rb")
    out = conn.makefile("wb")
    size = int.from_bytes(stream.read(_HEADER), "little")
    name, sha256, limits, fault = pickle.loads(stream.read(size))
    if fault is not None:  # the caller's fault-injection point (a test hook)
        os.environ[faults.ENV] = fault
    _limit_resources(limits)
    data = stream.read()

    def started(stage: str) -> None:
        pickle.dump(stage, out)
        out.flush()

    report = inspect_loaded(LoadedSource(name, memoryview(data), sha256), limits, started)
    if report.validated is not None:  # memoryviews do not pickle: send bytes
        files: dict[str, bytes | memoryview] = {
            k: bytes(v) for k, v in report.validated.folder_files.items()
        }
        report.validated = dataclasses.replace(report.validated, folder_files=files)
    pickle.dump(report, out)
    out.flush()


def _monitor(conn: socket.socket) -> None:
    """Fork the worker, wait for it, and report how it ended."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    pid = os.fork()
    if pid == 0:
        try:
            _work(conn)
        finally:
            os._exit(0)
    _, status, usage = os.wait4(pid, 0)
    with contextlib.suppress(OSError):
        conn.sendall(pickle.dumps((_EXIT, status, usage.ru_maxrss * 1024)))
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
    _serve(int(sys.argv[1]))


__all__ = ["inspect_in_child"]
