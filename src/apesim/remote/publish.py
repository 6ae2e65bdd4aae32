"""Publishing packages and batches to an object store: once, create-only, never over a
different object.

Each object is written by one conditional request (`mode="create"`: S3 `If-None-Match: *`,
GCS `ifGenerationMatch=0`), so it appears whole or not at all and a concurrent writer of
the same name cannot be overwritten. Its SHA-256 is recorded in the object's metadata
(`ape-sha256`). Publishing bytes that are already there is a no-op ("unchanged"); a
different object under the name is refused (`remote.exists`). "The same" is decided by
downloading the object and hashing it ourselves: an ETag is not a content hash.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from apesim.bulk import BulkExport, ExportedPackage
from apesim.errors import ApeError, RemoteError
from apesim.package.batch import BatchWriter, is_batch_name
from apesim.package.signature import SigningKey
from apesim.package.writer import ExportResult
from apesim.progress import ProgressCallback
from apesim.remote.objects import filesystem, remote_errors, stat_object
from apesim.remote.urls import RemoteURL, parse_remote

SHA256_KEY = "ape-sha256"
UPLOADED, UNCHANGED = "uploaded", "unchanged"


def _same(location: RemoteURL, fs: Any, data: bytes, digest: str) -> bool:
    obj = stat_object(location, fs)
    if obj.size != len(data):
        return False
    return hashlib.sha256(obj.download(obj.size)).hexdigest() == digest


def _exists(location: RemoteURL) -> RemoteError:
    return RemoteError(
        f"{location.url}: a different object of that name exists already; objects are "
        "never replaced: publish under another prefix",
        code="remote.exists",
    )


def publish(location: RemoteURL, data: bytes) -> tuple[str, str]:
    """Write `data` at `location` unless it is there already; returns the status
    (uploaded or unchanged) and the SHA-256."""
    fs = filesystem(location.scheme)
    digest = hashlib.sha256(data).hexdigest()
    with remote_errors(location.url, "checking for the object"):
        present = fs.exists(location.path)
    if present:
        if _same(location, fs, data, digest):
            return UNCHANGED, digest
        raise _exists(location)
    meta = {SHA256_KEY: digest}
    extra = {"Metadata": meta} if location.scheme == "s3" else {"metadata": meta}
    try:
        with remote_errors(location.url, "uploading"):
            fs.pipe_file(location.path, data, mode="create", **extra)
    except FileExistsError:  # another writer got there between our look and our write
        if _same(location, fs, data, digest):
            return UNCHANGED, digest
        raise _exists(location) from None
    written = stat_object(location, fs)
    if written.size != len(data):
        raise RemoteError(
            f"{location.url}: the store holds {written.size:,} bytes, {len(data):,} were sent",
            code="remote.error",
        )
    return UPLOADED, digest


def publish_many(
    exported: list[tuple[str, ExportResult, bytes]],
    dest: str,
    moment: datetime,
    progress: ProgressCallback | None = None,
    sign: Sequence[SigningKey] = (),
) -> BulkExport:
    """Packages under a prefix (one object each, named as in a folder), or, when `dest`
    ends with `.apebatch`, one batch object holding them all."""
    location = parse_remote(dest)
    if is_batch_name(location.key):
        with tempfile.TemporaryFile() as spool:
            writer = BatchWriter(spool, moment)
            for sim_id, result, data in exported:
                writer.add(result.filename, sim_id, data)
            writer.finish(sign)
            spool.seek(0)
            batch = spool.read()
        status, digest = publish(location, batch)
        packages = [
            ExportedPackage(sim_id, f"{location.url}:{r.filename}", r.size, r.sha256, "added")
            for sim_id, r, _ in exported
        ]
        if progress is not None:
            progress(len(exported), len(exported))
        return BulkExport(packages, location.url, len(batch), digest)
    if not location.is_prefix and not (len(exported) == 1 and location.key.endswith(".zip")):
        raise ApeError(
            f"{dest}: end the URL with / to publish under a prefix (or name one .zip object)",
            code="export.target",
        )
    packages = []
    for done, (sim_id, result, data) in enumerate(exported, 1):
        target = location if not location.is_prefix else location.child(result.filename)
        status, digest = publish(target, data)
        packages.append(ExportedPackage(sim_id, target.url, len(data), digest, status))
        if progress is not None:
            progress(done, len(exported))
    return BulkExport(packages)
