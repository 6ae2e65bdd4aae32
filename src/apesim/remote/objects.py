"""Reading objects from S3 and GCS through fsspec (s3fs, gcsfs): listing, whole downloads
(re-verified by length here and by SHA-256 by the caller, never by an ETag) and counted
byte ranges.

Credentials come from each store's standard chain: botocore's for S3 (AWS_* variables,
profiles, SSO, instance roles; AWS_ENDPOINT_URL for MinIO or on-premise endpoints) and
google-auth's application default credentials for GCS (STORAGE_EMULATOR_HOST for an
emulator). Listings are never cached: another writer's objects show at once.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from apesim.errors import RemoteError
from apesim.package import format as fmt
from apesim.remote.urls import RemoteURL, parse_remote

# A few quick retries, not the libraries' minutes of them: a failing server is an answer.
_S3_RETRIES = {"retries": {"max_attempts": 2, "mode": "standard"}}
_GCS_RETRIES = 2


def filesystem(scheme: str) -> Any:
    """A fresh fsspec filesystem for `s3` or `gs` (no instance or listing cache)."""
    try:
        if scheme == "s3":
            import s3fs

            return s3fs.S3FileSystem(
                skip_instance_cache=True, use_listings_cache=False, config_kwargs=_S3_RETRIES
            )
        # gcsfs 2026.10 otherwise probes every bucket for hierarchical namespaces (60 s each
        # against an emulator).
        os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")
        import gcsfs

        # Its warnings and retry tracebacks would reach stderr (logging's last resort): our
        # errors say what failed, in one line.
        logging.getLogger("gcsfs").setLevel(logging.CRITICAL)

        fs = gcsfs.GCSFileSystem(skip_instance_cache=True, use_listings_cache=False)
        fs.retries = _GCS_RETRIES
        return fs
    except ImportError:
        raise RemoteError(
            f"{scheme}:// needs APE's cloud extra: pip install 'apesim[cloud]'",
            code="remote.unavailable",
        ) from None


@contextlib.contextmanager
def remote_errors(url: str, doing: str) -> Iterator[None]:
    """A store's exceptions as one-line `RemoteError`s naming the URL."""
    try:
        yield
    except RemoteError:
        raise
    except FileNotFoundError:
        raise RemoteError(f"{url}: no such object or bucket", code="remote.missing") from None
    except PermissionError as exc:
        raise RemoteError(
            f"{url}: access denied while {doing} ({_reason(exc)}); check the credentials",
            code="remote.denied",
        ) from None
    except FileExistsError:
        raise
    except Exception as exc:  # botocore, aiohttp, google-auth: every failure of the store
        raise RemoteError(
            f"{url}: the store failed while {doing}: {_reason(exc)}", code="remote.error"
        ) from None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]


@dataclass
class RemoteObject:
    """One object: its URL and size; reads through it are counted in `bytes_read`."""

    url: str
    size: int
    location: RemoteURL
    fs: Any = field(repr=False)
    bytes_read: int = 0

    def read_range(self, start: int, end: int) -> bytes:
        """Bytes [start, end) of the object (one ranged GET)."""
        start, end = max(0, start), min(end, self.size)
        if start >= end:
            return b""
        with remote_errors(self.url, "reading"):
            data = bytes(self.fs.cat_file(self.location.path, start=start, end=end))
        self.bytes_read += len(data)
        if len(data) != end - start:
            raise RemoteError(
                f"{self.url}: asked for {end - start:,} bytes at {start:,}, got {len(data):,}",
                code="remote.error",
            )
        return data

    def download(self, max_bytes: int) -> bytes:
        """The whole object, if not larger than `max_bytes`; its length must be the size
        the store listed (the caller checks its SHA-256)."""
        if self.size > max_bytes:
            raise RemoteError(
                f"{self.url}: {self.size:,} bytes exceeds the limit of {max_bytes:,}",
                code="limit.total_size",
            )
        with remote_errors(self.url, "downloading"):
            data = bytes(self.fs.cat_file(self.location.path))
        self.bytes_read += len(data)
        if len(data) != self.size:
            raise RemoteError(
                f"{self.url}: downloaded {len(data):,} bytes, the store lists {self.size:,}",
                code="remote.error",
            )
        return data


def stat_object(location: RemoteURL, fs: Any = None) -> RemoteObject:
    """The object at `location` (`remote.missing` if there is none)."""
    fs = fs or filesystem(location.scheme)
    with remote_errors(location.url, "looking it up"):
        info = fs.info(location.path)
    if info.get("type") != "file":
        raise RemoteError(
            f"{location.url}: a prefix, not an object (end it with / to list it)",
            code="remote.missing",
        )
    return RemoteObject(location.url, int(info["size"]), location, fs)


def list_objects(url: str, *, every: bool = False) -> list[RemoteObject]:
    """The object `url` names, or under a prefix (`url` ending with /) its packages and
    batches (every object with `every`), sorted by key."""
    location = parse_remote(url)
    fs = filesystem(location.scheme)
    if not location.is_prefix:
        return [stat_object(location, fs)]
    with remote_errors(url, "listing"):
        found = fs.find(location.path, detail=True)
    objects = []
    for path, info in sorted(found.items()):
        if info.get("type") != "file":
            continue
        key = path.split("/", 1)[1] if "/" in path else ""
        if not every and not key.lower().endswith((".zip", fmt.BATCH_SUFFIX)):
            continue
        where = RemoteURL(location.scheme, location.bucket, key)
        objects.append(RemoteObject(where.url, int(info["size"]), where, fs))
    return objects
