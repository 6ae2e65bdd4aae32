"""Real disk conditions for tests: a small tmpfs that fills up, and a read-only remount.

Root ignores permission bits, so read-only here means a file system mounted read-only (the
kernel refuses every write with EROFS, root's too). Mounting needs root (CI runs as root);
without it the tests that need a mount are skipped, saying why.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest


def _mount(*argv: str) -> None:
    done = subprocess.run(["mount", *argv], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount here (mount {' '.join(argv)}): {done.stderr.strip()}")


@contextlib.contextmanager
def tmpfs(where: Path, size: str) -> Iterator[Path]:
    """A fresh tmpfs of `size` (e.g. "64k") mounted at `where`: a disk that really fills."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs (a real full disk) needs root")
    where.mkdir(parents=True, exist_ok=True)
    _mount("-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(where))
    try:
        yield where
    finally:
        subprocess.run(["umount", "-l", str(where)], check=False)


def remount_read_only(where: Path) -> None:
    """Make the tmpfs at `where` read-only: every write fails with EROFS, even root's."""
    _mount("-o", "remount,ro", str(where))


def fill(where: Path) -> None:
    """Fill the file system of `where` up to its last byte."""
    fd = os.open(where / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def listing(folder: Path) -> list[str]:
    """Every name under `folder`, relative, sorted."""
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))
