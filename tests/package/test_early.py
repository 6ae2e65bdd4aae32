"""The worker forked when a command starts (`package/early.py`): the `ape` executable's
`import`, `verify` and `inspect` check their first package in it; unused, it ends with its
caller. (The transports of test_isolation.py run every isolation test through it too.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from apesim.cli.start import reads_a_package
from apesim.package import early, isolation
from tests.package.processes import APE, LINUX, alive, gone, hanging_worker

pytestmark = pytest.mark.skipif(not LINUX, reason="finds processes through /proc")


def _ignores_sigint(pid: int) -> bool:
    """Whether the process ignores SIGINT (its SigIgn mask in /proc)."""
    status = Path(f"/proc/{pid}/status").read_text()
    mask = int(
        next(line for line in status.splitlines() if line.startswith("SigIgn:")).split()[1], 16
    )
    return bool(mask & (1 << (signal.SIGINT - 1)))


@pytest.mark.parametrize(
    ("args", "reads"),
    [
        (["verify", "p.zip"], True),
        (["import", "p.zip.age", "--identity", "me"], True),
        (["inspect", "p.zip", "--json"], True),
        (["inspect", "s3://bucket/p.zip"], False),
        (["verify", "--help"], False),
        (["run", "-p", "prn_monthly"], False),
        ([], False),
    ],
)
def test_which_commands_fork_their_worker_first(args: list[str], reads: bool) -> None:
    assert reads_a_package(args) is reads


def test_a_threaded_process_forks_no_early_worker() -> None:
    """Forking beside another thread could copy a lock it holds: no early worker then."""
    done = threading.Event()
    other = threading.Thread(target=done.wait)
    other.start()
    try:
        early.start()
        assert isolation._early is None
    finally:
        done.set()
        other.join()


def test_an_unused_worker_is_gone_when_its_caller_has_exited(tmp_path: Path) -> None:
    """A command that reads no package after all (a usage error, a missing file) ends its
    worker on the way out, before the worker has even loaded the reader."""
    caller = subprocess.run(
        [
            sys.executable,
            "-c",
            "from apesim.package import early; early.start(); "
            "from apesim.package import isolation; "
            "print(isolation._early[0] if isolation._early else -1)",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    pid = int(caller.stdout)
    assert pid > 0
    assert not Path(f"/proc/{pid}").exists(), "the worker outlived its caller"


def test_the_ape_executable_checks_its_package_in_the_early_worker(
    valid_package: bytes, tmp_path: Path
) -> None:
    """`ape verify`'s worker is the one forked at the start (it leaves Ctrl-C to its caller,
    which the others do not); interrupted, the caller ends it and exits 130."""
    path = tmp_path / "p.zip"
    path.write_bytes(valid_package)
    env = {**os.environ, "APE_WORKSPACE": str(tmp_path / "ws")}
    with hanging_worker([APE, "verify", str(path)], env) as (caller, workers):
        assert len(workers) == 1
        ((pid, _),) = workers
        assert _ignores_sigint(pid)
        caller.send_signal(signal.SIGINT)
        assert caller.wait(timeout=60) == 130
        assert gone(workers), f"still running: {alive(workers)}"
        assert caller.stderr is not None and b"interrupted" in caller.stderr.read()
