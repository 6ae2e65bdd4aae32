"""Format 1.x of APE simulation packages: the checks of docs/package-format.md."""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa

from apesim import audit
from apesim.errors import (
    PackageError,
    PackageFormatError,
    PackageIntegrityError,
    PackageLimitError,
    PackageSecurityError,
    ProtocolError,
)
from apesim.limits import MAX_YEARS
from apesim.package import format as fmt
from apesim.package.checks import (
    VisitFacts,
    VisitPass,
    agree,
    check_schema,
    check_sha256,
    check_tables_agree,
    check_values,
    first_difference,
    patient_ids_proven,
)
from apesim.package.content import open_parquet, safe_yaml, strict_json, strict_text
from apesim.package.described import check_description
from apesim.package.facts import PackageFacts
from apesim.package.handler import FormatHandler, ManifestFound, ValidatedPackage
from apesim.package.manifest import (
    Manifest,
    check_text,
    check_version,
    columns_of,
    parse_manifest,
)
from apesim.package.preview import check_preview
from apesim.protocol.loader import LoadedProtocol, protocol_from_data
from apesim.results.metadata import SimulationMetadata
from apesim.results.schema import (
    METADATA_SCHEMA,
    PATIENTS_SCHEMA,
    VISITS_SCHEMA,
)
from apesim.results.stats import SummaryPass
from apesim.results.summary import Summary
from apesim.workspace.names import SIM_ID_PATTERN, is_valid_sim_name

SCHEMAS = {fmt.PATIENTS: PATIENTS_SCHEMA, fmt.VISITS: VISITS_SCHEMA, fmt.METADATA: METADATA_SCHEMA}
_PARAMETER_TYPES = {"patients": int, "years": float, "seed": int, "recruitment_months": float}


def read_table(
    name: str,
    data: memoryview,
    expected: pa.Schema,
    limits: fmt.ReadLimits,
    rows: int | None = None,
    max_rows: int | None = None,
) -> pa.Table:
    """A table of the package with exactly the schema the format specifies."""
    schema, batches = open_table(name, data, expected, limits, rows, max_rows)
    return pa.Table.from_batches(list(batches), schema=schema)


def open_table(
    name: str,
    data: memoryview,
    expected: pa.Schema,
    limits: fmt.ReadLimits,
    rows: int | None = None,
    max_rows: int | None = None,
) -> tuple[pa.Schema, Iterator[pa.RecordBatch]]:
    """A table of the package with exactly the schema the format specifies, batch by batch."""
    schema, batches = open_parquet(
        name,
        data,
        limits,
        rows=rows,
        max_rows=max_rows,
        expected=expected,
        check_schema=lambda schema: check_schema(name, schema, expected),
    )
    check_schema(name, schema, expected)
    return schema, batches


@dataclass(frozen=True)
class Content:
    """The package's JSON, protocol and audit trail, parsed and checked."""

    parameters: dict[str, Any]
    summary: dict[str, Any]
    protocol: LoadedProtocol
    audit_events: list[audit.AuditEvent]
    readme: str
    # Format 1.1's self-description (None in a package of format 1.0): the parsed JSON.
    datapackage: Any = None
    ro_crate: Any = None
    bag: dict[str, bytes] = field(default_factory=dict)  # the BagIt files, as written


@dataclass(frozen=True)
class Tables:
    """The package's tables once read: patients and metadata decoded; the visits table read
    in one pass as it was decoded (`checks.VisitPass`), never held whole."""

    patients: pa.Table
    metadata: pa.Table
    visits: VisitFacts
    summary: Summary | None  # recomputed in that pass; None if the tables did not allow it


def _label(manifest: Manifest) -> str:
    return f"APE {manifest.package_version}"


class CurrentFormat(FormatHandler[Manifest, Content, Tables]):
    """APE simulation package, format 1.x."""

    label = f"APE {fmt.PACKAGE_VERSION}"

    def check_manifest(self, raw: Any) -> ManifestFound[Manifest]:
        if isinstance(raw, dict) and raw.get("format", fmt.FORMAT_NAME) != fmt.FORMAT_NAME:
            raise PackageFormatError(
                f"manifest.json: format {raw.get('format')!r} is not {fmt.FORMAT_NAME!r}",
                code="manifest.schema",
            )
        if isinstance(raw, dict) and isinstance(raw.get("package_version"), str):
            match = fmt.VERSION_PATTERN.match(raw["package_version"])
            if match and int(match.group(1)) != fmt.MAJOR:  # another major: its schema may differ
                check_version(int(match.group(1)), int(match.group(2)))
        manifest: Manifest = parse_manifest(raw)
        if not SIM_ID_PATTERN.match(manifest.sim_id):
            raise PackageFormatError(
                f"manifest.json: sim_id {manifest.sim_id[:80]!r} is not a valid simulation "
                "id (letters, digits, '_', '.', '-')",
                code="manifest.sim_id",
            )
        return ManifestFound(manifest, _label(manifest), check_version(*manifest.version))

    def check_files(self, manifest: Manifest, present: set[str]) -> None:
        minor = manifest.version[1]
        newer_minor = minor > fmt.MINOR  # may hold files this APE does not know
        known = fmt.known_files(minor)
        signatures = check_signature_names(manifest, present)
        for name in sorted(present - {fmt.MANIFEST} - signatures):
            if name not in known and not newer_minor:
                raise PackageSecurityError(
                    f"{name}: not a file of package format {manifest.package_version}",
                    code="name.unknown",
                )
        self.check_listed(manifest, present - signatures, fmt.required_files(minor))

    @staticmethod
    def check_listed(manifest: Manifest, present: set[str], required: tuple[str, ...]) -> None:
        """Every file present is listed in the manifest and every listed and `required` file
        present."""
        listed = set(manifest.files)
        for name in sorted(present - {fmt.MANIFEST}):
            if name not in listed:
                raise PackageIntegrityError(
                    f"{name}: present but not listed in manifest.json", code="file.unlisted"
                )
        for name in sorted(listed):
            if name not in present:
                raise PackageIntegrityError(
                    f"{name}: listed in manifest.json but missing", code="file.missing"
                )
        for name in required:
            if name not in present:
                raise PackageFormatError(f"{name}: required file is missing", code="file.missing")

    def check_checksums(self, manifest: Manifest, contents: dict[str, memoryview]) -> None:
        for name, spec in sorted(manifest.files.items()):
            data = contents[name]
            if len(data) != spec.size:
                raise PackageIntegrityError(
                    f"{name}: {len(data):,} bytes, but the manifest says {spec.size:,}",
                    code="checksum.size",
                )
            check_sha256(name, data, spec.sha256)

    def check_content(
        self, manifest: Manifest, contents: dict[str, memoryview], limits: fmt.ReadLimits
    ) -> Content:
        params = strict_json(fmt.PARAMETERS, contents[fmt.PARAMETERS], limits)
        summary = strict_json(fmt.SUMMARY, contents[fmt.SUMMARY], limits)
        if not isinstance(params, dict):
            raise PackageFormatError(
                "parameters.json: must be a JSON object", code="parameters.schema"
            )
        for key, kind in _PARAMETER_TYPES.items():
            value = params.get(key)
            ok = isinstance(value, (int, float)) if kind is float else isinstance(value, int)
            if not ok or isinstance(value, bool):
                raise PackageFormatError(
                    f"parameters.json: {key}: expected a {kind.__name__}", code="parameters.schema"
                )
        if not isinstance(summary, dict):
            raise PackageFormatError(
                "summary_stats.json: must be a JSON object", code="summary.schema"
            )
        text = strict_text(fmt.PROTOCOL, contents[fmt.PROTOCOL])
        data = safe_yaml(fmt.PROTOCOL, text, limits)
        if isinstance(data, dict):  # the schema refuses these too; this names the rule
            for key in ("name", "version"):
                if isinstance(data.get(key), str):
                    check_text(fmt.PROTOCOL, key, data[key])
        try:
            protocol = protocol_from_data(data, text, fmt.PROTOCOL)
        except ProtocolError as exc:
            raise PackageFormatError(str(exc), code="protocol.invalid") from None
        raw_audit = bytes(contents[fmt.AUDIT])
        try:
            events = audit.parse(raw_audit)
        except audit.BrokenChainError as exc:
            raise PackageIntegrityError(f"audit_log.json: {exc}", code="audit.chain") from None
        except ValueError as exc:
            raise PackageFormatError(f"audit_log.json: {exc}", code="audit.invalid") from None
        if audit.serialise(events) != raw_audit:
            raise PackageFormatError(
                "audit_log.json: not in the canonical one-event-per-line form",
                code="audit.noncanonical",
            )
        readme = strict_text(fmt.README, contents[fmt.README])
        described = {
            name: strict_json(name, contents[name], limits)
            for name in (fmt.DATAPACKAGE, fmt.RO_CRATE)
            if name in contents
        }
        bag = {}
        for name in (fmt.BAGIT, fmt.BAG_MANIFEST, fmt.BAG_TAGMANIFEST):
            if name in contents:
                strict_text(name, contents[name])
                bag[name] = bytes(contents[name])
        return Content(
            params,
            summary,
            protocol,
            events,
            readme,
            described.get(fmt.DATAPACKAGE),
            described.get(fmt.RO_CRATE),
            bag,
        )

    def check_tables(
        self,
        manifest: Manifest,
        content: Content,
        contents: dict[str, memoryview],
        limits: fmt.ReadLimits,
    ) -> Tables:
        for name, schema in SCHEMAS.items():
            spec = manifest.files[name]
            if spec.columns is not None and spec.columns != columns_of(schema):
                raise PackageFormatError(
                    f"manifest.json: files.{name}.columns differ from the format's schema",
                    code="manifest.schema",
                )

        def table(name: str, max_rows: int | None = None) -> pa.Table:
            spec = manifest.files[name]
            return read_table(name, contents[name], SCHEMAS[name], limits, spec.rows, max_rows)

        metadata = table(fmt.METADATA, max_rows=1)  # refused before it is decoded
        patients = table(fmt.PATIENTS)
        # The statistics are recomputed in the same pass when the checks they rely on will
        # pass (the ids 0..n-1, a duration in range); else the consistency stage fails first.
        years = _years(metadata)
        summary = (
            SummaryPass(patients, years)
            if years is not None and patient_ids_proven(patients)
            else None
        )
        visit_pass = VisitPass(patients.num_rows, summary)
        _, batches = open_table(
            fmt.VISITS, contents[fmt.VISITS], VISITS_SCHEMA, limits, manifest.files[fmt.VISITS].rows
        )
        for batch in batches:
            visit_pass.add(batch)
        facts = visit_pass.facts()
        clean = facts.counts is not None
        return Tables(patients, metadata, facts, summary.summary() if summary and clean else None)

    def metadata_json(self, tables: Tables) -> dict[str, Any] | None:
        table = tables.metadata
        if table.num_rows != 1:
            return None
        return _metadata(table).to_json()

    def declared_summary(
        self, contents: dict[str, memoryview], limits: fmt.ReadLimits
    ) -> dict[str, Any] | None:
        if fmt.SUMMARY not in contents:
            return None
        try:
            summary = strict_json(fmt.SUMMARY, contents[fmt.SUMMARY], limits)
        except PackageError:
            return None
        return summary if isinstance(summary, dict) else None

    def check_consistency(
        self,
        manifest: Manifest,
        content: Content,
        tables: Tables,
        contents: dict[str, memoryview],
    ) -> ValidatedPackage:
        patients, visits = tables.patients, tables.visits
        meta_table = tables.metadata
        if meta_table.num_rows != 1:
            raise PackageIntegrityError(
                "data/metadata.parquet: must hold exactly one row", code="consistency.metadata"
            )
        meta = _metadata(meta_table)
        for key in ("name", "protocol_name", "protocol_version", "engine_version"):
            check_text(fmt.METADATA, key, getattr(meta, key))  # sim_id: the manifest's pattern
        if not is_valid_sim_name(meta.name):
            raise PackageIntegrityError(
                "data/metadata.parquet: name must be 1 to 200 printable characters",
                code="consistency.name",
            )
        protocol, params = content.protocol, content.parameters
        agree(
            meta.sim_id == manifest.sim_id,
            "data/metadata.parquet: sim_id differs from manifest.json",
            "consistency.sim_id",
        )
        agree(
            meta.patients == patients.num_rows,
            f"data/metadata.parquet: patients is "
            f"{meta.patients:,} but data/patients.parquet has {patients.num_rows:,} rows",
            "consistency.rows",
        )
        agree(
            protocol.fingerprint == meta.protocol_fingerprint,
            "protocol.yaml: its fingerprint differs from the one in data/metadata.parquet",
            "consistency.protocol",
        )
        for key in ("name", "version"):  # the fingerprint binds protocol.yaml, not these
            agree(
                getattr(meta, f"protocol_{key}") == getattr(protocol.protocol, key),
                f"data/metadata.parquet: protocol_{key} differs from the {key} in protocol.yaml",
                f"consistency.protocol_{key}",
            )
        for key in ("patients", "years", "seed"):
            agree(
                params[key] == getattr(meta, key),
                f"parameters.json: {key} differs from data/metadata.parquet",
                "consistency.parameters",
            )
        check_values(patients, visits, meta, params)
        check_tables_agree(patients, visits)
        recomputed = tables.summary
        assert recomputed is not None  # the checks above pass only when it was computed
        diff = first_difference(content.summary, recomputed)
        if diff is not None:
            raise PackageIntegrityError(
                f"summary_stats.json: {diff} differs from the statistics "
                "recomputed from the tables",
                code="consistency.summary",
            )
        check_preview(contents.get(fmt.PREVIEW), patients)
        if content.datapackage is not None or content.ro_crate is not None:
            # Format 1.1's self-description (required in a full package of 1.1; a
            # differential package carries none, its result is checked by its tables).
            check_description(
                manifest,
                content,
                PackageFacts(
                    metadata=meta,
                    summary=recomputed,
                    events=content.audit_events,
                    created=manifest.created_date,
                    created_by=manifest.created_by,
                    ape_version=manifest.ape_version,
                    files=_described_files(manifest),
                ),
            )
        files: dict[str, bytes | memoryview] = {
            local: contents[name] for name, local in fmt.FOLDER_FILES.items()
        }
        return ValidatedPackage(
            format=_label(manifest),
            sim_id=meta.sim_id,
            metadata=meta,
            summary=recomputed,
            folder_files=files,
            audit_events=content.audit_events,
            created_by=manifest.created_by,
            created_date=manifest.created_date,
            ape_version=manifest.ape_version,
        )


def _years(metadata: pa.Table) -> float | None:
    """The duration of a one-row metadata table, if the format's checks will accept it."""
    if metadata.num_rows != 1:
        return None
    years = metadata.column("years")[0].as_py()
    ok = isinstance(years, float) and math.isfinite(years) and 0 < years <= MAX_YEARS
    return years if ok else None


def check_signature_names(manifest: Manifest, present: set[str]) -> set[str]:
    """The signature members of a package of format 1.1 or later: `signatures/<key id>
    .dsse.json` only, never listed in the manifest (they sign it), at most a few."""
    if manifest.version < fmt.SIGNATURES_SINCE:
        return set()
    for name in sorted(manifest.files):
        if name.startswith(fmt.SIGNATURES_DIR):
            raise PackageFormatError(
                f"manifest.json: lists {name}, but a signature signs the manifest and is "
                "never listed in it",
                code="manifest.schema",
            )
    found = {name for name in present if name.startswith(fmt.SIGNATURES_DIR)}
    for name in sorted(found):
        if not fmt.SIGNATURE_NAME.match(name):
            raise PackageSecurityError(
                f"{name}: signatures/ holds only files named <key id>.dsse.json",
                code="name.unknown",
            )
    if len(found) > fmt.MAX_SIGNATURES:
        raise PackageLimitError(
            f"{len(found)} signatures exceed the limit of {fmt.MAX_SIGNATURES}",
            code="limit.signatures",
        )
    return found


def _described_files(manifest: Manifest) -> dict[str, dict[str, Any]]:
    """The manifest's entries as the writer had them, each table's columns the format's
    (equal to the manifest's when it lists them, checked in the tables stage)."""
    files = {name: spec.model_dump(exclude_none=True) for name, spec in manifest.files.items()}
    for name, schema in SCHEMAS.items():
        files[name]["columns"] = [c.model_dump() for c in columns_of(schema)]
    return files


def _metadata(table: pa.Table) -> SimulationMetadata:
    try:
        return SimulationMetadata.from_table(table)
    except (ValueError, OverflowError) as exc:  # e.g. a created_utc beyond year 9999
        raise PackageFormatError(
            f"data/metadata.parquet: unreadable values ({exc})", code="consistency.metadata"
        ) from None


__all__ = ["SCHEMAS", "Content", "CurrentFormat", "Tables", "read_table"]
