"""Object storage is an optional extra: `ape run` and `ape list` never load a storage
library (nor APE's modules that use one); a URL does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_cli import _LOADED

CLOUD = ("s3fs", "gcsfs", "fsspec", "botocore", "aiobotocore", "google", "apesim.remote.objects")


def loaded_by(tmp_path: Path, *argv: str) -> list[str]:
    env = {
        **os.environ,
        "APE_WORKSPACE": str(tmp_path / "ws"),
        # Should anything reach for a store: a closed port on loopback, never the internet.
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    return done.stderr.splitlines()[-1].split()


def cloud(modules: list[str]) -> list[str]:
    return [m for m in modules if m.split(".")[0] in CLOUD or m.startswith(CLOUD)]


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-p", "prn_monthly", "-n", "5", "-y", "1", "--json"],
        ["list"],
        ["export", "--all", "-o", "."],
    ],
)
def test_plain_commands_load_no_storage_library(tmp_path: Path, argv: list[str]) -> None:
    loaded = loaded_by(tmp_path, *argv)
    assert "apesim.cli" in loaded and cloud(loaded) == []


def test_a_url_does_load_it(tmp_path: Path) -> None:
    # The other side: the check sees the storage library when one is used.
    loaded = loaded_by(tmp_path, "list-remote", "s3://no-such-bucket-here/")
    assert "s3fs" in loaded and "apesim.remote.objects" in loaded
