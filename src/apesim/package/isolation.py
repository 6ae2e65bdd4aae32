"""Validating an untrusted package in a child process, so that a crash in a library's native
code (Arrow's C++ Parquet reader has aborted the process on forged files) or a runaway
allocation ends the child, not APE: in the app that would be the server of every user.

A small fork server is started once per process: a fresh interpreter (`python -P -m
apesim.package.isolation FD`: -P, not importing from the current directory) that imports
the reader and then waits, single-threaded, for requests on a Unix socket. Each request
brings a socket of its own; the server forks a monitor, which forks the worker. The worker
reads the package's bytes, runs every check under resource limits (address space and CPU
time; no core file) and writes back, as pickles, the code of each stage as it starts and
then the report (validated files as bytes). The monitor waits for the
worker and writes its exit status last, so a worker that dies gives a `package.unreadable`
finding at the stage it was in, naming the signal; a worker that fails outside a stage
writes its traceback to stderr and exits with code 1 (a failure, not a silent 0).

A caller that runs no other Python thread (the CLI, a script) forks its worker directly
instead: no second interpreter has to start, and the worker shares the package's bytes
instead of receiving them (the native threads of numpy and pyarrow register fork
handlers). A threaded caller (the app's server) must not fork, so it uses the fork server;
and not multiprocessing, whose spawn and fork server re-import the caller's main module (a
user's script without a main guard would run again). Where there is no fork at all
(Windows), each package gets a fresh interpreter (`python -P -m apesim.package.isolation
--stdio`) through pipes, without kernel limits. The boundary contains crashes and memory,
not privileges: the worker runs as the same user.

The `ape` executable goes one step further for `import`, `verify` and `inspect`: it forks
the worker as it starts (`early.py`, before the CLI loads Typer), the worker loads the
reader meanwhile, and the first package goes to it through its socket, as to the fork
server's workers (`_inspect_early`, `serve_early`).

Workers do not outlive their caller, nor crowd it. At most `MAX_WORKERS` run at once per
process (each may use gigabytes); more callers wait. A caller interrupted while it waits
(Ctrl-C, an exception) kills its worker: a forked worker or a fresh interpreter directly,
and through the fork server by closing its socket, on which the monitor kills the worker. A
caller killed outright takes its worker along on Linux (prctl PR_SET_PDEATHSIG): a forked
worker or fresh interpreter dies with its caller; the fork server ends when its control
socket closes, each monitor dies with the server and each worker with its monitor. Workers
dump no core.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import dataclasses
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import threading
import traceback
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any, BinaryIO, NoReturn

try:  # POSIX only: elsewhere the worker runs without kernel limits
    import resource
except ImportError:  # pragma: no cover (Windows)
    resource = None  # type: ignore[assignment]

from apesim import faults
from apesim.errors import PackageFormatError
from apesim.package import format as fmt

if TYPE_CHECKING:
    from apesim.package.report import PackageReport
    from apesim.package.source import LoadedSource

_CAN_FORK = hasattr(os, "fork")
_HEADER = 8  # bytes of the pickled header's length, little-endian
_EXIT = "exit"  # the monitor's last message: (_EXIT, wait status)
_FAILED = 1  # a worker's exit code when it failed outside a stage (its traceback on stderr)
MAX_WORKERS = 2  # workers running at once in one process
_slots = threading.BoundedSemaphore(MAX_WORKERS)
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
Base = dict[str, bytes]  # a differential package's base: file name -> content


def _find_prctl() -> Any:
    """libc's prctl on Linux, looked up once in the parent (not after a fork), else None."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):  # pragma: no cover (a libc without prctl)
        return None


_prctl = _find_prctl()


def _die_with(parent: int) -> None:
    """Have the kernel kill this process (SIGKILL) when its parent ends, where it can (Linux);
    and end now if `parent`, the pid that forked or started it, has already ended (it may
    have died before the request was made: this process would then have a new parent)."""
    if _prctl is None or _prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
        return
    if os.getppid() != parent:
        os._exit(_FAILED)


def _run_worker(body: Callable[..., object], *args: Any) -> NoReturn:
    """Run a worker's or monitor's `body` and exit: 0 if it returned, 1 with the traceback on
    stderr if anything was raised (pickling the report, a MemoryError copying files...)."""
    try:
        body(*args)
    except BaseException:
        try:
            traceback.print_exc()
            sys.stderr.flush()
        finally:
            os._exit(_FAILED)
    os._exit(0)


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
        (resource.RLIMIT_CORE, 0),  # no core file of up to the memory limit
    ):
        _, hard = resource.getrlimit(kind)
        if hard == resource.RLIM_INFINITY or value < hard:
            resource.setrlimit(kind, (value, value))


class _ForkServer:
    """The parent's handle on its fork server (started on first use, restarted if gone)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self.process = subprocess.Popen(
            [sys.executable, "-P", "-m", "apesim.package.isolation", str(theirs.fileno())],
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
    if code == _FAILED:
        return f"failed (exit code {code})"
    if code == 0:
        return "ended without a report (exit code 0)"
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


def inspect_in_child(
    source: LoadedSource, limits: fmt.ReadLimits, base: Base | None = None
) -> PackageReport:
    """`stages.inspect_loaded` run in a worker process under resource limits: forked from
    this process when it runs no other Python thread (the CLI, scripts: no second
    interpreter to start, and the package's bytes are shared, not sent), else from the fork
    server (the app). Waits while `MAX_WORKERS` are running. `base`: the base simulation's
    tables for a differential package (sent to the worker after the package)."""
    with _slots:
        if not _CAN_FORK:
            return _inspect_spawned(source, limits, base)
        waiting = _take_early()
        if waiting is not None:
            return _inspect_early(source, limits, base, *waiting)
        if _may_fork():
            return _inspect_forked(source, limits, base)
        return _inspect_served(source, limits, base)


def _header(source: LoadedSource, limits: fmt.ReadLimits, base: Base | None) -> bytes:
    """What a worker reads first: the package's name, hash and size, the limits, the fault
    hook, and the names and sizes of the base's files that follow the package."""
    sizes = [(name, len(data)) for name, data in (base or {}).items()]
    fault = os.environ.get(faults.ENV)
    header = pickle.dumps((source.name, source.sha256, len(source.data), limits, fault, sizes))
    return len(header).to_bytes(_HEADER, "little") + header


def _inspect_served(
    source: LoadedSource, limits: fmt.ReadLimits, base: Base | None
) -> PackageReport:
    """Through the fork server. Closing the socket early (an exception while waiting) makes
    the monitor kill the worker."""
    with _connect() as conn:
        _send(conn, source, limits, base)
        stage, report, ending = _collect(conn)
    code = None if ending is None else os.waitstatus_to_exitcode(ending[0])
    return _outcome(source, stage, report, code)


def _send(
    conn: socket.socket, source: LoadedSource, limits: fmt.ReadLimits, base: Base | None
) -> None:
    """The request, as a worker reads it (`_work_on`): the header, the package, the base's
    files; then the end of the request. A worker that died meanwhile is not an error here:
    its exit status tells why."""
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        conn.sendall(_header(source, limits, base))
        conn.sendall(source.data)
        for data in (base or {}).values():
            conn.sendall(data)
        conn.shutdown(socket.SHUT_WR)


def _inspect_early(
    source: LoadedSource, limits: fmt.ReadLimits, base: Base | None, pid: int, conn: socket.socket
) -> PackageReport:
    """Through the worker forked when the command started (`early.py`), its libraries loaded
    by now. This process does not load them to read the report (it needs only `handler`):
    the worker has both cores to itself."""
    return _answer(source, pid, conn, lambda: _send(conn, source, limits, base))


def _inspect_forked(
    source: LoadedSource, limits: fmt.ReadLimits, base: Base | None
) -> PackageReport:
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    caller = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the caller's code
        _die_with(caller)
        ours.close()
        _run_worker(_work_forked, source, limits, base, theirs)
    theirs.close()
    return _answer(source, pid, ours)


def _answer(
    source: LoadedSource,
    pid: int,
    conn: socket.socket,
    request: Callable[[], None] | None = None,
) -> PackageReport:
    """What this process's worker `pid` reports on `conn` (after the `request`, if it takes
    one), once it has ended; interrupted while waiting, the worker is killed, not left to run
    on."""
    status: int | None = None
    try:
        with conn:
            if request is not None:
                request()
            stage, report, _ = _collect(conn)
        _, status = os.waitpid(pid, 0)
    finally:
        if status is None:
            _kill(pid)
    return _outcome(source, stage, report, os.waitstatus_to_exitcode(status))


def _load_stages() -> None:
    """Import the stages and the libraries they use (Arrow, numpy, pydantic: about 0.3 s), in
    a worker. Its caller does not need them: reading the report loads `handler` only."""
    import apesim.package.stages  # noqa: F401


def _work_forked(
    source: LoadedSource, limits: fmt.ReadLimits, base: Base | None, conn: socket.socket
) -> None:
    _load_stages()  # APE's own code, before the limits, which are for the package's data
    _limit_resources(limits)
    with conn.makefile("wb") as out:
        _check(source, limits, out, base)


def _inspect_spawned(
    source: LoadedSource, limits: fmt.ReadLimits, base: Base | None
) -> PackageReport:
    """Where there is no fork (Windows): a fresh interpreter per package, through pipes. It
    reads all its input before it writes, so the input is written whole, then the output
    read."""
    child = subprocess.Popen(
        [sys.executable, "-P", "-m", "apesim.package.isolation", "--stdio", str(os.getpid())],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    assert child.stdin is not None and child.stdout is not None
    try:
        # (if it dies before it has read everything, its exit status tells why)
        with contextlib.suppress(BrokenPipeError), child.stdin:
            child.stdin.write(_header(source, limits, base))
            child.stdin.write(source.data)
            for data in (base or {}).values():
                child.stdin.write(data)
        stage, report, _ = _collect_stream(child.stdout)
        code = child.wait()
    finally:
        if child.returncode is None:  # interrupted while waiting: the worker must not run on
            child.kill()
            child.wait()
        child.stdout.close()
    return _outcome(source, stage, report, code)


def _collect(conn: socket.socket) -> tuple[str | None, PackageReport | None, Any]:
    """The stages a worker started, its report and the monitor's ending, as far as sent."""
    with conn.makefile("rb") as stream:
        return _collect_stream(stream)


def _collect_stream(stream: IO[bytes]) -> tuple[str | None, PackageReport | None, Any]:
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
    from apesim.package.report import unreadable_report

    if report is not None and code == 0:
        if report.validated is not None:  # the files found in the package's own bytes
            files = {
                k: source.data[v[0] : v[1]] if isinstance(v, tuple) else v
                for k, v in report.validated.folder_files.items()
            }
            report.validated = dataclasses.replace(report.validated, folder_files=files)
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


def _span(view: bytes | memoryview, package: memoryview) -> tuple[int, int] | None:
    """Where `view` lies in `package` (start, stop), if it is a slice of the very same
    buffer: a validated file that is a STORED entry is sent as where it lies, since the
    caller holds the same bytes (tens of megabytes of Parquet are not copied through the
    socket and back). A plain tuple: this module runs as __main__ in the fork server."""
    if not isinstance(view, memoryview) or not len(view) or view.obj is not package.obj:
        return None
    import numpy as np  # loaded with the reader already

    start = np.frombuffer(view, np.uint8).ctypes.data - np.frombuffer(package, np.uint8).ctypes.data
    if not 0 <= start <= len(package) - len(view):
        return None
    return start, start + len(view)


def _check(
    source: LoadedSource, limits: fmt.ReadLimits, out: BinaryIO, base: Base | None = None
) -> None:
    """Run every stage, writing each stage's code as it starts, then the report."""
    from apesim.package.stages import inspect_loaded

    faults.point("read.hang")

    def started(stage: str) -> None:
        pickle.dump(stage, out)
        out.flush()

    resident = _status("VmRSS")  # a forked worker starts with its caller's pages
    report = inspect_loaded(source, limits, started, base=base)
    report.reader_peak_bytes = max(_status("VmHWM") - resident, 0)
    if report.validated is not None:  # memoryviews do not pickle: where they are, or bytes
        files: dict[str, Any] = {
            k: _span(v, source.data) or bytes(v) for k, v in report.validated.folder_files.items()
        }
        report.validated = dataclasses.replace(report.validated, folder_files=files)
    pickle.dump(report, out)
    out.flush()


_early: tuple[int, socket.socket] | None = None  # the worker forked by `early.start`
_early_lock = threading.Lock()


def adopt_early(pid: int, conn: socket.socket) -> None:
    """Keep the worker `early.start` forked (its pid, our end of its socket) for the first
    package; one that no package comes to is killed at exit (`discard_early`)."""
    global _early
    with _early_lock:
        previous, _early = _early, (pid, conn)
    if previous is not None:  # (not by the CLI, which forks one)
        _end(*previous)
    atexit.unregister(discard_early)  # registered once, however many were adopted
    atexit.register(discard_early)


def _take_early() -> tuple[int, socket.socket] | None:
    global _early
    with _early_lock:
        waiting, _early = _early, None
    return waiting


def discard_early() -> None:
    """End the early worker if no package came to it (at exit, or in tests)."""
    waiting = _take_early()
    if waiting is not None:
        _end(*waiting)


def _end(pid: int, conn: socket.socket) -> None:
    conn.close()
    _kill(pid)


def _kill(pid: int) -> None:
    """Kill a worker of this process and reap it (it may have ended already)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, 0)


def serve_early(conn: socket.socket, parent: int) -> NoReturn:
    """The worker forked when a command started (`early.py`): load the reader, then check
    the one package the caller sends; if it sends none (its socket closes), end quietly.
    Ctrl-C is the caller's to handle: it kills this worker when it stops."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with(parent)
    _run_worker(_work_early, conn)


def _work_early(conn: socket.socket) -> None:
    _load_stages()
    with conn.makefile("rb") as stream, conn.makefile("wb") as out:
        if stream.peek(1):  # (blocks until the request comes, or the socket closes)
            _work_on(stream, out)


# -- The fork server, its monitors and workers (in the child interpreter). -----------------


def _work(conn: socket.socket) -> None:
    """The fork server's worker: read the header and the package, then check it."""
    with conn.makefile("rb") as stream, conn.makefile("wb") as out:
        _work_on(stream, out)


def _work_on(stream: BinaryIO, out: BinaryIO) -> None:
    """Read the header and the package from `stream`, check it, report on `out`."""
    from apesim.package.source import LoadedSource

    size = int.from_bytes(stream.read(_HEADER), "little")
    name, sha256, package_size, limits, fault, sizes = pickle.loads(stream.read(size))
    # The caller's fault-injection point (a test hook), or none: the fork server may have
    # been started by a caller that had one then.
    if fault is None:
        os.environ.pop(faults.ENV, None)
    else:
        os.environ[faults.ENV] = fault
    _limit_resources(limits)
    data = stream.read(package_size)
    base = {file: stream.read(file_size) for file, file_size in sizes} or None
    _check(LoadedSource(name, memoryview(data), sha256), limits, out, base)


def _monitor(conn: socket.socket) -> None:
    """Fork the worker, wait for it, and report how it ended."""
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    monitor = os.getpid()
    pid = os.fork()
    if pid == 0:
        _die_with(monitor)
        _run_worker(_work, conn)
    status = _wait(pid, conn)
    with contextlib.suppress(OSError):
        conn.sendall(pickle.dumps((_EXIT, status)))
    conn.close()


def _wait(pid: int, conn: socket.socket) -> int:
    """The worker's wait status. If the caller hangs up first (closes its end of `conn`: it
    was interrupted, or died), the worker is killed: nobody waits for its report."""
    watch = select.poll()
    watch.register(conn, select.POLLHUP)  # (POLLHUP and POLLERR are always reported)
    pidfd = None
    with contextlib.suppress(AttributeError, OSError):  # Linux 5.3+: readable when it ends
        pidfd = os.pidfd_open(pid)
        watch.register(pidfd, select.POLLIN)
    try:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                return status
            for fd, _ in watch.poll(None if pidfd is not None else 100):
                if fd == conn.fileno():
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                    return os.waitpid(pid, 0)[1]
    finally:
        if pidfd is not None:
            os.close(pidfd)


def _serve(fd: int) -> None:
    """The fork server: one monitor per request, until the parent closes the socket."""
    # Preloaded and warmed once, shared by every worker: the reader (and the earlier APE's
    # handler, which it loads on first use), and the Parquet layouts of the format's tables.
    import apesim.package.legacy
    import apesim.package.stages  # noqa: F401
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
        server = os.getpid()
        if os.fork() == 0:
            _die_with(server)
            control.close()
            _run_worker(_monitor, conn)
        conn.close()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--stdio"]:
        _die_with(int(sys.argv[2]))
        _run_worker(_work_on, sys.stdin.buffer, sys.stdout.buffer)
    else:
        _serve(int(sys.argv[1]))


__all__ = ["adopt_early", "discard_early", "inspect_in_child", "serve_early"]
