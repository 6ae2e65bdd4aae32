"""What `ape report` shows, gathered from a stored simulation or a package file, and the
report written to its file (`report.py` renders it).

A stored simulation's checks are those its package would pass: the package is made in
memory (nothing recorded, nothing written) and validated like one from a stranger. A
package's are its own validation; an invalid package's report shows the checks and no
figures.
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from apesim import analysis, audit
from apesim.errors import ApeError
from apesim.package.base import LazyWorkspace
from apesim.package.reader import PackageReport, inspect_package
from apesim.package.view import PackageView
from apesim.package.writer import created_moment, prepare_package
from apesim.report import ReportCheck, ReportSource, render_report
from apesim.results.metadata import iso_utc
from apesim.storage import storage_errors
from apesim.workspace.results import load_simulation
from apesim.workspace.store import Workspace


def _checks(report: PackageReport) -> list[ReportCheck]:
    return [ReportCheck(c.label, c.passed, c.message) for c in report.checks]


def simulation_source(ws: Workspace, ref: str) -> ReportSource:
    """A stored simulation, its checks those of its package (made in memory)."""
    sim = load_simulation(ws, ref)
    events = sim.audit_events()  # checked against the registry's head
    prepared = prepare_package(sim, created_moment(), audit.current_user())
    sink = io.BytesIO()
    prepared.write_zip(sink)
    report = inspect_package(sink.getvalue(), source_name=prepared.filename)
    record, meta = sim.record, sim.metadata
    chain = "Audit trail: every event chained to the one before, the last as recorded"
    checks = [ReportCheck(chain, True), *_checks(report)]
    origin = f"imported from {record.source_file or 'a package'}" if record.imported else "run here"
    return ReportSource(
        name=record.name,
        sim_id=record.sim_id,
        protocol_name=meta.protocol_name,
        protocol_version=meta.protocol_version,
        protocol_fingerprint=meta.protocol_fingerprint,
        patients_count=record.patients,
        years=record.years,
        seed=record.seed,
        created_utc=iso_utc(meta.created_utc),
        created_by=record.created_by or "unknown",
        origin=f"Workspace simulation ({origin})",
        summary=sim.summary,
        patients=sim.patients,
        visits=sim.visit_columns(analysis.VISIT_COLUMNS),
        protocol_text=sim.protocol_text,
        audit_events=events,
        checks=checks,
        valid=report.ok,
    )


def package_source(
    path: Path | str,
    *,
    ws: LazyWorkspace = None,
    base: Path | str | None = None,
    trust: Mapping[str, str] | None = None,
) -> ReportSource:
    """A package file, validated (its signatures judged against `trust`); its tables read
    in place from the ZIP."""
    view = PackageView.open(path, ws=ws, base=base, trust=trust)
    report = view.report
    verdict = report.verdict.summary() if report.verdict is not None else None
    shown = f"Package {Path(path).name} ({report.format}, SHA-256 {report.sha256})"
    if not view.ok:
        known = report.metadata or {}
        return ReportSource(
            name=str(known.get("name") or Path(path).name),
            sim_id=str(known.get("sim_id") or "–"),
            protocol_name=str(known.get("protocol_name") or "–"),
            protocol_version=str(known.get("protocol_version") or ""),
            protocol_fingerprint=str(known.get("protocol_fingerprint") or "–"),
            patients_count=int(known.get("patients") or 0),
            years=float(known.get("years") or 0),
            seed=int(known.get("seed") or 0),
            created_utc=str(known.get("created_utc") or "–"),
            created_by=str(report.created_by or "unknown"),
            origin=shown,
            summary=None,
            patients=None,  # not read: the figures are not shown
            visits=None,
            protocol_text="",
            audit_events=[],
            checks=_checks(report),
            valid=False,
        )
    meta = view.metadata
    try:
        return ReportSource(
            name=meta.name,
            sim_id=meta.sim_id,
            protocol_name=meta.protocol_name,
            protocol_version=meta.protocol_version,
            protocol_fingerprint=meta.protocol_fingerprint,
            patients_count=meta.patients,
            years=meta.years,
            seed=meta.seed,
            created_utc=iso_utc(meta.created_utc),
            created_by=report.created_by or "unknown",
            origin=shown,
            summary=view.summary,
            patients=view.patients,
            visits=view.visit_columns(analysis.VISIT_COLUMNS),
            protocol_text=view.protocol_text,
            audit_events=view.audit_events,
            checks=_checks(report),
            valid=True,
            signature=verdict,
        )
    finally:
        view.close()


def write_report(source: ReportSource, target: Path | str) -> Path:
    """Write the report to `target` (a name without .html gets it), whole or not at all."""
    path = Path(target)
    if path.is_dir():
        raise ApeError(f"{path}: is a folder; give the report's file name (-o report.html)")
    if path.suffix.lower() not in (".html", ".htm"):
        path = path.with_name(path.name + ".html")
    text = render_report(source)
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise ApeError(f"{folder}: no such directory for the report")
    with storage_errors(folder, f"writing the report {path.name}"):
        fd, partial = tempfile.mkstemp(dir=folder, prefix=".ape-report-", suffix=".partial")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(text)
                if hasattr(os, "fchmod"):  # a report is for sharing: the umask's mode
                    mask = os.umask(0)
                    os.umask(mask)
                    os.fchmod(fh.fileno(), 0o666 & ~mask)
            os.replace(partial, path)
        except BaseException:
            Path(partial).unlink(missing_ok=True)
            raise
    return path


__all__ = ["package_source", "simulation_source", "write_report"]
