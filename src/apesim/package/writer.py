"""Export a simulation from the workspace as a package (format 1.1), optionally signed
and encrypted.

The workspace's Parquet files go into the ZIP as they are (STORED: they are zstd already);
the small text files are deflated. With a fixed created date (argument or SOURCE_DATE_EPOCH)
two exports of the same simulation are byte-identical.

Export decodes no table: each file is read once, the Parquet files' row counts and columns
come from their footers (`footer.py`), the README's facts from the registry's record of the
simulation's metadata, and the manifest is plain JSON, so pyarrow and pydantic load only
when the preview has to be built (a table small enough for it).

A package written to a folder is first written to a partial file there (locked while its
export runs, named `.ape-export-<random>.zip.partial`), its `exported` audit event is recorded,
and only then is it renamed into place: an export that cannot record its event leaves no
package, and the partial files of an export that was killed are removed by the next export
into that folder. A full disk, read-only folder or missing permission is a `StorageError`,
and so is any other refusal of the target (`storage.unwritable`).

A package is archival: an export never replaces a different file of the same name (unless
asked to, `overwrite`); the same bytes exported again leave the file as it is. A file name
given without `.zip` gets it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import re
import shutil
import tempfile
import uuid
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

from apesim import __version__, audit, faults
from apesim.errors import ApeError, StorageError, WorkspaceError
from apesim.package import format as fmt
from apesim.package.arrow_schema import ArrowColumn
from apesim.package.bag import BAGIT_TXT, payload_manifest, tag_manifest
from apesim.package.crate import ro_crate_json
from apesim.package.datapackage import datapackage_json
from apesim.package.encryption import Encryption
from apesim.package.facts import PackageFacts
from apesim.package.footer import footer_facts
from apesim.package.preview import may_fit
from apesim.package.readme import render_readme
from apesim.progress import ProgressCallback
from apesim.results.metadata import iso_utc
from apesim.safeload import dump_json, load_json
from apesim.storage import storage_errors
from apesim.workspace import layout
from apesim.workspace.results import SimulationResults, load_simulation
from apesim.workspace.store import Workspace, lock_file, unlock_remove

if TYPE_CHECKING:
    from apesim.package.signature import SigningKey

_COPY_CHUNK = 1 << 20
_EXPORTED = "exported"

# The name of a partial package: recognisably APE's, so that only these are ever removed.
_PARTIAL = re.compile(r"\.ape-export-[0-9a-f]{32}\.zip\.partial")
_PARTIAL_ATTEMPTS = 100


@dataclass(frozen=True)
class ExportResult:
    filename: str
    size: int
    sha256: str
    path: Path | None  # None when written to a file-like object


def created_moment(created: datetime | None = None) -> datetime:
    """The package's created date: the argument, else SOURCE_DATE_EPOCH, else now (UTC)."""
    if created is None:
        epoch = os.environ.get("SOURCE_DATE_EPOCH")
        if epoch:
            try:
                created = datetime.fromtimestamp(int(epoch), UTC)
            except (ValueError, OverflowError, OSError):
                raise ApeError(f"SOURCE_DATE_EPOCH: not a Unix time: {epoch!r}") from None
        else:
            created = datetime.now(UTC)
    if created.tzinfo is None:
        raise ApeError("created: give a time zone-aware date")
    try:
        created = created.astimezone(UTC).replace(microsecond=0)
    except OverflowError:
        created = datetime.min.replace(tzinfo=UTC)  # before year 1: refused just below
    if not 1980 <= created.year <= 2107:
        raise ApeError("created: ZIP dates run from 1980 to 2107")
    return created


def packaged_trail(events: list[audit.AuditEvent]) -> list[audit.AuditEvent]:
    """The trail that goes into a package: without the trailing `exported` events, which
    describe copies of the package itself (so re-exporting gives the same bytes)."""
    end = len(events)
    while end and events[end - 1].action == _EXPORTED:
        end -= 1
    return events[:end]


def _read_folder(folder: Path) -> dict[str, bytes]:
    """The simulation folder's files that go into the package as they are, read once:
    hashed, their Parquet footers read, the preview built and the ZIP written from memory."""
    files = {}
    for entry, local in fmt.FOLDER_FILES.items():
        path = folder / local
        with storage_errors(path, "reading the simulation"):
            files[entry] = path.read_bytes()
    return files


def _parquet_facts(name: str, data: bytes) -> tuple[int, list[ArrowColumn]]:
    """A Parquet file's row count and columns, from its footer; from pyarrow only when the
    footer holds a type `arrow_schema` does not decode."""
    facts = footer_facts(data)
    if facts is not None and facts.columns is not None:
        return facts.rows, facts.columns
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(pa.BufferReader(data))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise WorkspaceError(f"{name}: the simulation's table is unreadable ({exc})") from None
    columns = [ArrowColumn(f.name, str(f.type), f.nullable) for f in parquet.schema_arrow]
    return int(parquet.metadata.num_rows), columns


def _preview(patients: bytes, rows: int, columns: list[ArrowColumn]) -> bytes | None:
    """The preview of the patients table, not built when its size rules it out (from the
    footer's row count and columns, before pyarrow is even loaded)."""
    if not may_fit(rows, columns):
        return None
    import pyarrow as pa
    import pyarrow.parquet as pq

    from apesim.package.preview import preview_csv

    return preview_csv(pq.ParquetFile(pa.BufferReader(patients)).read())


def _file_entry(data: bytes, facts: tuple[int, list[ArrowColumn]] | None = None) -> dict[str, Any]:
    """A file's entry in manifest.json (`manifest.FileEntry` as JSON)."""
    entry: dict[str, Any] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    if facts is not None:
        entry["rows"] = facts[0]
        entry["columns"] = [
            {"name": c.name, "type": c.type, "nullable": c.nullable} for c in facts[1]
        ]
    return entry


def manifest_json(
    *, created_date: str, created_by: str, sim_id: str, files: dict[str, dict[str, Any]]
) -> str:
    """manifest.json's text: what `manifest.Manifest.to_json` gives for these values (the
    reader's model; tests/package/test_writer.py holds them equal), without pydantic."""
    return dump_json(
        {
            "format": fmt.FORMAT_NAME,
            "package_version": fmt.PACKAGE_VERSION,
            "ape_version": __version__,
            "created_date": created_date,
            "created_by": created_by,
            "sim_id": sim_id,
            "files": dict(sorted(files.items())),
        }
    )


def estimate_package_size(ws: Workspace, ref: str) -> int:
    """A cheap estimate of the package's size in bytes (within a few percent)."""
    sim = load_simulation(ws, ref)
    folder = sim.folder
    size = sum(
        (folder / f).stat().st_size for f in (layout.PATIENTS, layout.VISITS, layout.METADATA)
    )
    text = sum(
        (folder / f).stat().st_size
        for f in (layout.PROTOCOL, layout.PARAMETERS, layout.SUMMARY, layout.AUDIT)
    )
    csv_bytes = sim.record.patients * 40  # about 40 bytes a patient row
    if csv_bytes < fmt.PREVIEW_MAX_BYTES:
        size += csv_bytes // 3  # deflate shrinks the CSV about threefold
    # + the self-description of format 1.1 (README, Data Package, crate, bag): about 7.5 kB
    return size + text // 3 + 4000 + 7500 + 100 * len(fmt.KNOWN_FILES)


@dataclass(frozen=True)
class PreparedPackage:
    """A full package ready to be written: every entry's bytes, the manifest's included."""

    filename: str
    moment: datetime
    manifest: bytes
    contents: dict[str, bytes]  # entry -> bytes

    def write_zip(self, target: BinaryIO, progress: ProgressCallback | None = None) -> None:
        """The ZIP: entries in the format's order, Parquet STORED, text deflated (level 9),
        every entry dated with the package's created date and mode 0644."""
        write_entries(target, self.contents, fmt.ENTRY_ORDER, self.moment, progress)


def write_entries(
    target: BinaryIO,
    contents: dict[str, bytes],
    order: tuple[str, ...],
    moment: datetime,
    progress: ProgressCallback | None = None,
) -> None:
    """A package's ZIP of `contents` in `order` (names not in `contents` are left out):
    Parquet STORED, text deflated, reproducible bytes."""
    total = sum(len(data) for data in contents.values())
    done = 0
    with zipfile.ZipFile(target, "w", allowZip64=False) as zf:
        for entry in order:
            if entry not in contents:
                continue
            data = contents[entry]
            info = zipfile.ZipInfo(entry, date_time=moment.timetuple()[:6])
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            if entry.endswith(".parquet"):
                info.compress_type = zipfile.ZIP_STORED
                info.file_size = len(data)
                view = memoryview(data)
                with zf.open(info, "w") as out:
                    for at in range(0, len(view), _COPY_CHUNK):
                        chunk = view[at : at + _COPY_CHUNK]
                        out.write(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, total)
            else:
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, data, compresslevel=9)
                done += len(data)
                if progress is not None:
                    progress(done, total)
            faults.point("export.writing")


def prepare_package(sim: SimulationResults, moment: datetime, created_by: str) -> PreparedPackage:
    """The full package of a stored simulation at the created date `moment`."""
    filename = fmt.package_filename(sim.record.sim_id, moment.strftime("%Y%m%d"))
    sim.require_tables()  # a summary-only import has no tables to package
    events = packaged_trail(sim.audit_events())
    contents = _read_folder(sim.folder)
    tables = {
        entry: _parquet_facts(entry, data)
        for entry, data in contents.items()
        if entry in fmt.PARQUET_FILES
    }
    preview = _preview(contents[fmt.PATIENTS], *tables[fmt.PATIENTS])
    files = {entry: _file_entry(data, tables.get(entry)) for entry, data in contents.items()}
    contents[fmt.AUDIT] = audit.serialise(events)
    if preview is not None:
        contents[fmt.PREVIEW] = preview
    files.update(
        (entry, _file_entry(contents[entry]))
        for entry in (fmt.AUDIT, fmt.PREVIEW)
        if entry in contents
    )

    def facts() -> PackageFacts:
        return PackageFacts(
            metadata=sim.record.metadata(),
            summary=load_json(contents[fmt.SUMMARY]),
            events=events,
            created=iso_utc(moment),
            created_by=created_by,
            ape_version=__version__,
            files=dict(files),
        )

    # Format 1.1's self-description, each made from the files before it (as the reader
    # makes them again on import).
    for entry, make in (
        (fmt.README, lambda: render_readme(facts()).encode("utf-8")),
        (fmt.DATAPACKAGE, lambda: datapackage_json(facts())),
        (fmt.BAGIT, lambda: BAGIT_TXT),
        (fmt.BAG_MANIFEST, lambda: payload_manifest(files)),
        (fmt.RO_CRATE, lambda: ro_crate_json(facts())),
        (fmt.BAG_TAGMANIFEST, lambda: tag_manifest(files)),
    ):
        contents[entry] = make()
        files[entry] = _file_entry(contents[entry])
    manifest = manifest_json(
        created_date=iso_utc(moment),
        created_by=created_by,
        sim_id=sim.record.sim_id,
        files=files,
    ).encode("utf-8")
    contents[fmt.MANIFEST] = manifest
    return PreparedPackage(filename, moment, manifest, contents)


def exported_details(result: ExportResult, moment: datetime, manifest: bytes) -> dict[str, object]:
    """The `exported` event's details: which file, its SHA-256 and its manifest's."""
    return {
        "package_sha256": result.sha256,
        "package_file": result.filename,
        "package_bytes": result.size,
        "created_date": iso_utc(moment),
        "manifest_sha256": hashlib.sha256(manifest).hexdigest(),
    }


def sign_package(prepared: PreparedPackage, keys: Sequence[SigningKey]) -> list[str]:
    """Sign the prepared package's manifest with each key (format 1.1): the signature
    members are added to its contents; returns their names (signed at the created date, so
    a signed export is reproducible too)."""
    if not keys:
        return []
    from apesim.package.signature import sign_manifest  # cryptography loads only to sign

    manifest = load_json(prepared.manifest)
    names = []
    for key in keys:
        name, data = sign_manifest(manifest, key.private, key.name, iso_utc(prepared.moment))
        prepared.contents[name] = data
        names.append(name)
    return sorted(names)


def export_package(
    ws: Workspace,
    ref: str,
    dest: Path | str | BinaryIO,
    *,
    created: datetime | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    sign: Sequence[SigningKey] = (),
    encrypt: Encryption | None = None,
    beside: bool = False,
) -> ExportResult:
    """Write the package of simulation `ref` to a directory, a file path or a binary file.

    Nothing is left behind on failure: a file is written under a temporary name and renamed.
    A path without the `.zip` suffix gets it. A different file already at the target is
    refused (`export.exists`) unless `overwrite`; the very same bytes are left in place.
    Each key of `sign` signs the manifest (format 1.1, `signatures/`); with `beside` the
    first signature is also written next to the package (`<file>.dsse.json`). With
    `encrypt` the signed package is written as one age file, `<name>.zip.age`.
    """
    sim = load_simulation(ws, ref)
    prepared = prepare_package(sim, created_moment(created), audit.current_user())
    signatures = sign_package(prepared, sign)
    order = (*fmt.ENTRY_ORDER, *signatures)  # signatures last, after what they sign
    filename = prepared.filename + (fmt.ENCRYPTED_SUFFIX if encrypt is not None else "")

    def write_zip(target: BinaryIO) -> None:
        write_entries(target, prepared.contents, order, prepared.moment, progress)

    def write_encrypted(target: BinaryIO) -> None:
        assert encrypt is not None
        from apesim.package.encryption import encrypt as encrypt_package

        plain = io.BytesIO()
        write_zip(plain)
        plain.seek(0)
        encrypt_package(plain, target, encrypt)

    def record(result: ExportResult) -> None:
        details = exported_details(result, prepared.moment, prepared.manifest)
        if signatures:
            details["signed_by"] = [name.split("/")[1].split(".")[0] for name in signatures]
        if encrypt is not None:
            details["encrypted_for"] = (
                "passphrase" if encrypt.passphrase else list(encrypt.recipients)
            )
        ws.append_audit(sim.record, _EXPORTED, details)

    result = write_target(
        dest,
        filename,
        write_zip if encrypt is None else write_encrypted,
        record,
        overwrite=overwrite,
        encrypted=encrypt is not None,
    )
    if beside and signatures and result.path is not None:
        first = prepared.contents[signatures[0]]
        with storage_errors(result.path.parent, "writing the signature beside the package"):
            _write_beside(result.path.with_name(result.path.name + fmt.SIGNATURE_SUFFIX), first)
    return result


def _write_beside(path: Path, data: bytes) -> None:
    """The signature beside the package: replaced atomically (it is small)."""
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        partial.write_bytes(data)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _partial_file(folder: Path) -> tuple[Path, int]:
    """A new partial package file in `folder` and its descriptor, holding the file's lock
    (released when the descriptor is closed, or the process dies)."""
    for _ in range(_PARTIAL_ATTEMPTS):
        path = folder / f".ape-export-{uuid.uuid4().hex}.zip.partial"
        fd = lock_file(path, create=True)
        if fd is not None:
            return path, fd
        # Another export's sweep removed the new file between our open and our lock.
    raise WorkspaceError(f"{folder}: could not lock a partial package file; try again")


def _remove_stale_partials(folder: Path) -> None:
    """Remove the partial packages in `folder` that exports killed before they finished:
    only files named as ours, and only those whose lock no live export holds."""
    with contextlib.suppress(OSError):
        for name in os.listdir(folder):
            if not _PARTIAL.fullmatch(name):
                continue
            path = folder / name
            try:
                fd = lock_file(path, create=False)
            except OSError:
                continue  # not ours to open (another user's, a read-only folder)
            if fd is None:
                continue  # an export in progress, or removed already
            unlock_remove(path, fd)


def _fsync_folder(folder: Path) -> None:
    """Make a rename in `folder` durable (best effort: some file systems refuse)."""
    with contextlib.suppress(OSError):
        fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _digest(fh: BinaryIO) -> tuple[int, str]:
    """The size and SHA-256 of everything in the open file `fh`."""
    fh.seek(0)
    hasher = hashlib.sha256()
    size = 0
    while chunk := fh.read(_COPY_CHUNK):
        hasher.update(chunk)
        size += len(chunk)
    return size, hasher.hexdigest()


def _same_bytes(path: Path, size: int, digest: str) -> bool:
    """Whether the file at `path` holds exactly `size` bytes hashing to `digest`."""
    try:
        if path.stat().st_size != size:
            return False
        with path.open("rb") as fh:
            return _digest(fh) == (size, digest)
    except OSError:
        return False


def _exists_error(target: Path) -> ApeError:
    return ApeError(
        f"{target}: a different file of that name exists already; export to another name "
        "(-o FILE.zip) or replace it (--force)",
        code="export.exists",
    )


def _place(partial: Path, target: Path, size: int, digest: str, overwrite: bool) -> None:
    """Give the finished partial file the name `target`: replacing what is there only with
    `overwrite`; else never (a hard link does not replace), and the same bytes already there
    are kept as they are."""
    if overwrite:
        os.replace(partial, target)
        return
    try:
        os.link(partial, target)
    except FileExistsError:
        if not _same_bytes(target, size, digest):
            raise _exists_error(target) from None
    except OSError:  # a file system without hard links: check, then rename
        if target.exists():
            if not _same_bytes(target, size, digest):
                raise _exists_error(target) from None
        else:
            os.replace(partial, target)
    partial.unlink(missing_ok=True)


def _target_path(dest: Path | str, filename: str, encrypted: bool = False) -> Path:
    """The package file `dest` names: in a directory, the package's own name; a file name
    without `.zip` gets it (`.zip.age` when encrypted)."""
    target = Path(dest)
    if str(dest).endswith(("/", os.sep)) and not target.is_dir():
        raise WorkspaceError(f"{dest}: no such directory to export into")
    if target.is_dir():
        return target / filename
    name = target.name
    if encrypted and name.lower().endswith(fmt.ENCRYPTED_SUFFIX):
        name = name[: -len(fmt.ENCRYPTED_SUFFIX)]
    if not name.lower().endswith(".zip"):
        name += ".zip"
    return target.with_name(name + fmt.ENCRYPTED_SUFFIX if encrypted else name)


def write_target(
    dest: Path | str | BinaryIO,
    filename: str,
    write_zip: Callable[[BinaryIO], None],
    record: Callable[[ExportResult], None],
    *,
    overwrite: bool = False,
    encrypted: bool = False,
) -> ExportResult:
    """Write the package to `dest` and `record` it: in a folder, under a partial name that is
    renamed only once the package is recorded (removed if anything fails)."""
    if isinstance(dest, (str, Path)):
        target = _target_path(dest, filename, encrypted)
        folder = target.parent
        if not folder.is_dir():
            raise WorkspaceError(f"{folder}: no such directory to export into")
        if target.is_dir():
            raise _exists_error(target)
        try:
            with storage_errors(folder, f"writing the package {target.name}"):
                _remove_stale_partials(folder)
                partial, fd = _partial_file(folder)
                # The descriptor holds the partial file's lock until after the rename.
                with os.fdopen(fd, "w+b") as fh:
                    try:
                        write_zip(fh)
                        fh.flush()
                        os.fsync(fh.fileno())
                        faults.point("export.written")
                        size, digest = _digest(fh)
                        if (
                            not overwrite
                            and target.exists()
                            and not _same_bytes(target, size, digest)
                        ):
                            raise _exists_error(target)
                        result = ExportResult(target.name, size, digest, target)
                        record(result)
                        faults.point("export.recorded")
                        if hasattr(os, "fchmod"):  # POSIX: a package is for sharing
                            os.fchmod(fh.fileno(), 0o666 & ~_umask())
                        _place(partial, target, size, digest, overwrite)
                    except BaseException:
                        partial.unlink(missing_ok=True)
                        raise
                _fsync_folder(folder)
        except OSError as exc:  # any other refusal of the user's target: theirs to fix
            raise StorageError(
                f"{target}: cannot write the package there "
                f"({exc.strerror or type(exc).__name__}); choose another location",
                code="storage.unwritable",
            ) from exc
        return result
    if not (dest.seekable() if hasattr(dest, "seekable") else False):
        with (
            storage_errors(tempfile.gettempdir(), "spooling the package"),
            tempfile.TemporaryFile() as spool,
        ):
            result = write_target(spool, filename, write_zip, record)
            spool.seek(0)
            shutil.copyfileobj(spool, dest)
            return result
    with storage_errors(getattr(dest, "name", "the output"), "writing the package"):
        start = dest.tell()
        write_zip(dest)
        end = dest.tell()
        dest.seek(start)
        hasher = hashlib.sha256()
        remaining = end - start
        while remaining:
            chunk = dest.read(min(_COPY_CHUNK, remaining))
            if not chunk:
                break
            hasher.update(chunk)
            remaining -= len(chunk)
        dest.seek(end)
    result = ExportResult(filename, end - start, hasher.hexdigest(), None)
    record(result)
    return result
