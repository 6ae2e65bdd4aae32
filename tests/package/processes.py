"""Processes seen through /proc, for the tests that workers do not outlive their callers
(Linux only)."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

APE = str(Path(sys.executable).parent / "ape")
LINUX = sys.platform.startswith("linux")
DEADLINE = 10.0  # seconds: a generous bound for the kernel to end and reap a process


def proc_stat(pid: int) -> list[str] | None:
    """The fields of /proc/<pid>/stat after the command's name (state first), or None."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as f:
            return f.read().rpartition(")")[2].split()
    except OSError:
        return None


def descendants(root: int) -> set[tuple[int, str]]:
    """The live descendants of `root` as (pid, start time): the start time tells a reused pid."""
    parents: dict[int, tuple[int, str]] = {}
    for entry in os.listdir("/proc"):
        fields = proc_stat(int(entry)) if entry.isdigit() else None
        if fields is not None and fields[0] != "Z":
            parents[int(entry)] = (int(fields[1]), fields[19])
    found: set[tuple[int, str]] = set()
    frontier = {root}
    while frontier:
        frontier = {pid for pid, (ppid, _) in parents.items() if ppid in frontier}
        found |= {(pid, parents[pid][1]) for pid in frontier}
    return found


def alive(processes: set[tuple[int, str]]) -> set[tuple[int, str]]:
    """Those of `processes` still running (a zombie has ended; a reused pid is another)."""
    running = set()
    for pid, start in processes:
        fields = proc_stat(pid)
        if fields is not None and fields[0] != "Z" and fields[19] == start:
            running.add((pid, start))
    return running


def gone(processes: set[tuple[int, str]]) -> bool:
    """Whether every one of `processes` has ended, within the deadline."""
    deadline = time.monotonic() + DEADLINE
    while alive(processes) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not alive(processes)


def kill_all(processes: set[tuple[int, str]]) -> None:
    """Clean up after a failed test: no hanging worker is left behind."""
    for pid, _ in alive(processes):
        os.kill(pid, signal.SIGKILL)


def read_until(stream: IO[bytes], text: bytes) -> bytes:
    """What `stream` gives until `text` appears (or the deadline passes, or it ends)."""
    seen = b""
    deadline = time.monotonic() + 60  # a fork server warms up first
    while text not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([stream], [], [], 0.1)
        if ready:
            chunk = os.read(stream.fileno(), 65536)
            if not chunk:
                break
            seen += chunk
    return seen


@contextlib.contextmanager
def hanging_worker(
    args: list[str], env: dict[str, str]
) -> Iterator[tuple[subprocess.Popen[bytes], set[tuple[int, str]]]]:
    """A caller (`args`) whose worker hangs at APE_FAULT=read.hang, once the worker has said
    so: the caller and its live descendants. Both are killed on the way out, whatever the
    test did."""
    caller = subprocess.Popen(args, stderr=subprocess.PIPE, env={**env, "APE_FAULT": "read.hang"})
    assert caller.stderr is not None
    workers: set[tuple[int, str]] = set()
    try:
        said = read_until(caller.stderr, b"read.hang: hanging")
        assert b"read.hang: hanging" in said, said.decode(errors="replace")
        workers = descendants(caller.pid)
        yield caller, workers
    finally:
        caller.kill()
        caller.wait()
        caller.stderr.close()
        kill_all(workers)
