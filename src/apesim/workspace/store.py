"""The workspace on disk: one folder per simulation and a SQLite registry listing them.

Folders are named by the workspace (a random hex id), never by anything a user or a package
supplies. A simulation is installed atomically: it is written in `.staging/`, renamed into
`sims/`, and its registry row is committed last; whatever is not in the registry is removed
the next time the workspace is opened.
"""

from __future__ import annotations

import builtins
import contextlib
import fcntl
import os
import shutil
import sqlite3
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from platformdirs import user_data_dir

from apesim import audit
from apesim.errors import ReadOnlySimulationError, SimulationNotFoundError, WorkspaceError
from apesim.results.metadata import SimulationMetadata, iso_utc

REGISTRY = "registry.sqlite"
SIMS = "sims"
STAGING = ".staging"
PROTOCOLS = "protocols"
AUDIT_FILE = "audit_log.json"
REGISTRY_VERSION = 1

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
    audit_head TEXT NOT NULL
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


_COLUMNS = tuple(f.name for f in fields(SimulationRecord))


@contextlib.contextmanager
def _try_lock(path: Path) -> Iterator[bool]:
    """Hold an exclusive advisory lock on `path` if no other process holds it."""
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        yield True
    finally:
        os.close(fd)


def default_workspace() -> Path:
    """APE_WORKSPACE if set, else a folder under the user's data directory."""
    env = os.environ.get("APE_WORKSPACE")
    return Path(env) if env else Path(user_data_dir("ape", appauthor=False)) / "workspace"


class Workspace:
    """A workspace folder. Cheap to construct; every method opens its own connection."""

    def __init__(self, root: Path | str | None = None) -> None:
        self.root = Path(root) if root is not None else default_workspace()
        try:
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
                trail = self.root / SIMS / folder / AUDIT_FILE
                try:
                    head = audit.parse(trail.read_bytes())[-1].sha256
                except (OSError, ValueError, IndexError):
                    head = ""  # unreadable: reading the trail will say it was altered
                db.execute("UPDATE simulations SET audit_head = ? WHERE sim_id = ?", (head, sim_id))
        if version < REGISTRY_VERSION:
            db.execute(f"PRAGMA user_version = {REGISTRY_VERSION}")

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.root / REGISTRY, timeout=30)
        try:
            with db:
                yield db
        finally:
            db.close()

    def _sweep(self) -> None:
        """Remove what an interrupted write left: staging folders whose writer is gone, and
        folders in sims/ with no registry row."""
        for lock in (self.root / STAGING).glob("*.lock"):
            with _try_lock(lock) as held:
                if held:
                    shutil.rmtree(lock.with_suffix(""), ignore_errors=True)
                    lock.unlink(missing_ok=True)
        for folder in (self.root / STAGING).iterdir():
            # A writer takes its lock before it makes its folder and drops it after removing
            # the folder, so a folder without a lock file is a leftover.
            if folder.is_dir() and not folder.with_suffix(".lock").exists():
                shutil.rmtree(folder, ignore_errors=True)
        db = sqlite3.connect(self.root / REGISTRY, timeout=30, isolation_level=None)
        try:
            # An installer holds the write lock from its INSERT until its commit, so this
            # waits for it and never mistakes a folder being installed for a leftover.
            db.execute("BEGIN IMMEDIATE")
            known = {row[0] for row in db.execute("SELECT folder FROM simulations")}
            for folder in (self.root / SIMS).iterdir():
                if folder.name not in known:
                    shutil.rmtree(folder, ignore_errors=True)
            db.execute("COMMIT")
        finally:
            db.close()

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
                    raise SimulationNotFoundError(
                        f"{ref}: matches {len(rows)} simulations; give the full id"
                    )
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
        """A fresh folder inside the workspace, removed unless it was installed."""
        folder = self.root / STAGING / uuid.uuid4().hex
        lock = folder.with_suffix(".lock")
        with _try_lock(lock) as held:
            assert held
            folder.mkdir()
            try:
                yield folder
            finally:
                if folder.exists():
                    shutil.rmtree(folder, ignore_errors=True)
                lock.unlink(missing_ok=True)

    def install(self, staged: Path, record: SimulationRecord) -> SimulationRecord:
        """Move a staged folder into place and register it; all or nothing."""
        folder = uuid.uuid4().hex
        record = SimulationRecord(**{**asdict(record), "folder": folder})
        target = self.root / SIMS / folder
        placeholders = ", ".join("?" for _ in _COLUMNS)
        values = tuple(getattr(record, c) for c in _COLUMNS)
        head = audit.parse((staged / AUDIT_FILE).read_bytes())[-1].sha256
        try:
            with self._connect() as db:
                db.execute(
                    f"INSERT INTO simulations ({', '.join(_COLUMNS)}, audit_head) "
                    f"VALUES ({placeholders}, ?)",
                    (*values, head),
                )
                os.replace(staged, target)
        except sqlite3.IntegrityError as exc:
            raise WorkspaceError(f"{record.sim_id}: already in the workspace ({exc})") from None
        except BaseException:
            if target.exists() and not self.exists(record.sim_id):
                shutil.rmtree(target, ignore_errors=True)
            raise
        return record

    def append_audit(
        self, record: SimulationRecord, action: str, details: dict[str, Any]
    ) -> audit.AuditEvent:
        """Append an event to a simulation's audit trail (allowed on imported ones too)."""
        path = self.path(record) / AUDIT_FILE
        events = audit.append(self.read_audit(record), action, details)
        tmp = path.with_suffix(".json.tmp")
        tmp.write_bytes(audit.serialise(events))
        with self._connect() as db:
            db.execute(
                "UPDATE simulations SET audit_head = ? WHERE sim_id = ?",
                (events[-1].sha256, record.sim_id),
            )
            os.replace(tmp, path)
        return events[-1]

    # builtins.list: in this class `list` names the method above.
    def read_audit(self, record: SimulationRecord) -> builtins.list[audit.AuditEvent]:
        """The simulation's audit trail, checked against the chain head kept in the registry:
        the chain shows an edit to any earlier event, the registry an edit to the last."""
        path = self.path(record) / AUDIT_FILE
        altered = WorkspaceError(
            f"{record.sim_id}: the audit trail ({path}) was altered outside APE",
            code="audit.altered",
        )
        try:
            events = audit.parse(path.read_bytes())
        except ValueError:
            raise altered from None
        with self._connect() as db:
            row = db.execute(
                "SELECT audit_head FROM simulations WHERE sim_id = ?", (record.sim_id,)
            ).fetchone()
        if not events or row is None or row[0] != events[-1].sha256:
            raise altered
        return events

    def ensure_writable(self, record: SimulationRecord) -> None:
        if record.imported:
            raise ReadOnlySimulationError(
                f"{record.sim_id}: imported simulations are read-only; "
                "run the protocol as a new simulation instead"
            )

    def delete(self, ref: str) -> None:
        record = self.get(ref)
        with self._connect() as db:
            db.execute("DELETE FROM simulations WHERE sim_id = ?", (record.sim_id,))
        shutil.rmtree(self.path(record), ignore_errors=True)
