"""Differential packages (format 1.1): the checks of docs/package-format.md, "Differential
packages". Such a package holds only what differs from a base simulation; with the base's
tables (given by the importer) its handler rebuilds the full tables, checks them against the
full package's manifest, which it carries, and then runs every check of a full package on
the result, so that what is installed is exactly what importing the full package installs.

Everything here runs in the reader's worker process, like every check of a package: the
delta is untrusted, the base's tables are the workspace's own (or a validated package's).
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
from dataclasses import dataclass
from typing import Annotated, Any

import pyarrow as pa
from pydantic import BaseModel, ConfigDict, Field, StrictInt, StrictStr

from apesim.errors import PackageFormatError, PackageIntegrityError, PackageSecurityError
from apesim.package import format as fmt
from apesim.package.content import strict_json
from apesim.package.current import Content, CurrentFormat, read_table
from apesim.package.delta import DELTA_PATIENTS_SCHEMA, DELTA_VISITS_SCHEMA, rebuild
from apesim.package.handler import FormatHandler, ManifestFound, ValidatedPackage
from apesim.package.manifest import FileEntry, Manifest, check_version, parse_manifest
from apesim.results.metadata import SimulationMetadata
from apesim.results.parquet_io import write_table
from apesim.results.schema import METADATA_SCHEMA, PATIENTS_SCHEMA, VISITS_SCHEMA
from apesim.workspace.names import SIM_ID_PATTERN

_SHA256 = Annotated[StrictStr, Field(pattern=fmt.SHA256_PATTERN.pattern)]
_COUNT = Annotated[StrictInt, Field(ge=0)]
DIFFERENTIAL_LABEL = f"APE {fmt.DIFFERENTIAL_VERSION} differential"
_VERSION = tuple(int(p) for p in fmt.DIFFERENTIAL_VERSION.split("."))
DeltaTables = dict[str, pa.Table]  # package file name -> table


class BaseReference(BaseModel):
    """The base simulation a differential package was made from."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    sim_id: Annotated[StrictStr, Field(pattern=SIM_ID_PATTERN.pattern)]
    package_sha256: _SHA256  # the base's package file
    manifest_sha256: _SHA256  # its manifest.json
    patients: _COUNT
    files: dict[StrictStr, FileEntry]  # its data/patients.parquet and data/visits.parquet


class ResultReference(BaseModel):
    """The full result: the digest of the full package's manifest (carried as
    result/manifest.json), and its patients."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    manifest_sha256: _SHA256
    patients: _COUNT
    changed: _COUNT
    added: _COUNT
    removed: _COUNT


class DifferentialManifest(Manifest):
    format: StrictStr = fmt.DIFFERENTIAL_FORMAT
    base: BaseReference
    result: ResultReference


@dataclass(frozen=True)
class DifferentialContent:
    content: Content  # parameters, summary, protocol and audit trail: the full result's
    result: Manifest  # the full package's manifest


def _sha256(data: bytes | memoryview) -> str:
    return hashlib.sha256(data).hexdigest()


class DifferentialFormat(FormatHandler[DifferentialManifest, DifferentialContent, DeltaTables]):
    """A differential package, rebuilt on `base` (the base's data/patients.parquet and
    data/visits.parquet); without a base every check but the rebuild runs."""

    label = DIFFERENTIAL_LABEL

    def __init__(self, base: dict[str, bytes] | None = None) -> None:
        self.base = base

    def check_manifest(self, raw: Any) -> ManifestFound[DifferentialManifest]:
        version = raw.get("package_version") if isinstance(raw, dict) else None
        match = fmt.VERSION_PATTERN.match(version) if isinstance(version, str) else None
        if match and int(match.group(1)) != fmt.MAJOR:
            check_version(int(match.group(1)), int(match.group(2)))
        manifest = parse_manifest(raw, DifferentialManifest)
        if not SIM_ID_PATTERN.match(manifest.sim_id):
            raise PackageFormatError(
                f"manifest.json: sim_id {manifest.sim_id[:80]!r} is not a valid simulation id",
                code="manifest.sim_id",
            )
        if manifest.version < _VERSION:
            raise PackageFormatError(
                f"manifest.json: differential packages begin with format "
                f"{fmt.DIFFERENTIAL_VERSION}, not {manifest.package_version}",
                code="manifest.schema",
            )
        for name in fmt.REBUILT_FILES:
            if name not in manifest.base.files:
                raise PackageFormatError(
                    f"manifest.json: base.files: {name} is missing", code="manifest.schema"
                )
        warning = None
        if manifest.version > _VERSION:
            warning = (
                f"package format {manifest.package_version} is newer than this APE's "
                f"{fmt.DIFFERENTIAL_VERSION} for differential packages; files and fields it "
                "does not know were ignored"
            )
        label = f"APE {manifest.package_version} differential"
        return ManifestFound(manifest, label, warning)

    def check_files(self, manifest: DifferentialManifest, present: set[str]) -> None:
        newer = manifest.version > _VERSION
        known = {fmt.MANIFEST, *fmt.DIFFERENTIAL_REQUIRED}
        for name in sorted(present - {fmt.MANIFEST}):
            if name not in known and not newer:
                raise PackageSecurityError(
                    f"{name}: not a file of a differential package", code="name.unknown"
                )
        CurrentFormat().check_listed(manifest, present, fmt.DIFFERENTIAL_REQUIRED)

    def check_checksums(
        self, manifest: DifferentialManifest, contents: dict[str, memoryview]
    ) -> None:
        CurrentFormat().check_checksums(manifest, contents)

    def check_content(
        self,
        manifest: DifferentialManifest,
        contents: dict[str, memoryview],
        limits: fmt.ReadLimits,
    ) -> DifferentialContent:
        content = CurrentFormat().check_content(manifest, contents, limits)
        raw = contents[fmt.RESULT_MANIFEST]
        if _sha256(raw) != manifest.result.manifest_sha256:
            raise PackageIntegrityError(
                f"{fmt.RESULT_MANIFEST}: its SHA-256 is not the result digest manifest.json "
                "states (result.manifest_sha256)",
                code="differential.result_digest",
            )
        result = parse_manifest(
            strict_json(fmt.RESULT_MANIFEST, raw, limits), Manifest, fmt.RESULT_MANIFEST
        )
        if result.format != fmt.FORMAT_NAME or result.version[0] != fmt.MAJOR:
            raise PackageFormatError(
                f"{fmt.RESULT_MANIFEST}: not the manifest of a format {fmt.MAJOR}.x package",
                code="manifest.schema",
            )
        if result.sim_id != manifest.sim_id:
            raise PackageIntegrityError(
                f"{fmt.RESULT_MANIFEST}: sim_id differs from manifest.json",
                code="consistency.sim_id",
            )
        for name in (*fmt.REBUILT_FILES, *fmt.FOLDER_FILES, fmt.AUDIT):
            if name not in result.files:
                raise PackageFormatError(
                    f"{fmt.RESULT_MANIFEST}: files.{name} is missing", code="manifest.schema"
                )
        for name in (fmt.METADATA, fmt.PROTOCOL, fmt.PARAMETERS, fmt.SUMMARY, fmt.AUDIT):
            spec = result.files[name]
            if spec.size != len(contents[name]) or spec.sha256 != _sha256(contents[name]):
                raise PackageIntegrityError(
                    f"{name}: differs from the full result's ({fmt.RESULT_MANIFEST})",
                    code="differential.result_digest",
                )
        if result.files[fmt.PATIENTS].rows != manifest.result.patients:
            raise PackageIntegrityError(
                f"manifest.json: result.patients differs from {fmt.RESULT_MANIFEST}",
                code="differential.result_digest",
            )
        return DifferentialContent(content, result)

    def check_tables(
        self,
        manifest: DifferentialManifest,
        content: DifferentialContent,
        contents: dict[str, memoryview],
        limits: fmt.ReadLimits,
    ) -> DeltaTables:
        schemas = {
            fmt.DELTA_PATIENTS: DELTA_PATIENTS_SCHEMA,
            fmt.DELTA_VISITS: DELTA_VISITS_SCHEMA,
            fmt.METADATA: METADATA_SCHEMA,
        }
        tables: DeltaTables = {}
        for name, schema in schemas.items():
            spec = manifest.files[name]
            one_row = 1 if name == fmt.METADATA else None
            tables[name] = read_table(name, contents[name], schema, limits, spec.rows, one_row)
        return tables

    def metadata_json(self, tables: DeltaTables) -> dict[str, Any] | None:
        table = tables.get(fmt.METADATA)
        if table is None or table.num_rows != 1:
            return None
        try:
            return SimulationMetadata.from_table(table).to_json()
        except (ValueError, OverflowError):
            return None

    def declared_summary(
        self, contents: dict[str, memoryview], limits: fmt.ReadLimits
    ) -> dict[str, Any] | None:
        return CurrentFormat().declared_summary(contents, limits)

    def check_consistency(
        self,
        manifest: DifferentialManifest,
        content: DifferentialContent,
        tables: DeltaTables,
        contents: dict[str, memoryview],
    ) -> ValidatedPackage:
        base_ref, result = manifest.base, content.result
        if self.base is None:
            raise PackageFormatError(
                f"the base simulation {base_ref.sim_id} (package SHA-256 "
                f"{base_ref.package_sha256[:12]}…) is needed to rebuild this differential "
                "package: import the base package first, or give it with --base FILE",
                code="differential.base_missing",
            )
        limits = fmt.ReadLimits()
        for name in fmt.REBUILT_FILES:
            data, spec = self.base.get(name, b""), base_ref.files[name]
            if len(data) != spec.size or _sha256(data) != spec.sha256:
                raise PackageIntegrityError(
                    f"the base given is not the one this package was made from ({name} "
                    f"differs from base simulation {base_ref.sim_id}'s)",
                    code="differential.base_mismatch",
                )
        base_patients = read_table(
            fmt.PATIENTS, memoryview(self.base[fmt.PATIENTS]), PATIENTS_SCHEMA, limits
        )
        base_visits = read_table(
            fmt.VISITS, memoryview(self.base[fmt.VISITS]), VISITS_SCHEMA, limits
        )
        if base_patients.num_rows != base_ref.patients:
            raise PackageIntegrityError(
                f"manifest.json: base.patients is {base_ref.patients:,}, but the base has "
                f"{base_patients.num_rows:,}",
                code="differential.base_mismatch",
            )
        delta_patients = tables[fmt.DELTA_PATIENTS]
        patients, visits = rebuild(
            base_patients,
            base_visits,
            delta_patients,
            tables[fmt.DELTA_VISITS],
            manifest.result.patients,
            max_rows=limits.max_rows,
            where=fmt.DELTA_PATIENTS,
        )
        counts = _counts(base_ref.patients, manifest.result.patients, delta_patients.num_rows)
        stated = (manifest.result.changed, manifest.result.added, manifest.result.removed)
        if counts != stated:
            raise PackageIntegrityError(
                "manifest.json: result.changed, added and removed do not match the delta",
                code="differential.counts",
            )
        full: dict[str, memoryview] = {
            name: contents[name]
            for name in (fmt.METADATA, fmt.PROTOCOL, fmt.PARAMETERS, fmt.SUMMARY, fmt.AUDIT)
        }
        for name, table in ((fmt.PATIENTS, patients), (fmt.VISITS, visits)):
            spec = result.files[name]
            if table.num_rows != spec.rows:
                raise PackageIntegrityError(
                    f"the rebuilt {name} has {table.num_rows:,} rows, but the full result "
                    f"has {spec.rows if spec.rows is not None else 'no count'}",
                    code="differential.result_digest",
                )
            sink = io.BytesIO()
            write_table(sink, table)
            data = sink.getvalue()
            if len(data) != spec.size or _sha256(data) != spec.sha256:
                raise PackageIntegrityError(
                    f"the rebuilt {name} does not match the full result's SHA-256 "
                    f"({fmt.RESULT_MANIFEST})",
                    code="differential.result_digest",
                )
            full[name] = memoryview(data)
        # The result, as a full package: the table and consistency checks of format 1.x on
        # what is installed, read back as an import of the full package reads it.
        handler = CurrentFormat()
        full_tables = handler.check_tables(result, content.content, full, limits)
        validated = handler.check_consistency(result, content.content, full_tables, full)
        return dataclasses.replace(
            validated,
            format=f"APE {manifest.package_version} differential",
            created_by=manifest.created_by,
            created_date=manifest.created_date,
            ape_version=manifest.ape_version,
            import_details={
                "differential": {
                    "base_sim_id": base_ref.sim_id,
                    "base_package_sha256": base_ref.package_sha256,
                    "base_manifest_sha256": base_ref.manifest_sha256,
                    "result_manifest_sha256": manifest.result.manifest_sha256,
                    "changed": manifest.result.changed,
                    "added": manifest.result.added,
                    "removed": manifest.result.removed,
                }
            },
        )


def _counts(base: int, result: int, delta_rows: int) -> tuple[int, int, int]:
    """(changed, added, removed) patients, from the counts."""
    added = max(result - base, 0)
    return delta_rows - added, added, max(base - result, 0)


__all__ = ["DIFFERENTIAL_LABEL", "BaseReference", "DifferentialFormat", "DifferentialManifest"]
