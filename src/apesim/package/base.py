"""The base of a differential package: found in the workspace or given as a package file,
for the reader (whose worker rebuilds the result on it) and for export (which names it).

A differential package names its base by the base's package SHA-256 and manifest digest and
by the digests of the two tables it is rebuilt on. On import the base is the simulation
imported from that package, or the simulation of that id (run here and exported, or
imported from another copy), provided its tables have those digests; or a package file
given with --base, validated like any package first.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from apesim.errors import ApeError, PackageFormatError, PackageIntegrityError
from apesim.package import format as fmt
from apesim.package.reader import PackageReport, inspect_package, validate_package
from apesim.package.source import PackageSource
from apesim.storage import storage_errors
from apesim.workspace import layout
from apesim.workspace.results import load_simulation
from apesim.workspace.store import SimulationRecord, Workspace

BASE_MISSING = "differential.base_missing"
# A workspace, or how to open one when a differential package needs its base (opening a
# workspace writes: a command that only reads a package opens it only then), or none.
LazyWorkspace = Workspace | Callable[[], Workspace | None] | None


@dataclass(frozen=True)
class Base:
    """A base simulation: its id, the package that names it and its two tables' bytes."""

    sim_id: str
    package_sha256: str
    manifest_sha256: str
    tables: dict[str, bytes]  # data/patients.parquet, data/visits.parquet -> bytes


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _folder_tables(ws: Workspace, record: SimulationRecord) -> dict[str, bytes]:
    folder = ws.path(record)
    with storage_errors(folder, "reading the base simulation"):
        return {
            fmt.PATIENTS: (folder / layout.PATIENTS).read_bytes(),
            fmt.VISITS: (folder / layout.VISITS).read_bytes(),
        }


def package_base(source: PackageSource, limits: fmt.ReadLimits | None = None) -> Base:
    """A base given as a package file: validated completely (in the reader's worker)."""
    report = validate_package(source, limits=limits)
    assert report.validated is not None
    files = report.validated.folder_files
    return Base(
        report.validated.sim_id,
        report.sha256,
        report.manifest_sha256,
        {fmt.PATIENTS: bytes(files[layout.PATIENTS]), fmt.VISITS: bytes(files[layout.VISITS])},
    )


def simulation_base(ws: Workspace, ref: str) -> Base:
    """A base in the workspace, for export: the package that last carried it (its latest
    `exported` or `imported` event naming a package and its manifest digest)."""
    sim = load_simulation(ws, ref)
    for event in reversed(sim.audit_events()):
        details = event.details
        if event.action in ("exported", "imported") and isinstance(details, dict):
            package, manifest = details.get("package_sha256"), details.get("manifest_sha256")
            if isinstance(package, str) and isinstance(manifest, str):
                return Base(sim.record.sim_id, package, manifest, _folder_tables(ws, sim.record))
    raise ApeError(
        f"--base {ref}: simulation {sim.record.sim_id} has not been shared as a package, so a "
        f"differential package cannot name it; export it first (ape export "
        f"{sim.record.sim_id}) and send that package, or give the base's package file",
        code="differential.base_unshared",
    )


def _named(manifest: Any) -> dict[str, Any]:
    """The base a differential manifest names (its reader checked the manifest)."""
    base = manifest.get("base") if isinstance(manifest, dict) else None
    if not isinstance(base, dict):
        raise PackageFormatError("manifest.json: base: missing field", code="manifest.schema")
    return base


def find_base(
    ws: Workspace | None,
    report: PackageReport,
    given: PackageSource | None = None,
    limits: fmt.ReadLimits | None = None,
) -> dict[str, bytes]:
    """The tables of the base `report`'s differential package names: from the package file
    `given`, else from the workspace. Refused when it is not there (`differential.base_missing`)
    or is not that base (`differential.base_mismatch`)."""
    named = _named(report.manifest)
    sim_id, package = str(named.get("sim_id")), str(named.get("package_sha256"))
    files = named.get("files") or {}
    wanted = {name: (files.get(name) or {}).get("sha256") for name in fmt.REBUILT_FILES}
    if given is not None:
        base = package_base(given, limits)
        if package != base.package_sha256 and named.get("manifest_sha256") != base.manifest_sha256:
            raise PackageIntegrityError(
                f"{report.source_name}: the base given is not the package it names "
                f"(simulation {sim_id}, package SHA-256 {package[:12]}…)",
                code="differential.base_mismatch",
            )
        return base.tables
    candidates: list[SimulationRecord] = []
    if ws is not None:
        found = ws.find_by_source(package)
        if found is not None:
            candidates.append(found)
        if ws.exists(sim_id):
            candidates.append(ws.get(sim_id))
    for record in candidates:
        tables = _folder_tables(ws, record) if ws is not None else {}
        if all(_sha256(tables[name]) == wanted[name] for name in fmt.REBUILT_FILES):
            return tables
    if candidates:
        raise PackageIntegrityError(
            f"{report.source_name}: simulation {candidates[0].sim_id} in this workspace is not "
            "the base this differential package was made from (its tables differ)",
            code="differential.base_mismatch",
        )
    raise PackageFormatError(
        f"{report.source_name}: its base, simulation {sim_id} (package SHA-256 "
        f"{package[:12]}…), is not in this workspace; import the base package first, or give "
        "it with --base FILE",
        code=BASE_MISSING,
    )


def inspect_with_base(
    source: PackageSource,
    *,
    ws: LazyWorkspace = None,
    base: PackageSource | None = None,
    limits: fmt.ReadLimits | None = None,
    source_name: str | None = None,
    trust: Mapping[str, str] | None = None,
) -> PackageReport:
    """`inspect_package` (signatures judged against `trust`), and for a differential
    package a second run on its base (from `base`, else the workspace, opened only then)
    that rebuilds and checks the full result. A base that cannot be found is the report's
    error."""
    report = inspect_package(source, limits=limits, source_name=source_name, trust=trust)
    if report.error is None or report.error.code != BASE_MISSING:
        return report
    if isinstance(source, (str, Path)) and source_name is None:
        source_name = Path(source).name
    try:
        workspace = ws() if callable(ws) and base is None else ws
        tables = find_base(
            workspace if isinstance(workspace, Workspace) else None, report, base, limits
        )
    except (PackageFormatError, PackageIntegrityError) as exc:
        report.error = exc
        report.checks = [
            type(c)(c.code, c.label, False, str(exc), exc.code) if c.code == "consistency" else c
            for c in report.checks
        ]
        return report
    return inspect_package(source, limits=limits, source_name=source_name, base=tables, trust=trust)


__all__ = [
    "Base",
    "LazyWorkspace",
    "find_base",
    "inspect_with_base",
    "package_base",
    "simulation_base",
]
