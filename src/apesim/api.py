"""The Python API of APE: the one door the CLI and the app use.

Protocols, runs, stored simulations (`load_simulation`, `show_simulation`), the summary
statistics' type, labels and formatter, and (re-exported from `apesim.package`) export,
inspection and import of simulation packages.

Importing this module is cheap: numpy, pyarrow, pydantic and the package reader load only
when something needs them (`ape --help` and `ape list` never do). The heavy names are
re-exported lazily through the module's `__getattr__`; they are imported under
`TYPE_CHECKING` too, so mypy checks every call made through `api.`.
"""

from __future__ import annotations

import contextlib
import importlib
import itertools
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from apesim import __version__, keyring
from apesim.distributed.options import DEFAULT_BLOCK, SCHEDULER_ENV, ClusterOptions
from apesim.errors import (
    ApeError,
    KeyringError,
    ProtocolError,
    SimulationNotFoundError,
    WorkspaceError,
)
from apesim.keyring import KeyInfo
from apesim.launcher import (
    DEFAULT_HOST,
    DEFAULT_PORT,
    app_command,
    app_environment,
    app_url,
    run_app,
    run_viewer,
)
from apesim.limits import DEFAULT_CHUNK, MAX_PATIENTS, MAX_YEARS
from apesim.progress import ProgressCallback
from apesim.remote.urls import is_remote
from apesim.results.summary import (
    REASON_LABELS,
    STATISTICS,
    SUMMARY_FIELDS,
    Statistic,
    Summary,
    format_value,
    summary_rows,
)
from apesim.workspace import trust
from apesim.workspace.results import SimulationResults, load_simulation
from apesim.workspace.retention import Removal, parse_age
from apesim.workspace.settings import WorkspaceSettings, load_settings, parse_setting
from apesim.workspace.store import SimulationRecord, Workspace, default_workspace
from apesim.workspace.trust import TRUST_FILE, Settings, TrustedKey

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from apesim.audit import AuditEvent
    from apesim.bulk import BulkExport, BulkImport, ImportItem, import_many
    from apesim.engine.simulate import SimulationParameters
    from apesim.package import (
        Check,
        DifferentialExport,
        ExportResult,
        PackageReport,
        ReadLimits,
        estimate_package_size,
        export_differential,
        export_package,
        import_package,
        inspect_package,
        inspect_with_base,
        package_filename,
        validate_package,
    )
    from apesim.package.encryption import Encryption
    from apesim.package.reader import judge
    from apesim.package.signature import SignatureVerdict, SigningKey
    from apesim.package.view import PackageView, open_package
    from apesim.protocol import LoadedProtocol, parse_protocol
    from apesim.protocol.convert import ProtocolConversion, convert_protocol_text
    from apesim.protocol.loader import defaulted_fields
    from apesim.protocol.schema import STATES, Protocol
    from apesim.remote.objects import RemoteObject
    from apesim.remote.peek import RemotePeek
    from apesim.reproduce import Reproduction
    from apesim.sweep.plan import SweepPlan
    from apesim.sweep.report import SweepReport
    from apesim.sweep.run import SweepRun
    from apesim.sweep.store import SweepInfo

__all__ = [
    "APE_WORKSPACE",
    "DEFAULT_BLOCK",
    "DEFAULT_CHUNK",
    "DEFAULT_HOST",
    "DEFAULT_PORT",
    "EXIT_DIFFERS",
    "MAX_PATIENTS",
    "MAX_YEARS",
    "REASON_LABELS",
    "SCHEDULER_ENV",
    "STATES",
    "STATISTICS",
    "SUMMARY_FIELDS",
    "TRUST_FILE",
    "AuditEvent",
    "AuditTrail",
    "BulkExport",
    "BulkImport",
    "Check",
    "ClusterOptions",
    "Comparison",
    "DifferentialExport",
    "Encryption",
    "ExportResult",
    "GarbageReport",
    "ImportItem",
    "InvalidProtocol",
    "KeyInfo",
    "LoadedProtocol",
    "PackageReport",
    "PackageView",
    "ProgressCallback",
    "Protocol",
    "ProtocolConversion",
    "ProtocolInfo",
    "ReadLimits",
    "RemoteObject",
    "RemotePeek",
    "Removal",
    "Reproduction",
    "Settings",
    "SignatureVerdict",
    "SigningKey",
    "SimulationParameters",
    "SimulationRecord",
    "SimulationResults",
    "Statistic",
    "Summary",
    "SweepInfo",
    "SweepPlan",
    "SweepReport",
    "SweepRun",
    "TrustedKey",
    "Workspace",
    "WorkspaceInfo",
    "WorkspaceLocation",
    "WorkspaceSettings",
    "__version__",
    "add_protocol",
    "app_command",
    "app_environment",
    "app_url",
    "audit_trail",
    "collect_garbage",
    "compare_simulations",
    "convert_protocol_file",
    "convert_protocol_text",
    "countersign_package",
    "default_workspace",
    "defaulted_fields",
    "estimate_package_size",
    "export_batch",
    "export_differential",
    "export_many",
    "export_package",
    "export_sweep",
    "format_value",
    "generate_key",
    "get_protocol",
    "identity_path",
    "import_many",
    "import_package",
    "import_protocol",
    "inspect_package",
    "inspect_remote",
    "inspect_with_base",
    "invalid_protocols",
    "is_encrypted",
    "is_remote",
    "judge",
    "key_id_of",
    "keyring_dir",
    "list_keys",
    "list_protocols",
    "list_remote",
    "list_sweeps",
    "load_signing_key",
    "load_simulation",
    "open_package",
    "opened_package",
    "package_filename",
    "parse_age",
    "parse_protocol",
    "parse_recipients",
    "plan_sweep",
    "protocol_key",
    "public_key_of",
    "read_limits",
    "read_passphrase_file",
    "reproduce",
    "require_signature",
    "rerun_simulation",
    "run_app",
    "run_simulation",
    "run_sweep",
    "run_viewer",
    "set_signature_policy",
    "set_workspace_settings",
    "show_simulation",
    "signature_policy",
    "signatures_beside",
    "signing_key_protected",
    "summary_rows",
    "sweep_report",
    "trust_key",
    "trust_list",
    "trusted_keys",
    "untrust_key",
    "validate_package",
    "validated_summary",
    "workspace_exists",
    "workspace_info",
    "workspace_location",
    "workspace_settings",
    "write_report",
]

# Names re-exported from modules that load numpy, pyarrow or pydantic: imported on first use.
_LAZY: dict[str, str] = {
    "AuditEvent": "apesim.audit",
    "SimulationParameters": "apesim.engine.simulate",
    "BulkExport": "apesim.bulk",
    "BulkImport": "apesim.bulk",
    "ImportItem": "apesim.bulk",
    "import_many": "apesim.bulk",
    "RemoteObject": "apesim.remote.objects",
    "RemotePeek": "apesim.remote.peek",
    "Check": "apesim.package",
    "DifferentialExport": "apesim.package",
    "export_differential": "apesim.package",
    "inspect_with_base": "apesim.package",
    "ExportResult": "apesim.package",
    "Encryption": "apesim.package.encryption",
    "SignatureVerdict": "apesim.package.signature",
    "SigningKey": "apesim.package.signature",
    "judge": "apesim.package.reader",
    "PackageReport": "apesim.package",
    "ReadLimits": "apesim.package",
    "estimate_package_size": "apesim.package",
    "export_package": "apesim.package",
    "import_package": "apesim.package",
    "inspect_package": "apesim.package",
    "package_filename": "apesim.package",
    "validate_package": "apesim.package",
    "LoadedProtocol": "apesim.protocol",
    "parse_protocol": "apesim.protocol",
    "defaulted_fields": "apesim.protocol.loader",
    "ProtocolConversion": "apesim.protocol.convert",
    "convert_protocol_text": "apesim.protocol.convert",
    "STATES": "apesim.protocol.schema",
    "PackageView": "apesim.package.view",
    "open_package": "apesim.package.view",
    "Protocol": "apesim.protocol.schema",
    "SweepPlan": "apesim.sweep.plan",
    "SweepReport": "apesim.sweep.report",
    "SweepRun": "apesim.sweep.run",
    "SweepInfo": "apesim.sweep.store",
    "Reproduction": "apesim.reproduce",
}

# `ape reproduce` exits with this when the re-simulation differs (0: identical, 2: cannot).
EXIT_DIFFERS = 3


def __getattr__(name: str) -> Any:
    """A lazily re-exported name (see `_LAZY`), imported on first use."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


# -- the workspace -------------------------------------------------------------------------

APE_WORKSPACE = "APE_WORKSPACE"


@dataclass(frozen=True)
class WorkspaceLocation:
    """Which workspace is active and why: `source` is "--workspace" (given explicitly),
    "APE_WORKSPACE" (the environment variable) or "default" (under the user data folder)."""

    path: Path
    source: str

    def describe(self) -> str:
        """The path and where it came from, as people read it."""
        why = {"--workspace": "from --workspace", APE_WORKSPACE: f"from {APE_WORKSPACE}"}
        return f"{self.path} ({why.get(self.source, 'the default')})"


def workspace_location(path: Path | str | None = None) -> WorkspaceLocation:
    """The workspace a command uses: `path` if given, else APE_WORKSPACE, else the default
    folder under the user's data directory (`default_workspace`). Absolute, not created."""
    if path is not None and str(path) != "":
        chosen, source = Path(path), "--workspace"
    elif os.environ.get(APE_WORKSPACE):
        chosen, source = Path(os.environ[APE_WORKSPACE]), APE_WORKSPACE
    else:
        chosen, source = default_workspace(), "default"
    return WorkspaceLocation(chosen.expanduser().absolute(), source)


@dataclass(frozen=True)
class WorkspaceInfo:
    """What `ape workspace` shows: where the workspace is, why, and what it holds."""

    location: WorkspaceLocation
    exists: bool  # False: no workspace there yet (the first run creates it)
    simulations: int
    imported: int
    protocols: int
    size_bytes: int
    settings: WorkspaceSettings = field(default_factory=WorkspaceSettings)

    @property
    def retention(self) -> str:
        """The retention policy in words."""
        days = self.settings.imported_retention_days
        if days is None:
            return "none: imported simulations are kept until removed (ape gc SIM --apply)"
        return (
            f"imported simulations are removed by `ape gc --apply` {days:,} days after their "
            "import; simulations run here never are, unless named"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "path": str(self.location.path),
            "source": self.location.source,
            "exists": self.exists,
            "simulations": self.simulations,
            "imported": self.imported,
            "protocols": self.protocols,
            "size_bytes": self.size_bytes,
            "settings": self.settings.to_json(),
            "retention": self.retention,
        }


def workspace_exists(path: Path) -> bool:
    """Whether `path` holds a workspace (its registry), without creating anything."""
    from apesim.workspace.store import REGISTRY

    return (path / REGISTRY).is_file()


def workspace_info(path: Path | str | None = None) -> WorkspaceInfo:
    """The active workspace (`workspace_location`) and what it holds: simulations (of them
    imported), workspace protocols and bytes on disk. A folder without a workspace is
    reported as not existing, and nothing is created."""
    location = workspace_location(path)
    if not workspace_exists(location.path):
        return WorkspaceInfo(location, False, 0, 0, 0, 0)
    ws = Workspace(location.path)
    records = ws.list()
    size = 0
    for folder, _, files in os.walk(location.path):
        for name in files:
            with contextlib.suppress(OSError):
                size += os.lstat(os.path.join(folder, name)).st_size
    return WorkspaceInfo(
        location,
        True,
        len(records),
        sum(r.imported for r in records),
        len(list(ws.protocols_dir.glob("*.yaml"))),
        size,
        load_settings(location.path),
    )


def workspace_settings(path: Path | str | None = None) -> WorkspaceSettings:
    """The active workspace's settings (the defaults where it has none, or no workspace)."""
    location = workspace_location(path)
    if not workspace_exists(location.path):
        return WorkspaceSettings()
    return load_settings(location.path)


def set_workspace_settings(ws: Workspace, assignments: list[str]) -> WorkspaceSettings:
    """Change settings given as `KEY=VALUE` (all checked before any is written)."""
    from apesim.workspace.settings import save_settings

    changes = dict(parse_setting(a) for a in assignments)
    return save_settings(ws.root, changes)


def read_limits(
    settings: WorkspaceSettings | None = None,
    *,
    max_unpacked_gib: float | None = None,
    max_entries: int | None = None,
    max_ratio: float | None = None,
) -> ReadLimits:
    """The limits a package is read under: the flags given, else the workspace's settings,
    else the format's defaults."""
    from apesim.package import ReadLimits
    from apesim.workspace.settings import check_value

    base = settings or WorkspaceSettings()
    gib = check_value("max_unpacked_gib", max_unpacked_gib or base.max_unpacked_gib)
    entries = check_value("max_entries", max_entries or base.max_entries)
    ratio = check_value("max_ratio", max_ratio or base.max_ratio)
    return ReadLimits(
        max_total_bytes=int(gib * 1024**3),
        max_entries=entries,
        max_ratio=float(ratio),
        max_text_bytes=int(base.max_text_mib * 1024**2),
    )


# -- protocols -------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProtocolInfo:
    """A protocol as listed: its key, name, version, regimen, origin and fingerprint."""

    key: str
    name: str
    version: str
    regimen: str
    source: str  # "shipped" or "workspace"
    fingerprint: str


def list_protocols(ws: Workspace | None = None) -> list[ProtocolInfo]:
    """Shipped protocols, then the workspace's own (invalid files are left out: see
    `invalid_protocols`)."""
    from apesim.protocol import parse_protocol
    from apesim.protocol.loader import shipped_protocols

    out = []
    for key, text in shipped_protocols().items():
        lp = parse_protocol(text, f"{key}.yaml")
        out.append(
            ProtocolInfo(
                key,
                lp.protocol.name,
                lp.protocol.version,
                lp.protocol.regimen.type,
                "shipped",
                lp.fingerprint,
            )
        )
    if ws is not None:
        out.extend(_workspace_protocols(ws)[0])
    return out


@dataclass(frozen=True)
class InvalidProtocol:
    """A protocol file in the workspace's library that is left out of `list_protocols`
    because it is invalid: its key, file and problem (one line)."""

    key: str
    file: str
    problem: str


def invalid_protocols(ws: Workspace) -> list[InvalidProtocol]:
    """The workspace's protocol files that `list_protocols` leaves out, with their problem."""
    return _workspace_protocols(ws)[1]


def _workspace_protocols(ws: Workspace) -> tuple[list[ProtocolInfo], list[InvalidProtocol]]:
    from apesim.protocol import resolve_protocol

    valid, invalid = [], []
    for path in sorted(ws.protocols_dir.glob("*.yaml")):
        try:
            lp = resolve_protocol(str(path))
        except ProtocolError as exc:
            invalid.append(InvalidProtocol(path.stem, str(path), str(exc)))
            continue
        valid.append(
            ProtocolInfo(
                path.stem,
                lp.protocol.name,
                lp.protocol.version,
                lp.protocol.regimen.type,
                "workspace",
                lp.fingerprint,
            )
        )
    return valid, invalid


def get_protocol(ref: str, ws: Workspace | None = None) -> LoadedProtocol:
    """A protocol by shipped name, workspace name, or file path."""
    from apesim.protocol import resolve_protocol

    return resolve_protocol(ref, (ws.protocols_dir,) if ws is not None else ())


def protocol_key(filename: str) -> str:
    """The key (file stem in the workspace) a protocol saved as `filename` asks for: letters,
    digits, '-' and '_' only, never a shipped protocol's key. `add_protocol` takes it when
    it is free, else the first free `<key>_2`, `<key>_3`, ..."""
    from apesim.protocol.loader import shipped_protocols

    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(filename).stem)[:60]
    stem = stem.strip("_") or "protocol"
    return f"{stem}_user" if stem in shipped_protocols() else stem


def add_protocol(ws: Workspace, text: str, filename: str) -> ProtocolInfo:
    """Validate protocol YAML and save it into the workspace's protocols folder under a key
    not yet taken (`protocol_key`): a protocol already there is never replaced, and the same
    text already saved under that key is found rather than copied. The returned
    `ProtocolInfo.key` says which key it got."""
    from apesim.protocol import parse_protocol

    lp = parse_protocol(text, filename)
    wanted = protocol_key(filename)
    data = text.encode("utf-8")
    folder = ws.protocols_dir
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=".adding-", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        for n in itertools.count(1):
            key = wanted if n == 1 else f"{wanted}_{n}"
            target = folder / f"{key}.yaml"
            if _claim(tmp, target):
                break
            with contextlib.suppress(OSError):
                if target.read_bytes() == data:
                    break  # this very text is already saved under this key
    finally:
        tmp.unlink(missing_ok=True)
    return ProtocolInfo(
        key,
        lp.protocol.name,
        lp.protocol.version,
        lp.protocol.regimen.type,
        "workspace",
        lp.fingerprint,
    )


def import_protocol(
    ws: Workspace,
    source: Any,
    *,
    source_name: str | None = None,
    limits: ReadLimits | None = None,
    trust: Any = None,
    beside: Any = (),
    require_signature: bool | None = None,
) -> ProtocolInfo:
    """Take only the protocol of a simulation package into the workspace's library (`ape
    import PKG --only protocol`): the package is validated completely first, the protocol is
    saved under the key `imported_<sim id>` (never a shipped protocol's; `_2`, ... if taken
    by another text), and the workspace's audit trail records it."""
    from apesim.package.importer import validated_report
    from apesim.workspace import layout

    # Every check of a full import, the signature policy included.
    report = validated_report(
        ws,
        source,
        source_name=source_name,
        limits=limits,
        trust=trust,
        beside=beside,
        require_signature=require_signature,
    )
    package = report.validated
    assert package is not None
    text = bytes(package.folder_files[layout.PROTOCOL]).decode("utf-8")
    info = add_protocol(ws, text, f"imported_{package.sim_id}.yaml")
    ws.append_workspace_event(
        "protocol_imported",
        {
            "protocol_key": info.key,
            "protocol_fingerprint": info.fingerprint,
            "sim_id": package.sim_id,
            "source_file": report.source_name,
            "package_sha256": report.sha256,
            "package_format": package.format,
        },
    )
    return info


def _claim(tmp: Path, target: Path) -> bool:
    """Give `tmp`'s finished content the name `target` only if no file has it (a hard link
    is atomic and never replaces); False when the name is taken."""
    try:
        os.link(tmp, target)
    except FileExistsError:
        return False
    except OSError:  # a file system without hard links: exclusive create, then copy
        try:
            with target.open("xb") as handle:
                handle.write(tmp.read_bytes())
        except FileExistsError:
            return False
    return True


# -- runs ----------------------------------------------------------------------------------


def run_simulation(
    ws: Workspace,
    protocol: str | LoadedProtocol,
    params: SimulationParameters,
    *,
    name: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
    cluster: ClusterOptions | None = None,
) -> SimulationRecord:
    """Run a protocol and store the results atomically in the workspace (a full disk or a
    read-only workspace is a `StorageError`, and nothing of the run is left). With `cluster`
    the patients are simulated in blocks on a Dask cluster: the same files, byte for byte."""
    from apesim.runner import run_into  # numpy, pyarrow: loaded for a run only

    lp = get_protocol(protocol, ws) if isinstance(protocol, str) else protocol
    tables = None
    if cluster is not None:
        from apesim.distributed.run import distributed_tables  # Dask: for this run only

        tables = distributed_tables(lp, params, cluster, progress=progress)
    return run_into(
        ws, lp, params, name=name, chunk_size=chunk_size, progress=progress, tables=tables
    )


def convert_protocol_file(path: Path | str) -> ProtocolConversion:
    """An earlier-APE protocol file converted to APE's schema (read to at most its limit: a
    device such as /dev/zero has no end)."""
    from apesim.protocol.convert import MAX_EARLIER_BYTES, convert_protocol_text
    from apesim.safeload import read_at_most

    path = Path(path)
    try:
        raw = read_at_most(path, MAX_EARLIER_BYTES)
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file") from None
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read protocol file ({exc.strerror})") from None
    return convert_protocol_text(raw, str(path))


PASSPHRASE_FILE_BYTES = 64 * 1024  # a passphrase is the first line of its file


def read_passphrase_file(path: Path | str) -> str:
    """The passphrase on the first line of a file (read to at most 64 KiB)."""
    from apesim.safeload import read_at_most

    path = Path(path)
    try:
        raw = read_at_most(path, PASSPHRASE_FILE_BYTES)
        first = raw[:PASSPHRASE_FILE_BYTES].decode("utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ApeError(f"{path}: cannot read the passphrase ({exc})") from None
    if len(raw) > PASSPHRASE_FILE_BYTES:
        raise ApeError(f"{path}: a passphrase file holds at most {PASSPHRASE_FILE_BYTES:,} bytes")
    if not first or not first[0]:
        raise ApeError(f"{path}: the passphrase file is empty")
    return first[0]


# -- sweeps ----------------------------------------------------------------------------------


def plan_sweep(ws: Workspace, path: Path | str) -> SweepPlan:
    """Read and validate a sweep file and every draw it makes (a `SweepError` names the
    file and the field); its `protocol` is a shipped or workspace protocol, or a YAML file
    (relative to the sweep file's folder)."""
    from apesim.safeload import read_at_most
    from apesim.sweep.plan import plan_sweep as make_plan
    from apesim.sweep.spec import MAX_SWEEP_BYTES, SweepError, parse_sweep

    path = Path(path)
    try:
        text = read_at_most(path, MAX_SWEEP_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise SweepError(f"{path}: no such sweep file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SweepError(f"{path}: cannot read the sweep file ({exc})") from None
    spec = parse_sweep(text, str(path))
    ref = spec.protocol
    nearby = path.parent / ref
    if ref.endswith((".yaml", ".yml")) and not Path(ref).is_absolute() and nearby.is_file():
        ref = str(nearby)
    try:
        base = get_protocol(ref, ws)
    except ProtocolError as exc:
        raise SweepError(f"{path}: protocol: {exc}") from None
    return make_plan(spec, text, base, str(path))


def run_sweep(
    ws: Workspace,
    plan: SweepPlan,
    *,
    cluster: ClusterOptions | None = None,
    progress: ProgressCallback | None = None,
) -> SweepRun:
    """Run the draws of a sweep the workspace does not hold yet, each an ordinary
    simulation; on a Dask cluster with `cluster`. Re-running resumes."""
    from apesim.sweep.run import run_sweep as run

    return run(ws, plan, cluster=cluster, progress=progress)


def list_sweeps(ws: Workspace) -> list[SweepInfo]:
    """The sweeps in the workspace, with how many of their draws are complete."""
    from apesim.sweep.store import list_sweeps as listed

    return listed(ws)


def sweep_report(ws: Workspace, sweep_id: str) -> SweepReport:
    """Outcomes across a sweep's completed draws (mean, 95% interval) and their
    sensitivity to each varied parameter."""
    from apesim.sweep.report import build_report
    from apesim.sweep.store import completed_draws, load_plan

    plan = load_plan(ws, sweep_id)
    done = completed_draws(ws.list(), plan)
    summaries = {i: load_simulation(ws, sim_id).summary for i, sim_id in done.items()}
    return build_report(plan, done, summaries)


def export_sweep(
    ws: Workspace,
    sweep_id: str,
    dest: Path | str,
    *,
    created: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Export a whole sweep's completed draws as one batch: `dest/<sweep id>/` with the
    sweep file, its plan and `<sweep id>.apebatch`, or the batch alone if `dest` ends in
    `.apebatch`."""
    from apesim.sweep.export import export_sweep as export

    return export(ws, sweep_id, dest, created=created, progress=progress)


# -- stored simulations ----------------------------------------------------------------------


def show_simulation(ws: Workspace, ref: str) -> dict[str, Any]:
    """Metadata and summary statistics, as `ape show --json` prints them."""
    sim = load_simulation(ws, ref)
    return {
        "simulation": sim.record.to_json(),
        "parameters": sim.parameters,
        "summary": sim.summary,
    }


@dataclass(frozen=True)
class AuditTrail:
    """A simulation's audit trail, checked: every event chained to the one before it, and
    the last one the head the registry keeps (an edit anywhere fails the check with
    `audit.altered`)."""

    record: SimulationRecord
    events: list[AuditEvent]

    @property
    def head(self) -> str:
        return self.events[-1].sha256

    def to_json(self) -> dict[str, Any]:
        return {
            "sim_id": self.record.sim_id,
            "chain": {"intact": True, "events": len(self.events), "head": self.head},
            "events": [
                {
                    "time": e.time,
                    "user": e.user,
                    "action": e.action,
                    "details": e.details,
                    "prev_sha256": e.prev_sha256,
                    "sha256": e.sha256,
                }
                for e in self.events
            ],
        }


def audit_trail(ws: Workspace, ref: str) -> AuditTrail:
    """A simulation's audit trail with its chain check (a `WorkspaceError` with the code
    `audit.altered` if the trail was edited outside APE)."""
    sim = load_simulation(ws, ref)
    return AuditTrail(sim.record, sim.audit_events())


@dataclass(frozen=True)
class Comparison:
    """The Compare page's table of several simulations: header rows (protocol, origin,
    seed), then the headline statistics, one formatted value per simulation each."""

    records: list[SimulationRecord]
    summaries: list[Summary]
    rows: list[tuple[str, list[str]]]

    @property
    def paired(self) -> bool:
        """All runs share one seed: patient i draws the same random numbers in each (the
        paired design of docs/model.md), so differences come from the protocols."""
        return len({r.seed for r in self.records}) == 1

    def to_json(self) -> dict[str, Any]:
        return {
            "simulations": [r.to_json() for r in self.records],
            "paired": self.paired,
            "rows": [{"statistic": label, "values": values} for label, values in self.rows],
            "summaries": self.summaries,
        }


def compare_simulations(ws: Workspace, refs: list[str]) -> Comparison:
    """Two or more stored simulations side by side (each by id, id prefix or name, once)."""
    from apesim.errors import ParameterError

    if len(refs) < 2:
        raise ParameterError("compare: give two or more simulations (ids, id prefixes or names)")
    sims = [load_simulation(ws, ref) for ref in refs]
    seen: dict[str, str] = {}
    for ref, sim in zip(refs, sims, strict=True):
        if sim.record.sim_id in seen:
            raise ParameterError(
                f"compare: {seen[sim.record.sim_id]!r} and {ref!r} are the same simulation "
                f"({sim.record.sim_id})"
            )
        seen[sim.record.sim_id] = ref
    records = [sim.record for sim in sims]
    summaries = [sim.summary for sim in sims]
    rows: list[tuple[str, list[str]]] = [
        ("Protocol", [f"{r.protocol_name} {r.protocol_version}" for r in records]),
        (
            "Origin",
            [
                f"{r.origin} {(r.imported_utc or '')[:10]}" if r.imported else r.origin
                for r in records
            ],
        ),
        ("Seed", [str(r.seed) for r in records]),
    ]
    statistics = [summary_rows(summary)[: len(SUMMARY_FIELDS)] for summary in summaries]
    for i, (label, _) in enumerate(statistics[0]):
        rows.append((label, [column[i][1] for column in statistics]))
    return Comparison(records, summaries, rows)


@dataclass(frozen=True)
class GarbageReport:
    """What `ape gc` removed, or in a dry run would remove, and under which age limit."""

    removals: list[Removal]
    applied: bool
    older_than: timedelta | None

    def to_json(self) -> dict[str, Any]:
        return {
            "applied": self.applied,
            "older_than_days": None
            if self.older_than is None
            else self.older_than.total_seconds() / 86400,
            "simulations": [r.to_json() for r in self.removals],
        }


def collect_garbage(
    ws: Workspace,
    *,
    older_than: timedelta | None = None,
    names: list[str] | tuple[str, ...] = (),
    apply: bool = False,
    now: datetime | None = None,
) -> GarbageReport:
    """The imported simulations imported more than `older_than` ago (else the workspace's
    retention setting), and the simulations `names` (any, run here or imported); removed
    only with `apply`, each recorded in the workspace's audit trail. `now` is the clock."""
    from apesim.errors import ParameterError
    from apesim.workspace import retention

    now = now or datetime.now(UTC)
    if older_than is None and not names:
        days = load_settings(ws.root).imported_retention_days
        if days is None:
            raise ParameterError(
                "gc: this workspace has no retention policy: give --imported-older-than AGE "
                "(e.g. 90d), name the simulations to remove, or set a policy with "
                "`ape workspace --set imported_retention_days=90`"
            )
        older_than = timedelta(days=days)
    removals = [Removal(ws.get(ref), "named") for ref in names]
    chosen = {r.record.sim_id for r in removals}
    if older_than is not None:
        for record in retention.due(ws.list(), older_than, now):
            if record.sim_id not in chosen:
                removals.append(Removal(record, "retention"))
                chosen.add(record.sim_id)
    if apply:
        retention.remove(ws, removals, now)
    return GarbageReport(removals, apply, older_than)


def validated_summary(report: PackageReport) -> Summary | None:
    """A package's summary statistics once recomputed from its tables (when it passed every
    check), else None: what a package merely declares is never shown as its statistics."""
    if not report.ok or report.validated is None:
        return None
    return report.validated.summary


def rerun_simulation(
    ws: Workspace,
    ref: str,
    *,
    name: str | None = None,
    progress: ProgressCallback | None = None,
) -> tuple[SimulationRecord, bool]:
    """Run a stored simulation's protocol text and parameters again, as a new simulation.

    Returns the new record and whether its tables are identical to the original's (they
    are, for the same engine version: a check of reproducibility). Imported simulations are
    read-only and refused.
    """
    from apesim.engine.simulate import SimulationParameters
    from apesim.protocol import parse_protocol

    original = load_simulation(ws, ref)
    ws.ensure_writable(original.record)
    lp = parse_protocol(original.protocol_text, f"{original.record.sim_id}/protocol.yaml")
    p = original.parameters
    params = SimulationParameters(
        patients=p["patients"],
        years=p["years"],
        seed=p["seed"],
        recruitment_months=p.get("recruitment_months", 0.0),
    )
    record = run_simulation(
        ws, lp, params, name=name or f"{original.record.name} (rerun)", progress=progress
    )
    again = load_simulation(ws, record.sim_id)
    identical = again.patients.equals(original.patients) and again.visits.equals(original.visits)
    return record, identical


def reproduce(
    ws: Workspace | None, ref: str, *, progress: ProgressCallback | None = None
) -> Reproduction:
    """Re-simulate a stored simulation (id, prefix or name) or a package file (.zip) from
    its recorded protocol, parameters, seed and model, in memory, and compare the tables:
    identical, or the first difference (table, patient, column). Writes nothing: imported
    simulations and packages are only read (a package is validated first)."""
    from apesim.errors import ReproduceError
    from apesim.reproduce import reproduce_package, reproduce_simulation

    path = Path(ref)
    if path.suffix.lower() == ".zip" and path.is_file():
        return reproduce_package(path, progress)
    try:
        if ws is None:
            raise WorkspaceError(f"{ref}: not a package file, and no workspace to look it up in")
        return reproduce_simulation(ws, ref, progress)
    except (SimulationNotFoundError, WorkspaceError):
        if not path.is_file():
            raise
        # a batch or an encrypted package is a file too: "no such simulation" would mislead
        raise ReproduceError(
            f"{ref}: not a package file (.zip): a batch's packages or an encrypted package "
            "are reproduced once imported (ape import, then ape reproduce SIM)",
            code="reproduce.not_a_package",
        ) from None


# -- reports -------------------------------------------------------------------------------


def write_report(
    source: str | Path,
    output: Path | str,
    *,
    ws: Workspace | Callable[[], Workspace | None] | None = None,
    base: Path | str | None = None,
    trust: dict[str, str] | None = None,
) -> Path:
    """Write one self-contained HTML report (`apesim.report`) of `source`: a package file
    when it names an existing file (read in place, validated, never imported; a
    differential one on `base` or `ws`'s base), else a simulation of `ws`. Returns the path
    written (a name without .html gets it)."""
    from apesim.report_sources import package_source, simulation_source
    from apesim.report_sources import write_report as write

    if Path(source).is_file():
        return write(package_source(source, ws=ws, base=base, trust=trust), output)
    workspace = ws() if callable(ws) else ws
    if workspace is None:
        raise SimulationNotFoundError(f"{source}: no such package file, and no workspace")
    return write(simulation_source(workspace, str(source)), output)


# -- signatures, keys and encryption (format 1.1) -------------------------------------------


def generate_key(
    name: str, *, age: bool = False, passphrase: str | None = None, keys: Path | None = None
) -> KeyInfo:
    """A new Ed25519 signing key (or, with `age`, an age identity) in the keyring."""
    return keyring.generate_key(name, age=age, passphrase=passphrase, directory=keys)


def list_keys(keys: Path | None = None) -> list[KeyInfo]:
    """The keyring's signing keys and age identities."""
    return keyring.list_keys(keys)


def keyring_dir(keys: Path | None = None) -> Path:
    return keyring.keyring_dir(keys)


def load_signing_key(
    name: str, passphrase: str | None = None, keys: Path | None = None
) -> SigningKey:
    """A signing key of the keyring, opened (`keys.passphrase_needed` if it needs one)."""
    return keyring.load_signing_key(name, passphrase, keys)


def signing_key_protected(name: str, keys: Path | None = None) -> bool:
    return keyring.find_key(name, keys).protected


def public_key_of(key_or_file: str, keys: Path | None = None) -> tuple[str, str | None]:
    """(`ape-ed25519:...`, the name it comes with) from a key, a `.pub` file, or the name of
    a keyring key."""
    from apesim.package.signature import PUBLIC_KEY_PREFIX
    from apesim.safeload import read_at_most

    if key_or_file.startswith(PUBLIC_KEY_PREFIX):
        return key_or_file, None
    path = Path(key_or_file)
    if not path.exists() and keyring.NAME_PATTERN.match(key_or_file):
        candidate = keyring.keyring_dir(keys) / f"{key_or_file}.pub"
        path = candidate if candidate.exists() else path
    try:
        raw = read_at_most(path, 64 * 1024)
        if len(raw) > 64 * 1024:
            raise KeyringError(f"{path}: too large for a public key file", code="trust.invalid")
        words = raw.decode("utf-8").split()
    except (OSError, UnicodeDecodeError):
        raise KeyringError(
            f"{key_or_file}: neither a public key (ape-ed25519:...), a .pub file nor a key "
            "of the keyring",
            code="trust.invalid",
        ) from None
    if not words:
        raise KeyringError(f"{path}: empty", code="trust.invalid")
    return words[0], " ".join(words[1:]) or path.stem


def trusted_keys(ws: Workspace) -> list[TrustedKey]:
    return trust.load_trust(ws.root / trust.TRUST_FILE)


def trust_key(ws: Workspace, key_or_file: str, name: str | None = None) -> TrustedKey:
    """Trust a public key in the workspace, under `name` (default: the one it comes with)."""
    public, given = public_key_of(key_or_file)
    from apesim.package.signature import key_id, parse_public_key

    try:
        kid = key_id(parse_public_key(public))
    except ValueError as exc:
        raise KeyringError(f"{public[:80]!r}: {exc}", code="trust.invalid") from None
    return trust.trust_key(ws.root, public, name or given or f"key {kid[:16]}")


def untrust_key(ws: Workspace, ref: str) -> TrustedKey:
    return trust.untrust_key(ws.root, ref)


def trust_list(ws: Workspace | Path | None, trust_file: Path | None = None) -> dict[str, str]:
    """Key id -> name: the workspace's trust list (a workspace, or its folder: read without
    opening the workspace), or the file given with --trust."""
    if trust_file is not None:
        if not trust_file.is_file():
            raise KeyringError(f"{trust_file}: no such trust file", code="trust.missing")
        return trust.trust_map(trust.load_trust(trust_file))
    if ws is None:
        return {}
    root = ws if isinstance(ws, Path) else ws.root
    return trust.trust_map(trust.load_trust(root / trust.TRUST_FILE))


def signature_policy(ws: Workspace) -> Settings:
    return trust.load_settings(ws.root)


def set_signature_policy(
    ws: Workspace,
    *,
    require_signature: bool | None = None,
    signing_key: str | None = None,
    clear_signing_key: bool = False,
    keys: Path | None = None,
) -> Settings:
    """Change the workspace's signature settings; the signing key must exist."""
    current = trust.load_settings(ws.root)
    if signing_key is not None:
        keyring.find_key(signing_key, keys)
    updated = Settings(
        require_signature=current.require_signature
        if require_signature is None
        else require_signature,
        signing_key=None if clear_signing_key else (signing_key or current.signing_key),
    )
    trust.save_settings(ws.root, updated)
    return updated


def signatures_beside(package: Path, extra: list[Path] | None = None) -> list[tuple[str, bytes]]:
    """The signature files kept beside a package (`<file>.dsse.json`, when it exists) and
    any given ones, read under the signature size limit (checked before reading)."""
    from apesim.package import format as fmt

    found = []
    auto = package.with_name(package.name + fmt.SIGNATURE_SUFFIX)
    for path in [*([auto] if auto.is_file() else []), *(extra or [])]:
        try:
            with path.open("rb") as fh:
                data = fh.read(fmt.SIGNATURE_MAX_BYTES + 1)
        except OSError as exc:
            raise KeyringError(
                f"{path}: cannot read the signature file ({exc.strerror})", code="signature.file"
            ) from None
        found.append((path.name, data))
    return found


def is_encrypted(source: Path | bytes) -> bool:
    """Whether the file (or an upload's bytes) is an age-encrypted package, by its first
    bytes, not its name."""
    from apesim.package.encryption import is_encrypted as check

    return check(source)


def parse_recipients(values: list[str]) -> tuple[str, ...]:
    from apesim.package.encryption import parse_recipients as parse

    return parse(values)


def identity_path(name_or_path: str, keys: Path | None = None) -> Path:
    return keyring.identity_path(name_or_path, keys)


@contextlib.contextmanager
def opened_package(
    source: Path | bytes,
    ws: Workspace | None = None,
    *,
    name: str | None = None,
    identities: list[Path] | None = None,
    identity_text: str | None = None,
    passphrase: str | None = None,
    max_bytes: int = 2 * 1024**3,
) -> Iterator[Path | bytes]:
    """The package `source` (a path, or an upload's bytes) as a reader takes it: as it is,
    or for an age file its plaintext, decrypted into `ws`'s staging area and removed from
    there before it is returned (nothing is left on any failure). Identities come from
    files, or as text (`AGE-SECRET-KEY-...`, the app's field)."""
    if not is_encrypted(source):
        yield source
        return
    from apesim.package.encryption import decrypted, load_identities, parse_identities

    shown = name or (source.name if isinstance(source, Path) else "package")
    keys = load_identities(identities or [])
    if identity_text:
        keys.extend(parse_identities(identity_text, "the identity"))
    if ws is None:
        ws = Workspace(workspace_location().path)
    with decrypted(
        source, shown, ws.staging(), identities=keys, passphrase=passphrase, max_bytes=max_bytes
    ) as plain:
        yield plain


def countersign_package(
    path: Path, key: SigningKey, output: Path | None = None, when: datetime | None = None
) -> Path:
    """Add a signature by `key` to the (valid) package at `path`, in place or as `output`;
    written to a temporary file beside the target and renamed."""
    from datetime import UTC, datetime

    from apesim.package.countersign import countersign
    from apesim.package.format import ReadLimits
    from apesim.package.source import load_source
    from apesim.storage import storage_errors

    moment = when or datetime.now(UTC).replace(microsecond=0)
    target = output or path
    # a missing file, a folder or one over the size limit: one line, before anything is made
    package = load_source(path, ReadLimits().max_total_bytes)
    if target.is_dir() or not target.parent.is_dir():
        raise WorkspaceError(
            f"{target}: is a folder; name the signed package's file"
            if target.is_dir()
            else f"{target.parent}: no such directory to write the signed package into"
        )
    signed = countersign(bytes(package.data), key, moment, source_name=path.name)
    with storage_errors(target, "writing the signed package"):
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(signed)
            os.chmod(name, 0o644)
            os.replace(name, target)
        except BaseException:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(name)
            raise
    return target


def key_id_of(key: SigningKey) -> str:
    """The key id (SHA-256 of the public key) of a signing key."""
    from apesim.package.signature import key_id

    return key_id(key.private.public_key())


def require_signature(report: PackageReport) -> None:
    """Raise `signature.required` / `signature.untrusted` unless a trusted key signed."""
    from apesim.package.signature import require

    if report.verdict is not None:
        require(report.verdict, report.source_name)


# -- many packages, and object storage ------------------------------------------------------


def export_many(
    ws: Workspace,
    refs: list[str],
    dest: str,
    *,
    every: bool = False,
    protocol: str | None = None,
    created: Any = None,
    overwrite: bool = False,
    sign: Sequence[SigningKey] = (),
    progress: ProgressCallback | None = None,
) -> BulkExport:
    """Export the simulations named (ids, id prefixes or names), all of them (`every`) or
    those run with a protocol (its key, file or name), into a folder, a `.apebatch` file or
    an object store (`s3://bucket/prefix/`, `gs://...`; `.../name.apebatch` for one batch
    object)."""
    from apesim.bulk import export_many as export
    from apesim.bulk import select_simulations

    fingerprint = None
    if protocol is not None:
        with contextlib.suppress(ProtocolError):
            fingerprint = get_protocol(protocol, ws).fingerprint
    records = select_simulations(
        ws, refs, every=every, protocol_fingerprint=fingerprint, protocol_key=protocol
    )
    return export(
        ws, records, dest, created=created, overwrite=overwrite, sign=sign, progress=progress
    )


def export_batch(
    ws: Workspace, refs: list[str], *, created: Any = None, sign: Sequence[SigningKey] = ()
) -> tuple[str, bytes]:
    """A `.apebatch` of the simulations named, in memory: (file name, bytes), e.g. for the
    app's download button."""
    from apesim.bulk import batch_bytes, select_simulations

    return batch_bytes(ws, select_simulations(ws, refs), created=created, sign=sign)


def list_remote(url: str) -> list[RemoteObject]:
    """The packages and batches under an object-store prefix (`s3://bucket/prefix/`), or
    the one object a URL names."""
    from apesim.remote.objects import list_objects

    return list_objects(url)


def inspect_remote(
    url: str, *, full: bool = False, limits: ReadLimits | None = None
) -> RemotePeek | PackageReport:
    """A remote package: by default a look from a few byte ranges (central directory,
    manifest, table footers; `RemotePeek.bytes_read` says how many), or with `full` the
    whole object downloaded and every check run (`PackageReport`)."""
    from apesim.errors import RemoteError
    from apesim.package import ReadLimits, inspect_package
    from apesim.remote.objects import list_objects
    from apesim.remote.peek import peek_package

    limits = limits or ReadLimits()
    if url.endswith("/"):
        raise RemoteError(f"{url}: name one object, not a prefix", code="remote.url")
    obj = list_objects(url)[0]
    if not full:
        return peek_package(obj, limits)
    return inspect_package(obj.download(limits.max_total_bytes), limits=limits, source_name=url)
