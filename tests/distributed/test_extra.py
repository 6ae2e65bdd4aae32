"""Dask is an optional extra: a plain run never imports it, and the cluster options are
checked before anything starts, each refusal one line naming the option (exit 2)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from apesim import api
from apesim.cli import main
from apesim.errors import ParameterError

TE = "aflibercept_treat_and_extend"

# Runs `ape run` (or a sweep) in a fresh interpreter and reports the Dask modules loaded.
PROBE = """
import atexit, sys
def report():
    loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))
    sys.__stderr__.write('LOADED:' + ','.join(loaded) + '\\n')
atexit.register(report)
from apesim.cli import main
main(sys.argv[1:])
"""


def test_a_plain_run_never_imports_dask(tmp_path: Path) -> None:
    env = {**os.environ, "APE_WORKSPACE": str(tmp_path / "ws")}
    env.pop("APE_DASK_SCHEDULER", None)
    done = subprocess.run(
        [sys.executable, "-c", PROBE, "run", "-p", TE, "-n", "50", "-y", "1", "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "LOADED:\n" in done.stderr, done.stderr  # nothing of dask or distributed


@pytest.mark.parametrize(
    ("argv", "field"),
    [
        (("--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"), "--workers and --scheduler"),
        (("--workers", "0"), "--workers"),
        (("--workers", "2", "--block-size", "0"), "--block-size"),
        (("--block-size", "100"), "--block-size"),
        (("--scheduler", "tcp://a b"), "--scheduler"),
        (("--scheduler", "udp://host:1"), "--scheduler"),
        (("--scheduler", "tcp://[::1"), "--scheduler"),
    ],
)
def test_bad_cluster_options_are_one_line_naming_the_option(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: tuple[str, ...], field: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["run", "-p", TE, "-n", "50", "-y", "1", "-w", str(tmp_path / "ws"), *argv])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.count("\n") == 1 and err.startswith(f"ape: error: {field}"), err
    assert not (tmp_path / "ws").exists() or not any((tmp_path / "ws").rglob("*.parquet"))


def test_a_plain_run_reads_no_cluster_from_the_api() -> None:
    assert api.ClusterOptions.chosen(None, None) is None
    assert api.ClusterOptions.chosen(None, "") is None
    with pytest.raises(ParameterError, match="--block-size"):
        api.ClusterOptions.chosen(None, None, 10)
