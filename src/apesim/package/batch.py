"""Batches (`.apebatch`): many packages in one file, each kept byte for byte.

A batch is a ZIP whose entries are all STORED: the packages under `packages/`, then
`index.json`, which lists each package's entry name, sim id, size and SHA-256. The index is
to a batch what the manifest is to a package: its canonical form (RFC 8785) is what a
signature over the batch signs, and through the digests it lists, that covers every byte of
every package. docs/package-format.md ("Batches") is the spec; format.py holds its names.

Reading is strict: the container goes through `safezip` (tiling, header agreement, no ZIP64),
names must be the index, packages or reserved signature entries, and the index must list
exactly the packages present with their sizes. A package's SHA-256 is checked when it is
taken out (`OpenedBatch.package`), so one damaged package fails alone.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import mmap
import os
import tempfile
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from apesim import __version__, audit
from apesim.errors import (
    ApeError,
    PackageError,
    PackageFormatError,
    PackageIntegrityError,
    PackageVersionError,
    StorageError,
    WorkspaceError,
)
from apesim.package import format as fmt
from apesim.package.content import strict_json
from apesim.package.safezip import STORED, ZipEntry, read_directory
from apesim.package.signature import (
    PackageSignature,
    SigningKey,
    sign_manifest,
    verify_envelope,
)
from apesim.results.metadata import iso_utc
from apesim.storage import storage_errors


@dataclass(frozen=True)
class BatchMember:
    """One package of a batch, as the index lists it."""

    name: str  # the entry name, `packages/<file>.zip`
    sim_id: str
    size: int
    sha256: str

    @property
    def filename(self) -> str:
        return self.name.removeprefix(fmt.BATCH_PACKAGES)


@dataclass(frozen=True)
class BatchIndex:
    """`index.json`: who wrote the batch, when, and every package with its digest."""

    created_date: str
    created_by: str
    ape_version: str
    members: tuple[BatchMember, ...]
    batch_version: str = fmt.BATCH_VERSION

    def to_json(self) -> dict[str, Any]:
        return {
            "format": fmt.BATCH_FORMAT_NAME,
            "batch_version": self.batch_version,
            "ape_version": self.ape_version,
            "created_date": self.created_date,
            "created_by": self.created_by,
            "packages": [
                {"name": m.name, "sim_id": m.sim_id, "size": m.size, "sha256": m.sha256}
                for m in self.members
            ],
        }

    def signed_view(self) -> dict[str, Any]:
        """What a batch signature signs, in the package signature scheme's shape: the index
        with an empty file list, so the statement's one subject is the SHA-256 of the
        index's canonical JSON (RFC 8785), which lists every package's SHA-256."""
        return {**self.to_json(), "files": {}}

    def serialise(self) -> bytes:
        """As written: sorted keys, two-space indentation, a final newline (ASCII only)."""
        return (json.dumps(self.to_json(), indent=2, sort_keys=True) + "\n").encode("ascii")


# -- writing ----------------------------------------------------------------------------------


class BatchWriter:
    """Writes a batch into an open binary file, one package at a time (nothing is held in
    memory but the package being added); `finish` appends the index."""

    def __init__(self, out: BinaryIO, created: datetime) -> None:
        self._zip = zipfile.ZipFile(out, "w", allowZip64=False)
        self._created = created
        self._members: list[BatchMember] = []
        self._names: set[str] = set()

    def _add(self, name: str, data: bytes | memoryview) -> None:
        info = zipfile.ZipInfo(name, date_time=self._created.timetuple()[:6])
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_STORED
        try:
            self._zip.writestr(info, bytes(data))
        except zipfile.LargeZipFile:
            raise ApeError(
                f"the batch would pass 4 GiB at {name} (batches are ZIP files without ZIP64); "
                "export into a folder, or into several batches",
                code="batch.too_large",
            ) from None

    def add(self, filename: str, sim_id: str, data: bytes | memoryview) -> BatchMember:
        """Add one package under `packages/<filename>`."""
        name = fmt.BATCH_PACKAGES + filename
        if not fmt.BATCH_MEMBER_NAME.fullmatch(name) or name.lower() in self._names:
            raise ApeError(f"{filename}: not a name a batch can hold twice or at all")
        if len(self._members) >= fmt.BATCH_MAX_MEMBERS:
            raise ApeError(
                f"a batch holds at most {fmt.BATCH_MAX_MEMBERS:,} packages", code="batch.too_large"
            )
        self._add(name, data)
        member = BatchMember(name, sim_id, len(data), hashlib.sha256(data).hexdigest())
        self._members.append(member)
        self._names.add(name.lower())
        return member

    def finish(self, sign: Sequence[SigningKey] = ()) -> BatchIndex:
        """Append the index and, for each key in `sign`, a signature over it."""
        index = BatchIndex(
            created_date=iso_utc(self._created),
            created_by=audit.current_user(),
            ape_version=__version__,
            members=tuple(self._members),
        )
        self._add(fmt.BATCH_INDEX, index.serialise())
        for key in sign:
            name, envelope = sign_manifest(
                index.signed_view(), key.private, key.name, index.created_date
            )
            self._add(name, envelope)
        self._zip.close()
        return index


@contextlib.contextmanager
def batch_file(target: Path, *, overwrite: bool = False) -> Iterator[BinaryIO]:
    """An open partial file beside `target` that becomes `target` when the block ends
    without error (never replacing a different file unless `overwrite`; the same bytes
    already there are left as they are), and is removed otherwise."""
    folder = target.parent
    if not folder.is_dir():
        raise StorageError(f"{folder}: no such directory to write the batch into")
    if target.is_dir():  # not "a different file" that --force would replace: never replaced
        raise WorkspaceError(f"{target}: is a folder; name the batch file (NAME.apebatch)")
    with storage_errors(folder, f"writing the batch {target.name}"):
        fd, partial_name = tempfile.mkstemp(dir=folder, prefix=".ape-batch-", suffix=".partial")
        partial = Path(partial_name)
        try:
            with os.fdopen(fd, "w+b") as fh:
                yield fh
                fh.flush()
                os.fsync(fh.fileno())
            if hasattr(os, "chmod"):
                os.chmod(partial, 0o644)
            _place(partial, target, overwrite)
        finally:
            partial.unlink(missing_ok=True)


def _digest(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def _place(partial: Path, target: Path, overwrite: bool) -> None:
    if overwrite:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)  # atomic, and never replaces
        return
    except FileExistsError:
        pass
    except OSError:  # no hard links here: check, then rename
        if not target.exists():
            os.replace(partial, target)
            return
    if target.is_file() and _digest(target) == _digest(partial):
        return  # the very same batch is there already
    raise ApeError(
        f"{target}: a different file of that name exists already; choose another name or "
        "replace it (--force)",
        code="export.exists",
    )


# -- reading ----------------------------------------------------------------------------------


def _bad(name: str, code: str, message: str) -> PackageFormatError:
    return PackageFormatError(f"{name}: {message}", code=code)


def _parse_index(shown: str, raw: Any) -> BatchIndex:
    """The index's JSON as a `BatchIndex`, or a `PackageError` naming the field."""
    if not isinstance(raw, dict):
        raise _bad(shown, "batch.index", "index.json is not a JSON object")
    if raw.get("format") != fmt.BATCH_FORMAT_NAME:
        raise _bad(shown, "batch.index", f"index.json: format is not {fmt.BATCH_FORMAT_NAME!r}")
    version = raw.get("batch_version")
    match = fmt.VERSION_PATTERN.fullmatch(version) if isinstance(version, str) else None
    if match is None:
        raise _bad(shown, "batch.index", "index.json: batch_version is not MAJOR.MINOR")
    if int(match.group(1)) != fmt.BATCH_MAJOR:
        raise PackageVersionError(
            f"{shown}: batch format {version} needs a newer APE (this one reads 1.x)",
            code="version.newer_major",
        )
    for key in ("created_date", "created_by", "ape_version"):
        if not isinstance(raw.get(key), str):
            raise _bad(shown, "batch.index", f"index.json: {key} is not a string")
    packages = raw.get("packages")
    if not isinstance(packages, list):
        raise _bad(shown, "batch.index", "index.json: packages is not a list")
    members = []
    for i, item in enumerate(packages):
        where = f"index.json: packages[{i}]"
        if not isinstance(item, dict):
            raise _bad(shown, "batch.index", f"{where} is not an object")
        name, sim_id, size, digest = (item.get(k) for k in ("name", "sim_id", "size", "sha256"))
        if not isinstance(name, str) or not fmt.BATCH_MEMBER_NAME.fullmatch(name):
            raise _bad(shown, "batch.index", f"{where}.name is not packages/<file>.zip")
        if not isinstance(sim_id, str) or not 0 < len(sim_id) <= 100:
            raise _bad(shown, "batch.index", f"{where}.sim_id is not a simulation id")
        if type(size) is not int or size < 0:
            raise _bad(shown, "batch.index", f"{where}.size is not a whole number of bytes")
        if not isinstance(digest, str) or not fmt.SHA256_PATTERN.fullmatch(digest):
            raise _bad(shown, "batch.index", f"{where}.sha256 is not a lower-case SHA-256")
        members.append(BatchMember(name, sim_id, size, digest))
    return BatchIndex(
        created_date=raw["created_date"],
        created_by=raw["created_by"],
        ape_version=raw["ape_version"],
        members=tuple(members),
        batch_version=str(version),
    )


@dataclass(frozen=True)
class OpenedBatch:
    """A batch whose container and index passed; take packages out with `package`."""

    name: str
    index: BatchIndex
    signatures: tuple[PackageSignature, ...]  # each verified against the index
    _buf: memoryview
    _entries: dict[str, ZipEntry]

    def package(self, member: BatchMember) -> bytes:
        """A package's bytes, after checking them against the index's SHA-256
        (`batch.checksum`: this package fails, the others can still be read)."""
        entry = self._entries[member.name]
        data = bytes(self._buf[entry.data_offset : entry.data_offset + entry.size])
        if hashlib.sha256(data).hexdigest() != member.sha256:
            raise PackageIntegrityError(
                f"{self.name}: {member.name} does not match the SHA-256 in index.json",
                code="batch.checksum",
            )
        return data


def open_batch(buf: memoryview, name: str) -> OpenedBatch:
    """Check a batch's container and index (not yet its packages' digests)."""
    try:
        entries = read_directory(buf, fmt.BATCH_MAX_MEMBERS + 64)
    except PackageError as exc:
        raise type(exc)(f"{name}: {exc}", code=exc.code) from None
    by_name: dict[str, ZipEntry] = {}
    signatures = []
    for entry in entries:
        if entry.name.lower() in {n.lower() for n in by_name}:
            raise _bad(name, "batch.names", f"{entry.name!r} appears twice")
        if entry.method != STORED:
            raise _bad(name, "batch.method", f"{entry.name}: batch entries are STORED")
        if fmt.SIGNATURE_NAME.fullmatch(entry.name):
            signatures.append(entry.name)
        elif entry.name != fmt.BATCH_INDEX and not fmt.BATCH_MEMBER_NAME.fullmatch(entry.name):
            raise _bad(name, "batch.names", f"{entry.name!r} has no place in a batch")
        by_name[entry.name] = entry
    index_entry = by_name.get(fmt.BATCH_INDEX)
    if index_entry is None:
        raise _bad(name, "batch.index", "no index.json: not an APE batch")
    if index_entry.size > fmt.BATCH_MAX_INDEX_BYTES:
        raise _bad(name, "batch.index", "index.json is larger than 16 MiB")
    raw_index = buf[index_entry.data_offset : index_entry.data_offset + index_entry.size]
    index = _parse_index(name, strict_json(f"{name}: index.json", raw_index, fmt.ReadLimits()))
    listed = {m.name: m for m in index.members}
    if len(listed) != len(index.members):
        raise _bad(name, "batch.index", "index.json lists a package twice")
    for member in index.members:
        found = by_name.get(member.name)
        if found is None:
            raise _bad(
                name, "batch.missing", f"{member.name} is in index.json but not in the batch"
            )
        if found.size != member.size:
            raise PackageIntegrityError(
                f"{name}: {member.name} holds {found.size:,} bytes, index.json says "
                f"{member.size:,}",
                code="batch.size",
            )
    for entry_name in by_name:
        if fmt.BATCH_MEMBER_NAME.fullmatch(entry_name) and entry_name not in listed:
            raise _bad(name, "batch.unlisted", f"{entry_name} is not listed in index.json")
    return OpenedBatch(name, index, _verified(name, buf, by_name, signatures, index), buf, by_name)


def _verified(
    name: str,
    buf: memoryview,
    entries: dict[str, ZipEntry],
    members: list[str],
    index: BatchIndex,
) -> tuple[PackageSignature, ...]:
    """Every signature entry verified against the index (the package scheme's checks: one
    that does not verify refuses the batch, naming it)."""
    if len(members) > fmt.MAX_SIGNATURES:
        raise _bad(
            name, "limit.signatures", f"{len(members)} signatures; at most {fmt.MAX_SIGNATURES}"
        )
    found = []
    for member in members:
        entry = entries[member]
        if entry.size > fmt.SIGNATURE_MAX_BYTES:
            raise _bad(name, "limit.file_size", f"{member} is too large for a signature")
        data = bytes(buf[entry.data_offset : entry.data_offset + entry.size])
        try:
            found.append(verify_envelope(member, data, index.signed_view()))
        except PackageError as exc:
            raise type(exc)(f"{name}: {exc}", code=exc.code) from None
    return tuple(found)


@contextlib.contextmanager
def mapped(path: Path) -> Iterator[memoryview]:
    """A file's bytes, memory-mapped read-only (a batch may be larger than memory)."""
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise PackageFormatError(
            f"{path}: cannot read ({exc.strerror})", code="source.unreadable"
        ) from None
    with fh:
        if os.fstat(fh.fileno()).st_size == 0:
            yield memoryview(b"")
            return
        with (
            mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) as mapping,
            memoryview(mapping) as view,
        ):
            yield view


def is_batch_name(name: str) -> bool:
    """Whether a file name says "batch" (`.apebatch`)."""
    return name.lower().endswith(fmt.BATCH_SUFFIX)
