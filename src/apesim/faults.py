"""Fault-injection points: a TEST HOOK for crash tests, inert unless APE_FAULT is set.

Code that must survive a kill -9 names the steps in between with `point("<name>")`. A test
runs a real command with the environment variable APE_FAULT=<name>, and the process kills
itself with SIGKILL at that very step: crash tests need no timing. The points, in the order
an export passes them:

- `export.writing`: the package's partial file holds its first entry only.
- `export.written`: the package is complete in its partial file, not yet recorded.
- `audit.registry_updated`: the registry's new audit head is written but not committed
  (its rollback journal is on disk).
- `audit.committed`: the registry committed the new head and event; the trail file is old.
- `audit.temp_written`: the new trail is in its temporary file, not yet renamed.
- `audit.replaced`: the trail file was replaced (the append is complete).
- `export.recorded`: the `exported` event is recorded; the package is not yet renamed.

And where a package is read:

- `read.tables`: the reader process is about to decode the Parquet tables (where Arrow's
  C++ code once aborted the process); the reader runs with its caller's APE_FAULT.
- `read.hang`: the reader process, before its first stage, writes a line naming the point
  to stderr and then sleeps until it is killed instead of killing itself (to show that a
  worker does not outlive its caller).

And in a distributed run:

- `distributed.block`: a Dask worker has simulated a block and is about to return it. With
  APE_FAULT_ONCE=<path> only the first process to create that file dies (a worker killed
  once mid-run, whose block Dask computes again elsewhere); without it, every attempt dies.
"""

from __future__ import annotations

import os
import signal
import sys
import time

ENV = "APE_FAULT"
ONCE_ENV = "APE_FAULT_ONCE"

POINTS = (
    "export.writing",
    "export.written",
    "audit.registry_updated",
    "audit.committed",
    "audit.temp_written",
    "audit.replaced",
    "export.recorded",
    "read.tables",
    "read.hang",
    "distributed.block",
    "decrypt.written",
)
HANGS = ("read.hang",)  # the points that sleep (until killed) instead of killing


def point(name: str) -> None:
    """Kill this process (SIGKILL, as kill -9 would) if APE_FAULT names this point; at a
    point of `HANGS`, say so on stderr and sleep until killed."""
    assert name in POINTS, name
    if os.environ.get(ENV) != name:
        return
    if name in HANGS:
        print(f"{ENV}={name}: hanging", file=sys.stderr, flush=True)
        while True:
            time.sleep(3600)
    once = os.environ.get(ONCE_ENV)
    if once:
        try:
            os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return  # fired already, in this or another process
    os.kill(os.getpid(), signal.SIGKILL)
