"""A reader's worker forked at the very start of a command that will read a package (the
CLI's `import`, `verify` and `inspect`), before the command line is parsed: the worker loads
Arrow, numpy and pydantic while the caller loads the CLI and reads the package, then takes
the package through a socket (`isolation._inspect_early`). This module loads nothing but
the standard library before the fork, so that the fork comes first; the worker is then
handed to `isolation`, which waits for the package (`serve_early`) and keeps the caller's
end (`adopt_early`: unused, it is killed at exit)."""

from __future__ import annotations

import os
import socket
import threading


def start() -> None:
    """Fork the worker now, if this process may fork: a POSIX process without other threads
    (another thread could hold a lock the worker needs)."""
    if not hasattr(os, "fork") or threading.active_count() != 1:
        return
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    parent = os.getpid()
    pid = os.fork()
    if pid == 0:  # the worker: never returns into the caller's code
        ours.close()
        from apesim.package.isolation import serve_early

        serve_early(theirs, parent)
    theirs.close()
    from apesim.package.isolation import adopt_early

    adopt_early(pid, ours)


__all__ = ["start"]
