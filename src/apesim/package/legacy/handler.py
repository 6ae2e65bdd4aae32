"""`LegacyFormat`: the reader's staged checks for a package of the earlier APE, each stage
delegated to the module that knows that part of the format, and the converted simulation
handed to the importer with what the conversion changed stated in `import_details`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from apesim import audit
from apesim.errors import PackageFormatError, ProtocolError
from apesim.package import format as fmt
from apesim.package.checks import check_sha256, check_tables_agree, check_values
from apesim.package.content import strict_text
from apesim.package.handler import FormatHandler, ManifestFound, ValidatedPackage
from apesim.package.legacy.audit import convert_audit
from apesim.package.legacy.columns import read_parquet
from apesim.package.legacy.folder import folder_files, our_parameters
from apesim.package.legacy.format import (
    AUDIT,
    CHECKSUMMED,
    IMPORT_NOTE,
    LABEL,
    METADATA,
    PARAMETERS,
    PARQUET_FILES,
    PATIENTS,
    PROTOCOL,
    README,
    SUMMARY,
)
from apesim.package.legacy.manifest import check_files, check_manifest
from apesim.package.legacy.metadata import (
    EarlierMeta,
    check_parameters,
    check_parameters_agree,
    our_metadata,
    read_metadata,
)
from apesim.package.legacy.parse import earlier_json, earlier_yaml, utc_time
from apesim.package.legacy.stats import check_declared_summary, check_summary
from apesim.package.legacy.tables import convert_tables
from apesim.protocol.convert import ProtocolConversion, convert_protocol_data
from apesim.results.metadata import SimulationMetadata
from apesim.results.stats import compute_summary

_JSON_FILES = (SUMMARY, PARAMETERS, AUDIT)  # parsed in this order: the first failure is shown


@dataclass(frozen=True)
class Manifest:
    """The earlier manifest as it was, and the SHA-256 it gives for each file."""

    raw: dict[str, Any]
    checksums: dict[str, str]


@dataclass(frozen=True)
class Content:
    """The earlier JSON files parsed, the trail converted, the protocol converted."""

    parameters: dict[str, Any]
    summary: dict[str, Any]
    audit_events: list[audit.AuditEvent]
    conversion: ProtocolConversion


@dataclass(frozen=True)
class Tables:
    """The earlier tables as read, their metadata, and ours derived from it."""

    tables: dict[str, pa.Table]
    earlier_meta: EarlierMeta
    metadata: SimulationMetadata


class LegacyFormat(FormatHandler[Manifest, Content, Tables]):
    """The earlier APE's package format, version 1.0: checked, then converted."""

    label = LABEL

    def check_manifest(self, raw: Any) -> ManifestFound[Manifest]:
        return ManifestFound(Manifest(raw, check_manifest(raw)), LABEL)

    def check_files(self, manifest: Manifest, present: set[str]) -> None:
        check_files(manifest.checksums, present)

    def check_checksums(self, manifest: Manifest, contents: dict[str, memoryview]) -> None:
        for name in CHECKSUMMED:
            check_sha256(name, contents[name], manifest.checksums[name])

    def check_content(
        self, manifest: Manifest, contents: dict[str, memoryview], limits: fmt.ReadLimits
    ) -> Content:
        parsed = {name: earlier_json(name, contents[name], limits) for name in _JSON_FILES}
        check_parameters(parsed[PARAMETERS])
        check_summary(parsed[SUMMARY])
        created = utc_time(manifest.raw.get("created_date"))
        assert created is not None  # check_manifest refuses a manifest without one
        audit_events = convert_audit(parsed[AUDIT], created)
        if README in contents:
            strict_text(README, contents[README])
        text = strict_text(PROTOCOL, contents[PROTOCOL])
        data = earlier_yaml(text, limits)
        try:
            conversion = convert_protocol_data(data, PROTOCOL)
        except ProtocolError as exc:
            raise PackageFormatError(str(exc), code="protocol.invalid") from None
        return Content(parsed[PARAMETERS], parsed[SUMMARY], audit_events, conversion)

    def check_tables(
        self,
        manifest: Manifest,
        content: Content,
        contents: dict[str, memoryview],
        limits: fmt.ReadLimits,
    ) -> Tables:
        tables = {}
        for name in PARQUET_FILES:
            one_row = 1 if name == METADATA else None  # refused before it is decoded
            tables[name] = read_parquet(name, contents[name], limits, max_rows=one_row)
        earlier_meta = read_metadata(tables[METADATA])
        patients = tables[PATIENTS].num_rows
        metadata = our_metadata(earlier_meta, patients, manifest.raw, content.conversion)
        return Tables(tables, earlier_meta, metadata)

    def metadata_json(self, tables: Tables) -> dict[str, Any] | None:
        return tables.metadata.to_json()

    def check_consistency(
        self,
        manifest: Manifest,
        content: Content,
        tables: Tables,
        contents: dict[str, memoryview],
    ) -> ValidatedPackage:
        metadata = tables.metadata
        check_parameters_agree(content.parameters, tables.earlier_meta)
        converted = convert_tables(tables.tables)
        # The format's own value rules, as for APE's packages: what imports also exports.
        check_values(
            converted.patients,
            converted.visits,
            metadata,
            our_parameters(converted, metadata),
        )
        check_tables_agree(converted.patients, converted.visits)
        check_declared_summary(content.summary, converted)
        summary = compute_summary(converted.patients, converted.visits, metadata.years)
        return ValidatedPackage(
            format=self.label,
            sim_id=metadata.sim_id,
            metadata=metadata,
            summary=summary,
            folder_files=folder_files(converted, summary, metadata, content.conversion, contents),
            audit_events=content.audit_events,
            created_by=None,
            created_date=str(manifest.raw["created_date"]),
            ape_version=None,
            import_note=IMPORT_NOTE,
            import_details=_import_details(tables, content.conversion, converted.conversions),
        )


def _import_details(
    tables: Tables, conversion: ProtocolConversion, conversions: list[str]
) -> dict[str, Any]:
    """For the imported event: what the conversion could not keep as it was."""
    details: dict[str, Any] = {}
    if tables.metadata.sim_id != tables.earlier_meta.sim_id:
        details["original_sim_id"] = tables.earlier_meta.sim_id
    details["unmapped_protocol_fields"] = conversion.unmapped_fields
    if conversions:
        details["converted_values"] = conversions
    return details
