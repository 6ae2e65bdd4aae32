"""S3 and GCS API servers on loopback, started once per session, and the environment that
points APE's standard credential chains at them (never at the internet)."""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.remote.servers import gcs_emulator, moto_s3

# Before gcsfs is imported (it reads this once): no hierarchical-namespace probe per bucket.
os.environ["GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT"] = "false"
pytest.importorskip("s3fs", reason="the cloud extra is not installed")
pytest.importorskip("gcsfs", reason="the cloud extra is not installed")

GCS_BUCKET = "ape-gcs"
_names = itertools.count()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with moto_s3() as url:
        yield url


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    with gcs_emulator(GCS_BUCKET) as url:
        yield url


def point_s3_at(monkeypatch: pytest.MonkeyPatch, endpoint: str, home: Path) -> None:
    """AWS's standard variables, with no profile or instance metadata to fall back on."""
    for key, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_CONFIG_FILE": str(home / "aws-config"),
        "AWS_SHARED_CREDENTIALS_FILE": str(home / "aws-credentials"),
    }.items():
        monkeypatch.setenv(key, value)


@pytest.fixture(params=["s3", "gs"])
def bucket_url(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> str:
    """A fresh, empty place in a bucket: `s3://<new bucket>/` or `gs://ape-gcs/<new>/`."""
    monkeypatch.setenv("NO_GCE_CHECK", "true")  # google-auth: no metadata-server probe
    if request.param == "s3":
        endpoint = request.getfixturevalue("s3_endpoint")
        point_s3_at(monkeypatch, endpoint, tmp_path)
        import s3fs

        bucket = f"ape-s3-{next(_names)}"
        s3fs.S3FileSystem(skip_instance_cache=True).mkdir(bucket)
        return f"s3://{bucket}/"
    endpoint = request.getfixturevalue("gcs_endpoint")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", endpoint)
    return f"gs://{GCS_BUCKET}/run-{next(_names)}/"
