"""Object-store URLs (`s3://bucket/key`, `gs://bucket/key`): recognised and split without
importing any storage library, so `ape run` and `ape list` never load one."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apesim.errors import ApeError

SCHEMES = ("s3", "gs")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]$")


def is_remote(text: object) -> bool:
    """Whether `text` is an object-store URL APE reads and writes."""
    return isinstance(text, str) and text.lower().startswith(tuple(f"{s}://" for s in SCHEMES))


@dataclass(frozen=True)
class RemoteURL:
    """A bucket and a key (a prefix when it is empty or ends with /)."""

    scheme: str
    bucket: str
    key: str

    @property
    def url(self) -> str:
        return f"{self.scheme}://{self.bucket}/{self.key}"

    @property
    def path(self) -> str:
        """The bucket/key path fsspec takes."""
        return f"{self.bucket}/{self.key}"

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def child(self, name: str) -> RemoteURL:
        prefix = self.key if self.is_prefix else self.key + "/"
        return RemoteURL(self.scheme, self.bucket, prefix + name)


def parse_remote(text: str) -> RemoteURL:
    """Split an `s3://` or `gs://` URL; a bucket name outside the stores' rules is refused."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme.lower() not in SCHEMES:
        raise ApeError(f"{text}: not an s3:// or gs:// URL", code="remote.url")
    bucket, _, key = rest.partition("/")
    if not _BUCKET.fullmatch(bucket):
        raise ApeError(f"{text}: {bucket!r} is not a bucket name", code="remote.url")
    if any(part in (".", "..") for part in key.split("/")[:-1]) or "\\" in key:
        raise ApeError(f"{text}: the key may not hold '.', '..' or '\\' parts", code="remote.url")
    return RemoteURL(scheme.lower(), bucket, key)
