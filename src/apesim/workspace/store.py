"""The workspace on disk: one folder per simulation and a SQLite registry listing them.

Folders are named by the workspace (a random hex id), never by anything a user or a package
supplies. A simulation is installed atomically: it is written in `.staging/`, renamed into
`sims/`, and its registry row is committed last; whatever is not in the registry is removed
the next time the workspace is opened. An audit event is committed to the registry before the
trail file is replaced, so an append a crash interrupts is completed by the next reader.
A full disk, a read-only file system or a missing permission raises `StorageError`.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import shutil
import sqlite3
import stat
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apesim import audit, faults
from apesim.errors import (
    DuplicateSimulationError,
    ReadOnlySimulationError,
    SimulationNotFoundError,
    WorkspaceError,
)
from apesim.results.metadata import SimulationMetadata, iso_utc
from apesim.storage import storage_errors
from apesim.workspace import layout

REGISTRY = "registry.sqlite"
SIMS = "sims"
STAGING = ".staging"
PROTOCOLS = "protocols"
# The workspace's own audit trail: what happened to the workspace rather than to one
# simulation (a protocol taken from a package, simulations removed by `ape gc`).
WORKSPACE_AUDIT = "workspace_audit.json"
REGISTRY_VERSION = 3
# What a partial import kept of a package (`ape import --only summary`): no tables.
SUMMARY_ONLY = "summary"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS simulations (
    sim_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    folder TEXT NOT NULL UNIQUE,
    protocol_name TEXT NOT NULL,
    protocol_version TEXT NOT NULL,
    protocol_fingerprint TEXT NOT NULL,
    engine_version TEXT NOT NULL,
    patients INTEGER NOT NULL,
    years REAL NOT NULL,
    seed INTEGER NOT NULL,
    created_utc TEXT NOT NULL,
    runtime_seconds REAL NOT NULL,
    imported INTEGER NOT NULL DEFAULT 0,
    source_format TEXT,
    source_file TEXT,
    source_sha256 TEXT UNIQUE,
    imported_utc TEXT,
    created_by TEXT,
    audit_head TEXT NOT NULL,
    audit_event TEXT,
    partial TEXT
);
"""


@dataclass(frozen=True)
class SimulationRecord:
    """A registry row: where a simulation lives and what it is."""

    sim_id: str
    name: str
    folder: str
    protocol_name: str
    protocol_version: str
    protocol_fingerprint: str
    engine_version: str
    patients: int
    years: float
    seed: int
    created_utc: str
    runtime_seconds: float
    imported: bool = False
    source_format: str | None = None
    source_file: str | None = None
    source_sha256: str | None = None
    imported_utc: str | None = None
    created_by: str | None = None
    partial: str | None = None  # SUMMARY_ONLY: imported without its tables

    @property
    def summary_only(self) -> bool:
        """Imported with `--only summary`: metadata, statistics and trail, no tables."""
        return self.partial == SUMMARY_ONLY

    @property
    def origin(self) -> str:
        """Where it came from, as `ape list` and the app show it."""
        if not self.imported:
            return "run here"
        return "imported (summary only)" if self.summary_only else "imported"

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        del out["folder"]
        return out

    @classmethod
    def from_metadata(cls, meta: SimulationMetadata, **registry: Any) -> SimulationRecord:
        """The registry row of a simulation described by `meta`; `registry` adds the fields
        that only the workspace knows (imported, source, created_by)."""
        return cls(
            sim_id=meta.sim_id,
            name=meta.name,
            folder="",
            protocol_name=meta.protocol_name,
            protocol_version=meta.protocol_version,
            protocol_fingerprint=meta.protocol_fingerprint,
            engine_version=meta.engine_version,
            patients=meta.patients,
            years=meta.years,
            seed=meta.seed,
            created_utc=iso_utc(meta.created_utc),
            runtime_seconds=meta.runtime_seconds,
            **registry,
        )

    def metadata(self) -> SimulationMetadata:
        """The metadata this row was made from (`from_metadata`), its creation time to the
        second: what a reader of the row needs without decoding metadata.parquet."""
        created = datetime.strptime(self.created_utc, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
        return SimulationMetadata(
            sim_id=self.sim_id,
            name=self.name,
            protocol_name=self.protocol_name,
            protocol_version=self.protocol_version,
            protocol_fingerprint=self.protocol_fingerprint,
            engine_version=self.engine_version,
            patients=self.patients,
            years=self.years,
            seed=self.seed,
            created_utc=created,
            runtime_seconds=self.runtime_seconds,
        )


_COLUMNS = tuple(f.name for f in fields(SimulationRecord))


# Seconds a connection waits for another process's lock on the registry.
_TIMEOUT = 30.0

# How many fresh lock file names a writer tries before it gives up (each try fails only if a
# sweeper in another process got to the new file first, so a handful is already unlikely).
_LOCK_ATTEMPTS = 100


def lock_file(path: Path, *, create: bool) -> int | None:
    """Take the exclusive advisory lock of the staging lock file `path` without waiting.

    With `create` the file must be new (O_EXCL: a writer's own), else it must exist (a
    sweeper never creates one). Returns the open descriptor, holding the lock, if the lock was
    free and `path` still names the very file locked; otherwise None, holding nothing.

    Only the holder of a lock file's lock ever deletes it, so the final check makes the lock
    mean something: a file that another process locked and unlinked between our open and our
    lock is no longer at `path`, and locking it proves nothing about `path`. (The package
    writer locks its partial files the same way.)

    The lock is portalocker's: `flock` on POSIX, `msvcrt.locking` on Windows; the operating
    system releases it when the descriptor is closed or the process dies.
    """
    import portalocker  # loaded by the commands that lock, not by every one that reads

    try:
        fd = os.open(path, os.O_RDWR | (os.O_CREAT | os.O_EXCL if create else 0), 0o644)
    except FileExistsError:
        return None
    except FileNotFoundError:
        if create:
            raise
        return None  # already removed by its writer or another sweeper
    try:
        _lock_now(fd)
        if os.path.samestat(os.fstat(fd), os.stat(path)):  # same st_dev and st_ino
            return fd
    except (portalocker.AlreadyLocked, FileNotFoundError):
        pass  # held by another process, or unlinked by one after our open
    except BaseException:
        os.close(fd)
        raise
    os.close(fd)
    return None


def unlock_remove(path: Path, fd: int) -> None:
    """Remove the lock file `path`, whose lock the open descriptor `fd` holds, then close
    `fd`. Where an open file cannot be removed (Windows), `fd` is closed first and the file
    removed unless another process opened it meanwhile (then that process's sweep will)."""
    try:
        path.unlink(missing_ok=True)
    except PermissionError:
        os.close(fd)
        with contextlib.suppress(PermissionError):
            path.unlink(missing_ok=True)
        return
    os.close(fd)


def _lock_now(fd: int) -> None:
    """Take the exclusive lock of the open file `fd` or raise `portalocker.AlreadyLocked`
    at once; any other failure of the lock is the OSError behind it (a StorageError where
    the caller maps them)."""
    import portalocker

    try:
        portalocker.lock(fd, portalocker.LockFlags.EXCLUSIVE | portalocker.LockFlags.NON_BLOCKING)
    except portalocker.AlreadyLocked:
        raise
    except portalocker.LockException as exc:
        cause = exc.__cause__
        raise (cause if isinstance(cause, OSError) else OSError(str(exc))) from None


def _temporary_names(path: Path) -> str:
    """The glob of the temporary files `_replace_file` makes for `path`."""
    return f".{path.name}.*.tmp"


def _replace_file(path: Path, data: bytes) -> None:
    """Replace the file at `path` by `data` atomically and durably, keeping its permissions,
    through a temporary file of a unique name in the same folder (removed if anything fails;
    if the process is killed, by the next writer of `path`: see `_checked_trail`).
    """
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), stat.S_IMODE(os.stat(path).st_mode))  # not mkstemp's 0600
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        faults.point("audit.temp_written")
        os.replace(name, path)
        faults.point("audit.replaced")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    # The rename itself on disk too, before the registry's commit that relies on it.
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def default_workspace() -> Path:
    """APE_WORKSPACE if set, else a folder under the user's data directory."""
    env = os.environ.get("APE_WORKSPACE")
    if env:
        return Path(env)
    from platformdirs import user_data_dir

    return Path(user_data_dir("ape", appauthor=False)) / "workspace"


def _ambiguous(ref: str, records: list[SimulationRecord], shown: int = 5) -> str:
    """The error for a name or id prefix that matches several simulations: the candidates
    (oldest first), so that the user can pick one by its id."""
    records = sorted(records, key=lambda r: (r.created_utc, r.sim_id))
    listed = "; ".join(f"{r.sim_id} ({r.name!r}, {r.created_utc})" for r in records[:shown])
    more = f"; and {len(records) - shown} more" if len(records) > shown else ""
    return f"{ref}: matches {len(records)} simulations: {listed}{more}; give one of the ids"


class Workspace:
    """A workspace folder. Cheap to construct; every method opens its own connection."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_workspace()
        try:
            with storage_errors(self.root, "opening the workspace"):
                (self.root / SIMS).mkdir(parents=True, exist_ok=True)
                (self.root / STAGING).mkdir(exist_ok=True)
                (self.root / PROTOCOLS).mkdir(exist_ok=True)
                with self._connect() as db:
                    db.executescript(_SCHEMA)
                    self._migrate(db)
        except (OSError, sqlite3.Error) as exc:
            raise WorkspaceError(f"{self.root}: cannot open workspace ({exc})") from None
        self._sweep()

    def _migrate(self, db: sqlite3.Connection) -> None:
        """Bring a registry written by an earlier APE up to this schema (PRAGMA user_version)."""
        version = db.execute("PRAGMA user_version").fetchone()[0]
        columns = {row[1] for row in db.execute("PRAGMA table_info(simulations)")}
        if "audit_head" not in columns:  # registries before version 1 had no audit head
            db.execute("ALTER TABLE simulations ADD COLUMN audit_head TEXT NOT NULL DEFAULT ''")
            for sim_id, folder in db.execute("SELECT sim_id, folder FROM simulations").fetchall():
                trail = self.root / SIMS / folder / layout.AUDIT
                try:
                    head = audit.parse(trail.read_bytes())[-1].sha256
                except (OSError, ValueError, IndexError):
                    head = ""  # unreadable: reading the trail will say it was altered
                db.execute("UPDATE simulations SET audit_head = ? WHERE sim_id = ?", (head, sim_id))
        if "audit_event" not in columns:  # version 2 keeps the last event (crash-safe appends)
            db.execute("ALTER TABLE simulations ADD COLUMN audit_event TEXT")
        if "partial" not in columns:  # version 3 knows summary-only imports
            db.execute("ALTER TABLE simulations ADD COLUMN partial TEXT")
        if version < REGISTRY_VERSION:
            db.execute(f"PRAGMA user_version = {REGISTRY_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.root / REGISTRY, timeout=_TIMEOUT)
        try:
            with db:
                yield db
        finally:
            db.close()

    @contextlib.contextmanager
    def _write_lock(self) -> Iterator[sqlite3.Connection]:
        """A connection holding the registry's write lock (BEGIN IMMEDIATE) for the whole
        block, across processes: committed when the block ends (unless it committed itself),
        rolled back if it raises. It is the lock an installer holds from its INSERT to its
        commit; appenders to an audit trail and the sweep of sims/ take it for all they do,
        so each finds the others' work either complete or not begun."""
        db = sqlite3.connect(self.root / REGISTRY, timeout=_TIMEOUT, isolation_level=None)
        try:
            db.execute("BEGIN IMMEDIATE")
            yield db
            if db.in_transaction:
                db.execute("COMMIT")
        finally:
            if db.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
            db.close()

    def _sweep(self) -> None:
        """Remove what an interrupted write left: staging folders whose writer is gone, and
        folders in sims/ with no registry row."""
        for lock in (self.root / STAGING).glob("*.lock"):
            try:
                fd = lock_file(lock, create=False)
            except OSError:
                continue  # not ours to open (read-only, permissions): nothing to sweep
            if fd is None:
                continue  # its writer is alive, or it is gone already
            try:
                shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
            finally:
                unlock_remove(lock, fd)
        for folder in (self.root / STAGING).iterdir():
            # A writer takes its lock before it makes its folder and drops it after removing
            # the folder, so a folder without a lock file is a leftover.
            if folder.is_dir() and not folder.with_suffix(".lock").exists():
                shutil.rmtree(folder, ignore_errors=True)
        # An installer holds the write lock from its INSERT until its commit, so this waits
        # for it and never mistakes a folder being installed for a leftover.
        with self._write_lock() as db:
            known = {row[0] for row in db.execute("SELECT folder FROM simulations")}
            for folder in (self.root / SIMS).iterdir():
                if folder.name not in known:
                    shutil.rmtree(folder, ignore_errors=True)

    @property
    def protocols_dir(self) -> Path:
        return self.root / PROTOCOLS

    # -- reading -----------------------------------------------------------------------

    def list(self) -> list[SimulationRecord]:
        with self._connect() as db:
            rows = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM simulations ORDER BY created_utc, sim_id"
            ).fetchall()
        return [self._record(row) for row in rows]

    @staticmethod
    def _record(row: tuple[Any, ...]) -> SimulationRecord:
        values = dict(zip(_COLUMNS, row, strict=True))
        values["imported"] = bool(values["imported"])
        return SimulationRecord(**values)

    def get(self, ref: str) -> SimulationRecord:
        """A simulation by id, unique id prefix, or memorable name."""
        with self._connect() as db:
            cols = ", ".join(_COLUMNS)
            row = db.execute(f"SELECT {cols} FROM simulations WHERE sim_id = ?", (ref,)).fetchone()
            if row is None:
                rows = db.execute(
                    f"SELECT {cols} FROM simulations WHERE name = ? OR sim_id LIKE ? ESCAPE '\\'",
                    (ref, ref.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"),
                ).fetchall()
                if len(rows) > 1:
                    raise SimulationNotFoundError(_ambiguous(ref, [self._record(r) for r in rows]))
                row = rows[0] if rows else None
        if row is None:
            raise SimulationNotFoundError(
                f"{ref}: no such simulation in {self.root} (see `ape list`)"
            )
        return self._record(row)

    def find_by_source(self, sha256: str) -> SimulationRecord | None:
        with self._connect() as db:
            row = db.execute(
                f"SELECT {', '.join(_COLUMNS)} FROM simulations WHERE source_sha256 = ?", (sha256,)
            ).fetchone()
        return self._record(row) if row else None

    def exists(self, sim_id: str) -> bool:
        with self._connect() as db:
            return (
                db.execute("SELECT 1 FROM simulations WHERE sim_id = ?", (sim_id,)).fetchone()
                is not None
            )

    def path(self, record: SimulationRecord) -> Path:
        return self.root / SIMS / record.folder

    # -- writing -----------------------------------------------------------------------

    @contextlib.contextmanager
    def staging(self) -> Iterator[Path]:
        """A fresh folder inside the workspace, removed unless it was installed.

        Its lock file `<folder>.lock` is created, locked and checked to be still in place
        before the folder is made, and removed (still locked) after the folder is gone: while
        the folder exists its lock file does too, held by this process, and the sweep of
        other processes leaves both alone.
        """
        for _ in range(_LOCK_ATTEMPTS):
            lock = self.root / STAGING / f"{uuid.uuid4().hex}.lock"
            try:
                with storage_errors(self.root, "creating a staging folder"):
                    fd = lock_file(lock, create=True)
            except OSError as exc:
                raise WorkspaceError(
                    f"{lock.parent}: cannot create a staging lock ({exc})"
                ) from None
            if fd is not None:
                break
            # A sweeper in another process got to the new file between our open and our
            # lock (and removes it): try again under a fresh name.
        else:
            raise WorkspaceError(
                f"{self.root / STAGING}: could not lock a staging folder in {_LOCK_ATTEMPTS} "
                "attempts; other processes keep sweeping it"
            )
        folder = lock.with_suffix("")
        try:
            with storage_errors(self.root, "creating a staging folder"):
                folder.mkdir()
            try:
                yield folder
            finally:
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
        finally:
            unlock_remove(lock, fd)

    def install(
        self, staged: Path, record: SimulationRecord, *, replacing: SimulationRecord | None = None
    ) -> SimulationRecord:
        """Move a staged folder into place and register it; all or nothing. `replacing`: a
        simulation whose row goes in the same transaction (a summary-only import that the
        full one replaces), its folder only once the new one is registered."""
        folder = uuid.uuid4().hex
        record = SimulationRecord(**{**asdict(record), "folder": folder})
        target = self.root / SIMS / folder
        placeholders = ", ".join("?" for _ in _COLUMNS)
        values = tuple(getattr(record, c) for c in _COLUMNS)
        last = audit.parse((staged / layout.AUDIT).read_bytes())[-1]
        try:
            with storage_errors(self.root, "installing a simulation"), self._connect() as db:
                if replacing is not None:
                    db.execute("DELETE FROM simulations WHERE sim_id = ?", (replacing.sim_id,))
                db.execute(
                    f"INSERT INTO simulations ({', '.join(_COLUMNS)}, audit_head, audit_event) "
                    f"VALUES ({placeholders}, ?, ?)",
                    (*values, last.sha256, last.canonical()),
                )
                os.replace(staged, target)
        except sqlite3.IntegrityError as exc:
            raise self._refused(record, exc) from None
        except BaseException:
            if target.exists() and not self.exists(record.sim_id):
                shutil.rmtree(target, ignore_errors=True)
            raise
        if replacing is not None:
            shutil.rmtree(self.path(replacing), ignore_errors=True)
        return record

    @staticmethod
    def _refused(record: SimulationRecord, exc: sqlite3.IntegrityError) -> WorkspaceError:
        """The error for a registry row that SQLite refused: `DuplicateSimulationError`
        when the simulation or its source package is registered already, else the field that
        was invalid."""
        match = re.search(r"constraint failed: simulations\.(\w+)", str(exc))
        column = match.group(1) if match else None
        if str(exc).startswith("UNIQUE constraint failed") and column in (
            "sim_id",
            "source_sha256",
        ):
            what = "simulation" if column == "sim_id" else "source package"
            return DuplicateSimulationError(
                f"{record.sim_id}: already in the workspace (the same {what}: {exc})"
            )
        if column in _COLUMNS:
            return WorkspaceError(
                f"{record.sim_id}: cannot register the simulation: invalid {column} "
                f"{getattr(record, column)!r} ({exc})"
            )
        return WorkspaceError(f"{record.sim_id}: cannot register the simulation ({exc})")

    def append_audit(
        self, record: SimulationRecord, action: str, details: dict[str, Any]
    ) -> audit.AuditEvent:
        """Append an event to a simulation's audit trail (allowed on imported ones too).

        Appenders in any number of processes are serialised by the registry's write lock, so
        none loses another's event or finds the trail half way between two versions.

        Crash-safe in two steps, each under the lock: first the registry commits the new head
        together with the new event itself; then the trail file is replaced. A kill before
        the commit leaves the old state (SQLite rolls its journal back); a kill after it
        leaves a trail exactly one event behind an event the registry holds, which the next
        reader or appender writes into the file (`_checked_trail`). Nothing written outside
        APE can match the registered event, so an outside edit still shows.
        """
        with storage_errors(self.root, "recording an audit event"):
            with self._write_lock() as db:
                events = self._checked_trail(record, db, complete=True)
                event = audit.append(events, action, details)[-1]
                db.execute(
                    "UPDATE simulations SET audit_head = ?, audit_event = ? WHERE sim_id = ?",
                    (event.sha256, event.canonical(), record.sim_id),
                )
                faults.point("audit.registry_updated")
                db.execute("COMMIT")
            faults.point("audit.committed")
            try:
                with self._write_lock() as db:
                    self._checked_trail(record, db, complete=True)  # writes the file
            except BaseException:
                # The file could not take the event (a full disk, say): withdraw it from the
                # registry, unless someone completed the append meanwhile.
                with (
                    contextlib.suppress(OSError, sqlite3.Error, ValueError),
                    self._write_lock() as db,
                ):
                    on_disk = audit.parse((self.path(record) / layout.AUDIT).read_bytes())
                    if self._registered(record, db)[0] == event.sha256 and on_disk == events:
                        db.execute(
                            "UPDATE simulations SET audit_head = ?, audit_event = ? "
                            "WHERE sim_id = ?",
                            (events[-1].sha256, events[-1].canonical(), record.sim_id),
                        )
                raise
        return event

    # builtins.list: in this class `list` names the method above.
    def read_audit(self, record: SimulationRecord) -> builtins.list[audit.AuditEvent]:
        """The simulation's audit trail, checked against the chain head kept in the registry:
        the chain shows an edit to any earlier event, the registry an edit to the last."""
        with self._connect() as db:
            try:
                return self._checked_trail(record, db)
            except WorkspaceError as exc:
                if exc.code != "audit.altered":
                    raise
        # Without the lock this may have caught an appender between its commit and replacing
        # the file, or an append a crash interrupted there; under the lock no appender is
        # half way, the interrupted append is completed, and a mismatch now is real.
        with storage_errors(self.root, "completing an audit event"), self._write_lock() as db:
            return self._checked_trail(record, db, complete=True)

    @staticmethod
    def _registered(
        record: SimulationRecord, db: sqlite3.Connection
    ) -> tuple[str | None, str | None]:
        """The audit head the registry has for `record`, and the last event's canonical JSON
        (None when the registry was migrated from version 1 and nothing was appended since)."""
        row = db.execute(
            "SELECT audit_head, audit_event FROM simulations WHERE sim_id = ?", (record.sim_id,)
        ).fetchone()
        return (None, None) if row is None else (str(row[0]), row[1])

    def _checked_trail(
        self, record: SimulationRecord, db: sqlite3.Connection, *, complete: bool = False
    ) -> builtins.list[audit.AuditEvent]:
        """The trail's events if the file is a valid chain ending at the head that `db` has
        for it; else `audit.altered`.

        With `complete` (only under the write lock) an append that a crash interrupted after
        its commit is completed first: a trail exactly one event behind, whose last event is
        the previous hash of the event the registry holds under its head, gets that event.
        The temporary files of replacements a crash interrupted are removed too.
        """
        path = self.path(record) / layout.AUDIT
        altered = WorkspaceError(
            f"{record.sim_id}: the audit trail ({path}) was altered outside APE",
            code="audit.altered",
        )
        if complete:
            for stale in path.parent.glob(_temporary_names(path)):
                stale.unlink(missing_ok=True)  # every writer of the trail holds the lock
        try:
            events = audit.parse(path.read_bytes())
        except ValueError:
            raise altered from None
        if not events:
            raise altered
        head, last = self._registered(record, db)
        if events[-1].sha256 == head:
            return events
        if complete and last is not None:
            try:
                event = audit.parse_event(last)
            except ValueError:
                raise altered from None
            if event.sha256 == head and event.prev_sha256 == events[-1].sha256:
                events = [*events, event]
                _replace_file(path, audit.serialise(events))
                return events
        raise altered

    def append_workspace_event(self, action: str, details: dict[str, Any]) -> audit.AuditEvent:
        """Append an event to the workspace's own hash-chained trail (under the registry's
        write lock, replaced atomically)."""
        path = self.root / WORKSPACE_AUDIT
        with storage_errors(self.root, "recording a workspace event"), self._write_lock():
            events = self.workspace_events()
            events = audit.append(events, action, details)
            if not path.exists():
                path.write_bytes(audit.serialise([]))
            _replace_file(path, audit.serialise(events))
        return events[-1]

    def workspace_events(self) -> builtins.list[audit.AuditEvent]:
        """The workspace's own trail, its chain checked (`audit.altered` if broken)."""
        path = self.root / WORKSPACE_AUDIT
        try:
            return audit.parse(path.read_bytes())
        except FileNotFoundError:
            return []
        except ValueError:
            raise WorkspaceError(
                f"{path}: the workspace's audit trail was altered outside APE",
                code="audit.altered",
            ) from None

    def ensure_writable(self, record: SimulationRecord) -> None:
        if record.imported:
            raise ReadOnlySimulationError(
                f"{record.sim_id}: imported simulations are read-only; "
                "run the protocol as a new simulation instead"
            )

    def delete(self, ref: str) -> None:
        record = self.get(ref)
        with storage_errors(self.root, "deleting a simulation"), self._connect() as db:
            db.execute("DELETE FROM simulations WHERE sim_id = ?", (record.sim_id,))
        shutil.rmtree(self.path(record), ignore_errors=True)
