"""Export of a differential package: only the patients (and their visits) that differ from a
base simulation, with the full package's small files and manifest, so that the importer can
rebuild exactly the files the full package would install.

Before writing, the exporter rebuilds the result from the base and the delta and compares it
byte for byte with the simulation's own tables; when that does not hold (tables written by
another Parquet writer), or when the differential package would not be much smaller than the
full one (more than `DIFFERENTIAL_MAX_SHARE` of its size), it writes the full package
instead and says why.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq

from apesim import __version__, audit
from apesim.package import format as fmt
from apesim.package.base import Base, package_base, simulation_base
from apesim.package.delta import compute_delta, rebuild
from apesim.package.differential import (
    BaseReference,
    DifferentialManifest,
    ResultReference,
)
from apesim.package.manifest import FileEntry, columns_of
from apesim.package.readme import render_differential_readme
from apesim.package.writer import (
    ExportResult,
    PreparedPackage,
    created_moment,
    exported_details,
    prepare_package,
    write_entries,
    write_target,
)
from apesim.progress import ProgressCallback
from apesim.results.metadata import iso_utc
from apesim.results.parquet_io import write_table
from apesim.workspace.results import SimulationResults, load_simulation
from apesim.workspace.store import Workspace

_EXPORTED = "exported"


@dataclass(frozen=True)
class DifferentialExport:
    """What `export_differential` wrote: the file, whether it is differential, and if not
    why (`fallback`); the full package's size for comparison."""

    result: ExportResult
    differential: bool
    full_size: int
    fallback: str | None = None
    changed: int = 0
    added: int = 0
    removed: int = 0

    @property
    def share(self) -> float:
        return self.result.size / self.full_size if self.full_size else 1.0


def file_entry(name: str, data: bytes) -> FileEntry:
    """A manifest entry: size and SHA-256, and for Parquet its rows and columns."""
    digest = hashlib.sha256(data).hexdigest()
    if not name.endswith(".parquet"):
        return FileEntry(size=len(data), sha256=digest)
    parquet = pq.ParquetFile(pa.BufferReader(data))
    rows, columns = int(parquet.metadata.num_rows), columns_of(parquet.schema_arrow)
    return FileEntry(size=len(data), sha256=digest, rows=rows, columns=columns)


def _bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    write_table(sink, table)
    return sink.getvalue()


def _table(data: bytes) -> pa.Table:
    return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)


def _zip(contents: dict[str, bytes], order: tuple[str, ...], moment: datetime) -> bytes:
    sink = io.BytesIO()
    write_entries(sink, contents, order, moment)
    return sink.getvalue()


def _differential_contents(
    sim: SimulationResults, full: PreparedPackage, base: Base, created_by: str
) -> tuple[dict[str, bytes], DifferentialManifest] | str:
    """The differential package's files and manifest, or why there is none."""
    base_patients, base_visits = _table(base.tables[fmt.PATIENTS]), _table(base.tables[fmt.VISITS])
    patients_bytes, visits_bytes = full.contents[fmt.PATIENTS], full.contents[fmt.VISITS]
    try:
        delta = compute_delta(
            base_patients, base_visits, _table(patients_bytes), _table(visits_bytes)
        )
    except ValueError as exc:
        return f"the tables cannot be compared by patient ({exc})"
    delta_patients, delta_visits = _bytes(delta.patients), _bytes(delta.visits)
    patients, visits = rebuild(
        base_patients,
        base_visits,
        _table(delta_patients),
        _table(delta_visits),
        delta.result_patients,
        max_rows=fmt.ReadLimits().max_rows,
    )
    if _bytes(patients) != patients_bytes or _bytes(visits) != visits_bytes:
        return (
            "its tables cannot be rebuilt byte for byte from the base here (they were written "
            "by another version of the Parquet writer)"
        )
    contents = {
        fmt.DELTA_PATIENTS: delta_patients,
        fmt.DELTA_VISITS: delta_visits,
        fmt.RESULT_MANIFEST: full.manifest,
        **{
            name: full.contents[name]
            for name in (fmt.METADATA, fmt.PROTOCOL, fmt.PARAMETERS, fmt.SUMMARY, fmt.AUDIT)
        },
    }
    contents[fmt.README] = render_differential_readme(
        sim.metadata,
        base_sim_id=base.sim_id,
        base_package_sha256=base.package_sha256,
        changed=delta.changed,
        added=delta.added,
        removed=delta.removed,
        packaged=iso_utc(full.moment),
        created_by=created_by,
        ape_version=__version__,
    ).encode("utf-8")
    files = {name: file_entry(name, data) for name, data in contents.items()}
    manifest = DifferentialManifest(
        package_version=fmt.DIFFERENTIAL_VERSION,
        ape_version=__version__,
        created_date=iso_utc(full.moment),
        created_by=created_by,
        sim_id=sim.record.sim_id,
        files=dict(sorted(files.items())),
        base=BaseReference(
            sim_id=base.sim_id,
            package_sha256=base.package_sha256,
            manifest_sha256=base.manifest_sha256,
            patients=base_patients.num_rows,
            files={
                name: FileEntry(size=len(data), sha256=hashlib.sha256(data).hexdigest())
                for name, data in base.tables.items()
            },
        ),
        result=ResultReference(
            manifest_sha256=hashlib.sha256(full.manifest).hexdigest(),
            patients=delta.result_patients,
            changed=delta.changed,
            added=delta.added,
            removed=delta.removed,
        ),
    )
    contents[fmt.MANIFEST] = manifest.to_json().encode("utf-8")
    return contents, manifest


def export_differential(
    ws: Workspace,
    ref: str,
    dest: Path | str | BinaryIO,
    base: str | Path,
    *,
    created: datetime | None = None,
    progress: ProgressCallback | None = None,
    overwrite: bool = False,
    max_share: float = fmt.DIFFERENTIAL_MAX_SHARE,
) -> DifferentialExport:
    """Write simulation `ref` as a differential package on `base` (a simulation of the
    workspace that was shared as a package, or the base's package file), or as a full
    package when that is not much larger or the delta cannot be rebuilt exactly."""
    sim = load_simulation(ws, ref)
    given = Path(base)
    found = package_base(given) if given.suffix == ".zip" and given.is_file() else None
    if found is None:
        found = simulation_base(ws, str(base))
    created_by = audit.current_user()
    full = prepare_package(sim, created_moment(created), created_by)
    full_zip = _zip(full.contents, fmt.ENTRY_ORDER, full.moment)
    made = _differential_contents(sim, full, found, created_by)
    fallback: str | None = made if isinstance(made, str) else None
    if not isinstance(made, str):
        contents, manifest = made
        package = _zip(contents, fmt.DIFFERENTIAL_ORDER, full.moment)
        if len(package) > max_share * len(full_zip):
            fallback = (
                f"the differential package would be {len(package) / len(full_zip):.0%} of the "
                f"full package (more than {max_share:.0%})"
            )
    if fallback is not None:
        filename, data = full.filename, full_zip
        details_extra: dict[str, object] = {"differential_refused": fallback}
        manifest_bytes = full.manifest
        counts = (0, 0, 0)
    else:
        filename = fmt.differential_filename(sim.record.sim_id, full.moment.strftime("%Y%m%d"))
        data, manifest_bytes = package, contents[fmt.MANIFEST]
        details_extra = {
            "differential": {
                "base_sim_id": found.sim_id,
                "base_package_sha256": found.package_sha256,
                "result_manifest_sha256": manifest.result.manifest_sha256,
            }
        }
        counts = (manifest.result.changed, manifest.result.added, manifest.result.removed)

    def write(target: BinaryIO) -> None:
        target.write(data)
        if progress is not None:
            progress(len(data), len(data))

    def record(result: ExportResult) -> None:
        details = exported_details(result, full.moment, manifest_bytes)
        ws.append_audit(sim.record, _EXPORTED, {**details, **details_extra})

    result = write_target(dest, filename, write, record, overwrite=overwrite)
    return DifferentialExport(result, fallback is None, len(full_zip), fallback, *counts)


__all__ = ["DifferentialExport", "export_differential"]
