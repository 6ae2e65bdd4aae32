"""Many packages at once: import from files, folders, globs, batches and object-store URLs;
export several simulations into a folder, a batch or a bucket.

Import takes each package on its own: validated completely (in the reader's worker), then
installed atomically, so one bad package never stops or spoils the others (unless
`fail_fast`). A package already in the workspace (same SHA-256, or the same simulation) is
skipped as a duplicate before it is validated. Every package gets one line in the report:
ok, duplicate or failed with its finding code. Object-store URLs load `apesim.remote` (the
`cloud` extra) only when one is given.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from apesim.errors import (
    ApeError,
    DuplicateImportError,
    PackageError,
    PackageFormatError,
    PackageLimitError,
    StorageError,
)
from apesim.package import format as fmt
from apesim.package.batch import (
    BatchWriter,
    OpenedBatch,
    batch_file,
    is_batch_name,
    mapped,
    open_batch,
)
from apesim.package.format import ReadLimits
from apesim.package.importer import import_package
from apesim.package.signature import SigningKey
from apesim.package.writer import ExportResult, created_moment, export_package
from apesim.progress import ProgressCallback
from apesim.remote.urls import is_remote
from apesim.safeload import read_at_most
from apesim.workspace.store import REGISTRY, SimulationRecord, Workspace
from apesim.workspace.trust import TRUST_FILE, load_trust, trust_map

OK, DUPLICATE, FAILED = "ok", "duplicate", "failed"


@dataclass(frozen=True)
class ImportItem:
    """One package's outcome: `status` ok, duplicate or failed; `code` the finding."""

    source: str
    status: str
    sim_id: str | None = None
    sha256: str | None = None
    code: str | None = None
    message: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "status": self.status,
            "sim_id": self.sim_id,
            "sha256": self.sha256,
            "code": self.code,
            "message": self.message,
        }


@dataclass
class BulkImport:
    """Every package's outcome, in the order given; `stopped` when --fail-fast ended it."""

    items: list[ImportItem] = field(default_factory=list)
    stopped: bool = False
    # Each batch read: its source, packages, and signatures over its index (verified; with
    # the name this workspace trusts the key as, or None).
    batches: list[dict[str, Any]] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(item.status == status for item in self.items)

    @property
    def ok(self) -> bool:
        """True when nothing failed (duplicates are not failures)."""
        return self.count(FAILED) == 0

    def to_json(self) -> dict[str, Any]:
        return {
            "imported": self.count(OK),
            "duplicates": self.count(DUPLICATE),
            "failed": self.count(FAILED),
            "stopped": self.stopped,
            "items": [item.to_json() for item in self.items],
            "batches": self.batches,
        }


@dataclass(frozen=True)
class _Pending:
    """A package to import: its bytes on demand, and what its container promised."""

    source: str
    load: Callable[[], bytes]
    sha256: str | None = None  # known before reading (a batch's index)
    expect_sim_id: str | None = None


Found = _Pending | ImportItem  # an ImportItem here is a source that failed before import


def _failed(source: str, exc: ApeError) -> ImportItem:
    return ImportItem(source, FAILED, code=exc.code, message=str(exc))


def _read_file(path: Path, limits: ReadLimits) -> bytes:
    try:
        size = path.stat().st_size
        data = b"" if size > limits.max_total_bytes else read_at_most(path, limits.max_total_bytes)
        if size > limits.max_total_bytes or len(data) > limits.max_total_bytes:
            raise PackageLimitError(
                f"{path}: {max(size, len(data)):,} bytes or more exceeds the limit of "
                f"{limits.max_total_bytes:,}",
                code="limit.total_size",
            )
        return data
    except OSError as exc:
        raise PackageFormatError(
            f"{path}: cannot read ({exc.strerror})", code="source.unreadable"
        ) from None


def _batch_members(
    stack: contextlib.ExitStack,
    shown: str,
    data: memoryview | None,
    path: Path | None,
    seen: list[OpenedBatch],
) -> Iterator[Found]:
    """The packages of a batch (its container and index checked first; a batch that fails
    them is one failed item)."""
    try:
        buf = data if data is not None else stack.enter_context(mapped(path))  # type: ignore[arg-type]
        batch = open_batch(buf, shown)
    except PackageError as exc:
        yield _failed(shown, exc)
        return
    seen.append(batch)
    for member in batch.index.members:
        yield _Pending(
            f"{shown}:{member.filename}",
            lambda m=member: batch.package(m),  # type: ignore[misc]
            member.sha256,
            member.sim_id,
        )


def _local(
    stack: contextlib.ExitStack, arg: str, limits: ReadLimits, seen: list[OpenedBatch]
) -> Iterator[Found]:
    path = Path(arg).expanduser()
    if path.is_dir():
        files = sorted(
            p
            for p in path.iterdir()
            if p.is_file() and p.suffix.lower() in (".zip", fmt.BATCH_SUFFIX)
        )
        if not files:
            yield ImportItem(
                arg, FAILED, code="source.empty", message=f"{arg}: no .zip or .apebatch file here"
            )
    elif path.exists():
        files = [path]
    elif any(c in arg for c in "*?["):
        files = [Path(p) for p in sorted(glob.glob(arg, recursive=True)) if Path(p).is_file()]
        if not files:
            yield ImportItem(arg, FAILED, code="source.missing", message=f"{arg}: no file matches")
    else:
        yield ImportItem(arg, FAILED, code="source.missing", message=f"{arg}: no such file")
        return
    for file in files:
        if is_batch_name(file.name):
            yield from _batch_members(stack, str(file), None, file, seen)
        else:
            yield _Pending(str(file), lambda f=file: _read_file(f, limits))  # type: ignore[misc]


def _remote(
    stack: contextlib.ExitStack, arg: str, limits: ReadLimits, seen: list[OpenedBatch]
) -> Iterator[Found]:
    from apesim.remote.objects import RemoteObject, list_objects

    try:
        objects = list_objects(arg)
    except ApeError as exc:
        yield _failed(arg, exc)
        return
    for obj in objects:
        if is_batch_name(obj.url):
            try:
                data = obj.download(limits.max_total_bytes * 64)
            except ApeError as exc:
                yield _failed(obj.url, exc)
                continue
            yield from _batch_members(stack, obj.url, memoryview(data), None, seen)
        else:

            def load(o: RemoteObject = obj) -> bytes:
                return o.download(limits.max_total_bytes)

            yield _Pending(obj.url, load)


def _uploaded(name: str, data: bytes, seen: list[OpenedBatch]) -> Iterator[Found]:
    """A file given as bytes (the app's uploads): a batch by its name, else a package."""
    if is_batch_name(name):
        yield from _batch_members(contextlib.ExitStack(), name, memoryview(data), None, seen)
    else:
        yield _Pending(name, lambda: data)


def sources(
    stack: contextlib.ExitStack,
    args: list[str],
    limits: ReadLimits,
    seen: list[OpenedBatch] | None = None,
) -> list[Found]:
    """Every package the arguments name, in order: files, folders (their .zip and .apebatch
    files), globs, batches (each package in it), object-store URLs (an object, or every
    package under a prefix ending in /)."""
    found: list[Found] = []
    seen = seen if seen is not None else []
    for arg in args:
        read = _remote if is_remote(arg) else _local
        found.extend(read(stack, arg, limits, seen))
    return found


@dataclass(frozen=True)
class _Policy:
    """What every package of one import is judged by."""

    limits: ReadLimits
    require_signature: bool | None = None  # None: the workspace's setting
    trust: Mapping[str, str] | None = None  # None: the workspace's trust list


def _batch_facts(batch: OpenedBatch, trusted: Mapping[str, str]) -> dict[str, Any]:
    return {
        "source": batch.name,
        "packages": len(batch.index.members),
        "signatures": [
            {**s.to_json(), "trusted_as": trusted.get(s.key_id)} for s in batch.signatures
        ],
    }


def _import_one(ws: Workspace, pending: _Pending, policy: _Policy) -> ImportItem:
    source, digest = pending.source, pending.sha256
    try:
        if digest is not None and (existing := ws.find_by_source(digest)) is not None:
            return _duplicate(source, digest, existing)
        data = pending.load()
        digest = hashlib.sha256(data).hexdigest()
        if (existing := ws.find_by_source(digest)) is not None:
            return _duplicate(source, digest, existing)
        record = import_package(
            ws,
            data,
            source_name=source,
            limits=policy.limits,
            expect_sim_id=pending.expect_sim_id,
            require_signature=policy.require_signature,
            trust=policy.trust,
        )
    except DuplicateImportError as exc:
        return ImportItem(
            source, DUPLICATE, exc.existing_sim_id, digest, "duplicate.simulation", str(exc)
        )
    except (PackageError, StorageError) as exc:
        return ImportItem(source, FAILED, None, digest, exc.code, str(exc))
    except ApeError as exc:  # e.g. a remote read that failed
        return ImportItem(source, FAILED, None, digest, exc.code, str(exc))
    return ImportItem(source, OK, record.sim_id, digest)


def _duplicate(source: str, digest: str, existing: SimulationRecord) -> ImportItem:
    return ImportItem(
        source,
        DUPLICATE,
        existing.sim_id,
        digest,
        "duplicate.package",
        f"{source}: already imported as {existing.sim_id} ({existing.name})",
    )


def import_many(
    ws: Workspace,
    args: list[str],
    *,
    fail_fast: bool = False,
    limits: ReadLimits | None = None,
    require_signature: bool | None = None,
    trust: Mapping[str, str] | None = None,
    uploads: Sequence[tuple[str, bytes]] = (),
    progress: ProgressCallback | None = None,
) -> BulkImport:
    """Import every package the arguments name (see `sources`), each on its own; go on past
    a bad one unless `fail_fast`. A full disk stops the run (it would fail every package).
    Each package's signatures are judged as a single import judges them (`trust`, default
    the workspace's list; `require_signature`, default the workspace's setting). `uploads`
    are files given as (name, bytes), after the paths: the app's uploads."""
    limits = limits or ReadLimits()
    policy = _Policy(limits, require_signature, trust)
    report = BulkImport()
    with contextlib.ExitStack() as stack:
        seen: list[OpenedBatch] = []
        found = sources(stack, args, limits, seen)
        for name, data in uploads:
            found.extend(_uploaded(name, data, seen))
        trusted = trust if trust is not None else trust_map(load_trust(ws.root / TRUST_FILE))
        report.batches = [_batch_facts(batch, trusted) for batch in seen]
        for done, item in enumerate(found, 1):
            if isinstance(item, _Pending):
                item = _import_one(ws, item, policy)
            report.items.append(item)
            if progress is not None:
                progress(done, len(found))
            if item.status == FAILED and (fail_fast or (item.code or "").startswith("storage.")):
                report.stopped = done < len(found)
                break
    return report


# -- export -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ExportedPackage:
    """One simulation's package as exported: where it went and its digest; `status`
    written (a new file or object), unchanged (the same bytes were there) or added (to a
    batch)."""

    sim_id: str
    file: str
    size: int
    sha256: str
    status: str

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


@dataclass(frozen=True)
class BulkExport:
    packages: list[ExportedPackage]
    batch: str | None = None  # the batch's path or URL, when one was written
    batch_size: int | None = None
    batch_sha256: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "packages": [p.to_json() for p in self.packages],
            "batch": None
            if self.batch is None
            else {"file": self.batch, "size": self.batch_size, "sha256": self.batch_sha256},
        }


def select_simulations(
    ws: Workspace,
    refs: list[str],
    *,
    every: bool = False,
    protocol_fingerprint: str | None = None,
    protocol_key: str | None = None,
) -> list[SimulationRecord]:
    """The simulations named (ids, id prefixes or names), all of them, or those run with a
    protocol (by fingerprint, or by name); each once, in the order given."""
    chosen: dict[str, SimulationRecord] = {}
    for ref in refs:
        record = ws.get(ref)
        chosen.setdefault(record.sim_id, record)
    if every or protocol_key is not None:
        for record in ws.list() if (ws.root / REGISTRY).is_file() else []:
            if (
                every
                or record.protocol_fingerprint == protocol_fingerprint
                or (record.protocol_name == protocol_key)
            ):
                chosen.setdefault(record.sim_id, record)
    if not chosen:
        what = f"with protocol {protocol_key}" if protocol_key else "in the workspace"
        raise ApeError(f"no simulation {what} to export (see `ape list`)", code="export.none")
    return list(chosen.values())


def _in_memory(
    ws: Workspace, sim_id: str, created: datetime | None, sign: Sequence[SigningKey]
) -> tuple[ExportResult, bytes]:
    sink = io.BytesIO()
    result = export_package(ws, sim_id, sink, created=created, sign=sign)
    return result, sink.getvalue()


def batch_bytes(
    ws: Workspace,
    records: list[SimulationRecord],
    *,
    created: datetime | None = None,
    sign: Sequence[SigningKey] = (),
) -> tuple[str, bytes]:
    """One batch of these simulations' packages, in memory: its default file name and bytes
    (for a download)."""
    moment = created_moment(created)
    sink = io.BytesIO()
    writer = BatchWriter(sink, moment)
    for record in records:
        result, data = _in_memory(ws, record.sim_id, moment, sign)
        writer.add(result.filename, record.sim_id, data)
    writer.finish(sign)
    return fmt.batch_filename(moment.strftime("%Y%m%d"), len(records)), sink.getvalue()


def export_many(
    ws: Workspace,
    records: list[SimulationRecord],
    dest: str,
    *,
    created: datetime | None = None,
    overwrite: bool = False,
    sign: Sequence[SigningKey] = (),
    progress: ProgressCallback | None = None,
) -> BulkExport:
    """Export simulations: into a folder (one package each), a `.apebatch` file, or an
    object store (`s3://bucket/prefix/` for one object each, `.../name.apebatch` for one
    batch object). With `sign`, every package is signed."""
    moment = created_moment(created)
    if is_remote(dest):
        from apesim.remote.publish import publish_many

        return publish_many(
            [(r.sim_id, *_in_memory(ws, r.sim_id, moment, sign)) for r in records],
            dest,
            moment,
            progress,
            sign,
        )
    if is_batch_name(dest):
        target = Path(dest).expanduser()
        exported = []
        with batch_file(target, overwrite=overwrite) as fh:
            writer = BatchWriter(fh, moment)
            for done, record in enumerate(records, 1):
                result, data = _in_memory(ws, record.sim_id, moment, sign)
                writer.add(result.filename, record.sim_id, data)
                exported.append(
                    ExportedPackage(
                        record.sim_id,
                        f"{target}:{result.filename}",
                        result.size,
                        result.sha256,
                        "added",
                    )
                )
                if progress is not None:
                    progress(done, len(records))
            writer.finish(sign)
            fh.seek(0)
            hasher, size = hashlib.sha256(), 0
            while chunk := fh.read(1 << 20):
                hasher.update(chunk)
                size += len(chunk)
        return BulkExport(exported, str(target), size, hasher.hexdigest())
    folder = Path(dest).expanduser()
    if len(records) > 1 and not folder.is_dir():
        raise ApeError(
            f"{dest}: several simulations go into an existing folder or a .apebatch file",
            code="export.target",
        )
    exported = []
    for done, record in enumerate(records, 1):
        result = export_package(
            ws, record.sim_id, dest, created=moment, overwrite=overwrite, sign=sign
        )
        exported.append(
            ExportedPackage(record.sim_id, str(result.path), result.size, result.sha256, "written")
        )
        if progress is not None:
            progress(done, len(records))
    return BulkExport(exported)
