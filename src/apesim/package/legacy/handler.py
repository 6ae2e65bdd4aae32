"""`LegacyFormat`: the reader's staged checks for a package of the earlier APE, each stage
delegated to the module that knows that part of the format, and the converted simulation
handed to the importer with what the conversion changed stated in `import_details`."""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa

from apesim import audit
from apesim.errors import PackageFormatError, PackageIntegrityError, ProtocolError
from apesim.package import format as fmt
from apesim.package.checks import check_tables_agree, check_values
from apesim.package.content import strict_text
from apesim.package.handler import FormatHandler, ValidatedPackage
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


class LegacyFormat(FormatHandler):
    """The earlier APE's package format, version 1.0: checked, then converted."""

    label = LABEL

    def __init__(self) -> None:
        self.manifest: dict[str, Any] = {}
        self.checksums: dict[str, str] = {}
        self.contents: dict[str, memoryview] = {}
        self.parsed: dict[str, Any] = {}
        self.audit_events: list[audit.AuditEvent] = []
        self.conversion: ProtocolConversion | None = None
        self.tables: dict[str, pa.Table] = {}
        self.earlier_meta: EarlierMeta | None = None
        self.metadata: SimulationMetadata | None = None

    def check_manifest(self, raw: Any) -> str | None:
        self.checksums = check_manifest(raw)
        self.manifest = raw
        return None

    def check_files(self, present: set[str]) -> None:
        check_files(self.checksums, present)

    def check_checksums(self, contents: dict[str, memoryview]) -> None:
        for name in CHECKSUMMED:
            if hashlib.sha256(contents[name]).hexdigest() != self.checksums[name]:
                raise PackageIntegrityError(
                    f"{name}: SHA-256 does not match the manifest "
                    "(the file was altered or corrupted)",
                    code="checksum.sha256",
                )
        self.contents = contents

    def check_content(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        for name in (SUMMARY, PARAMETERS, AUDIT):
            self.parsed[name] = earlier_json(name, contents[name], limits)
        check_parameters(self.parsed[PARAMETERS])
        check_summary(self.parsed[SUMMARY])
        created = utc_time(self.manifest.get("created_date"))
        assert created is not None
        self.audit_events = convert_audit(self.parsed[AUDIT], created)
        if README in contents:
            strict_text(README, contents[README])
        text = strict_text(PROTOCOL, contents[PROTOCOL])
        data = earlier_yaml(text, limits)
        try:
            self.conversion = convert_protocol_data(data, PROTOCOL)
        except ProtocolError as exc:
            raise PackageFormatError(str(exc), code="protocol.invalid") from None

    def check_tables(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        for name in PARQUET_FILES:
            one_row = 1 if name == METADATA else None  # refused before it is decoded
            self.tables[name] = read_parquet(name, contents[name], limits, max_rows=one_row)
        self.earlier_meta = read_metadata(self.tables[METADATA])
        assert self.conversion is not None
        patients = self.tables[PATIENTS].num_rows
        self.metadata = our_metadata(self.earlier_meta, patients, self.manifest, self.conversion)

    def metadata_json(self) -> dict[str, Any] | None:
        return self.metadata.to_json() if self.metadata is not None else None

    def check_consistency(self) -> ValidatedPackage:
        assert self.metadata is not None and self.earlier_meta is not None
        assert self.conversion is not None
        check_parameters_agree(self.parsed[PARAMETERS], self.earlier_meta)
        converted = convert_tables(self.tables)
        # The format's own value rules, as for APE's packages: what imports also exports.
        check_values(
            converted.patients,
            converted.visits,
            self.metadata,
            our_parameters(converted, self.metadata),
        )
        check_tables_agree(converted.patients, converted.visits)
        check_declared_summary(self.parsed[SUMMARY], converted)
        summary = compute_summary(converted.patients, converted.visits, self.metadata.years)
        return ValidatedPackage(
            format=self.label,
            sim_id=self.metadata.sim_id,
            metadata=self.metadata,
            summary=summary,
            folder_files=folder_files(
                converted, summary, self.metadata, self.conversion, self.contents
            ),
            audit_events=self.audit_events,
            created_by=None,
            created_date=str(self.manifest["created_date"]),
            ape_version=None,
            import_note=IMPORT_NOTE,
            import_details=self._import_details(converted.conversions),
        )

    def _import_details(self, conversions: list[str]) -> dict[str, Any]:
        """For the imported event: what the conversion could not keep as it was."""
        assert self.earlier_meta is not None and self.metadata is not None
        assert self.conversion is not None
        details: dict[str, Any] = {}
        if self.metadata.sim_id != self.earlier_meta.sim_id:
            details["original_sim_id"] = self.earlier_meta.sim_id
        details["unmapped_protocol_fields"] = self.conversion.unmapped_fields
        if conversions:
            details["converted_values"] = conversions
        return details
