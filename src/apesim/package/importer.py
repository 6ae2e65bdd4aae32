"""Import a package into a workspace: validate everything first, then install atomically.

A partial import (`only="summary"`) validates the whole package the same way and installs
the simulation's metadata, protocol, parameters, summary statistics and audit trail without
its tables (`SimulationRecord.summary_only`), for comparing many large simulations cheaply;
importing the full package later replaces it.

A full disk, read-only workspace or missing permission while the simulation is staged is a
`StorageError`, and the staging folder is removed: nothing partial is left.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from apesim import audit
from apesim.errors import DuplicateImportError, DuplicateSimulationError, PackageIntegrityError
from apesim.package.base import inspect_with_base
from apesim.package.format import ReadLimits
from apesim.package.reader import PackageReport, judge
from apesim.package.source import PackageSource
from apesim.storage import storage_errors
from apesim.workspace import layout
from apesim.workspace.store import SUMMARY_ONLY, SimulationRecord, Workspace
from apesim.workspace.trust import TRUST_FILE, load_settings, load_trust, trust_map

IMPORTED = "imported"
# What a partial import leaves out of the simulation's folder.
_TABLES = (layout.PATIENTS, layout.VISITS, layout.EXTRA_PATIENTS, layout.EXTRA_VISITS)


def _write(folder: Path, relative: str, data: bytes | memoryview) -> None:
    """Write one file of the simulation folder; `relative` is a name chosen by APE's code."""
    target = (folder / relative).resolve()
    if not target.is_relative_to(folder.resolve()):  # defence in depth: never outside
        raise AssertionError(f"refusing to write outside the staging folder: {relative}")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "xb") as fh:
        fh.write(data)


def _imported_details(report: PackageReport) -> dict[str, Any]:
    """The `imported` event's details: the handler's facts, then the importer's own keys,
    which win; `original_sim_id` is the package's id, which the handler states when ours
    differs from it."""
    package = report.validated
    assert package is not None
    details = {
        **package.import_details,
        "source_file": report.source_name,
        "package_sha256": report.sha256,
        "manifest_sha256": report.manifest_sha256,
        "package_format": package.format,
        "sim_id": package.sim_id,
        "original_sim_id": package.import_details.get("original_sim_id", package.sim_id),
        "original_created_by": package.created_by,
        "original_created_date": package.created_date,
        "original_ape_version": package.ape_version,
    }
    if package.import_note:
        details["note"] = package.import_note
    if report.verdict is not None:
        details["signature"] = {
            "status": report.verdict.status,
            "key_ids": [s.key_id for s in report.verdict.signatures],
            "trusted_as": sorted(report.verdict.trusted_names.values()),
        }
    return details


def validated_report(
    ws: Workspace,
    source: PackageSource,
    *,
    source_name: str | None = None,
    limits: ReadLimits | None = None,
    base: PackageSource | None = None,
    trust: Mapping[str, str] | None = None,
    beside: Sequence[tuple[str, bytes]] = (),
    require_signature: bool | None = None,
) -> PackageReport:
    """Every check of a package before anything of it is taken into the workspace (also by
    a partial import): the format's stages, its signatures judged against `trust` (default:
    the workspace's trust list) and, with `require_signature` (default: the workspace's
    setting), a trusted signature required. Raises the first failure's `PackageError`."""
    if trust is None:
        trust = trust_map(load_trust(ws.root / TRUST_FILE))
    if require_signature is None:
        require_signature = load_settings(ws.root).require_signature
    report = inspect_with_base(source, ws=ws, base=base, limits=limits, source_name=source_name)
    report = judge(report, trust, beside)  # the workspace's trust list, and any beside
    if report.error is not None:
        raise report.error
    if require_signature and report.verdict is not None:
        from apesim.package.signature import require

        require(report.verdict, report.source_name)
    return report


def import_package(
    ws: Workspace,
    source: PackageSource,
    *,
    source_name: str | None = None,
    limits: ReadLimits | None = None,
    base: PackageSource | None = None,
    trust: Mapping[str, str] | None = None,
    beside: Sequence[tuple[str, bytes]] = (),
    require_signature: bool | None = None,
    expect_sim_id: str | None = None,
    only: str | None = None,
) -> SimulationRecord:
    """Validate a package completely, then install it as a read-only imported simulation
    (with `only="summary"`, without its tables). A differential package is rebuilt on its
    base (`base`, a package file, else found in the workspace) and installs the same files
    as its full package.

    Raises a `PackageError` subclass for a bad package (the workspace is left unchanged) and
    `DuplicateImportError` when the package or its simulation is already here, unless this
    is the full import of a package imported as summary only, which it replaces. Signatures
    are judged against `trust` (default: the workspace's trust list); `require_signature`
    (default: the workspace's setting) refuses a package no trusted key signed. A batch's
    index names each package's simulation: `expect_sim_id` refuses a package that holds
    another (`batch.sim_id`).
    """
    if only not in (None, SUMMARY_ONLY):
        raise ValueError(f"only: {only!r} is not a partial import of a simulation")
    report = validated_report(
        ws,
        source,
        source_name=source_name,
        limits=limits,
        base=base,
        trust=trust,
        beside=beside,
        require_signature=require_signature,
    )
    package = report.validated
    assert package is not None
    if expect_sim_id is not None and package.sim_id != expect_sim_id:
        raise PackageIntegrityError(
            f"{report.source_name}: holds simulation {package.sim_id}, but the batch's index "
            f"says {expect_sim_id}",
            code="batch.sim_id",
        )
    replaced: SimulationRecord | None = None
    for found in (ws.find_by_source(report.sha256), _existing(ws, package.sim_id)):
        if found is not None and found.summary_only and only is None:
            replaced = found  # the full import of a summary-only one replaces it
    existing = ws.find_by_source(report.sha256)
    if existing is not None and existing != replaced:
        raise DuplicateImportError(
            f"{report.source_name}: already imported as {existing.sim_id} ({existing.name})",
            existing_sim_id=existing.sim_id,
        )
    if ws.exists(package.sim_id) and (replaced is None or replaced.sim_id != package.sim_id):
        found = ws.get(package.sim_id)
        raise DuplicateImportError(
            f"{report.source_name}: simulation {found.sim_id} ({found.name}) is already in "
            "this workspace",
            existing_sim_id=found.sim_id,
        )

    details = _imported_details(report)
    if only is not None:
        details["only"] = only
    if replaced is not None:
        details["replaces_summary_only"] = replaced.sim_id
    events = audit.append(package.audit_events, IMPORTED, details)
    meta = package.metadata
    with ws.staging() as folder:
        with storage_errors(ws.root, "importing the package"):
            for relative, data in package.folder_files.items():
                if only == SUMMARY_ONLY and relative.split("/")[0] in (*_TABLES, "source"):
                    continue
                _write(folder, relative, data)
            _write(folder, layout.AUDIT, audit.serialise(events))
        record = SimulationRecord.from_metadata(
            meta,
            imported=True,
            source_format=package.format,
            source_file=report.source_name,
            source_sha256=report.sha256,
            imported_utc=events[-1].time,
            created_by=package.created_by,
            partial=only,
        )
        try:  # a summary-only copy it replaces goes in the same transaction, or not at all
            return ws.install(folder, record, replacing=replaced)
        except DuplicateSimulationError:
            # Another import of the same package (or simulation) got past the checks above
            # while this one was staging, and was registered first: name it, as they would.
            winner = ws.find_by_source(report.sha256)
            if winner is not None:
                message = f"already imported as {winner.sim_id} ({winner.name})"
            elif ws.exists(package.sim_id):
                winner = ws.get(package.sim_id)
                message = f"simulation {winner.sim_id} ({winner.name}) is already in this workspace"
            else:
                raise  # the winner is gone again
            raise DuplicateImportError(
                f"{report.source_name}: {message}", existing_sim_id=winner.sim_id
            ) from None


def _existing(ws: Workspace, sim_id: str) -> SimulationRecord | None:
    return ws.get(sim_id) if ws.exists(sim_id) else None
