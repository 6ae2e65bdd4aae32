"""The disk's refusals as the user's errors: a full disk, a read-only file system or a
missing permission is not a bug in APE, so it becomes a `StorageError` (exit 2, one line
naming the path and what to do) at each place APE writes: the workspace store, the package
writer and importer, and a run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import sqlite3
from collections.abc import Iterator

from apesim.errors import StorageError

# errno -> the kind of refusal (the code is "storage.<kind>").
_OS_KINDS = {
    errno.ENOSPC: "no_space",
    errno.EDQUOT: "no_space",
    errno.EFBIG: "too_large",
    errno.EROFS: "read_only",
    errno.EACCES: "permission",
    errno.EPERM: "permission",
}

# SQLite's primary result codes -> the kind of refusal.
_SQLITE_KINDS = {
    13: "no_space",  # SQLITE_FULL
    8: "read_only",  # SQLITE_READONLY
    3: "permission",  # SQLITE_PERM
    14: "permission",  # SQLITE_CANTOPEN
}

_ADVICE = {
    "no_space": "free some space there or choose another location",
    "too_large": "the file system or a resource limit refuses a file this large; "
    "choose another location",
    "read_only": "make it writable or choose another location",
    "permission": "check its permissions or choose another location",
}


def storage_error(
    exc: BaseException, path: str | os.PathLike[str], doing: str
) -> StorageError | None:
    """The `StorageError` for `exc` if it is the disk refusing (full, read-only, not
    permitted), naming `path` and what APE was `doing`; None for any other error."""
    if isinstance(exc, OSError):
        kind = _OS_KINDS.get(exc.errno or 0)
        reason = os.strerror(exc.errno) if exc.errno else ""
    elif isinstance(exc, sqlite3.Error):
        kind = _SQLITE_KINDS.get(getattr(exc, "sqlite_errorcode", -1) & 0xFF)
        reason = str(exc)
    else:
        return None
    if kind is None:
        return None
    return StorageError(
        f"{os.fspath(path)}: {reason} while {doing}; {_ADVICE[kind]}", code=f"storage.{kind}"
    )


@contextlib.contextmanager
def storage_errors(path: str | os.PathLike[str], doing: str) -> Iterator[None]:
    """Raise the disk's refusals inside the block as a `StorageError` naming `path` (other
    errors pass unchanged; an inner block's `StorageError` wins, it names a closer path)."""
    try:
        yield
    except (OSError, sqlite3.Error) as exc:
        error = storage_error(exc, path, doing)
        if error is None:
            raise
        raise error from exc
