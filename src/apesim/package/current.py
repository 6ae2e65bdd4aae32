"""Format 1.x of APE simulation packages: the checks of docs/package-format.md."""

from __future__ import annotations

import hashlib
from typing import Any

import pyarrow as pa

from apesim import audit
from apesim.errors import (
    PackageFormatError,
    PackageIntegrityError,
    PackageSecurityError,
    ProtocolError,
)
from apesim.package import format as fmt
from apesim.package.checks import (
    agree,
    check_schema,
    check_tables_agree,
    check_values,
    first_difference,
)
from apesim.package.content import read_parquet, safe_yaml, strict_json, strict_text
from apesim.package.handler import FormatHandler, ValidatedPackage
from apesim.package.manifest import (
    Manifest,
    check_text,
    check_version,
    columns_of,
    parse_manifest,
)
from apesim.package.preview import check_preview
from apesim.protocol.loader import protocol_from_data
from apesim.results.metadata import SimulationMetadata
from apesim.results.schema import (
    METADATA_SCHEMA,
    PATIENTS_SCHEMA,
    VISITS_SCHEMA,
)
from apesim.results.stats import compute_summary
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
    table = read_parquet(
        name,
        data,
        limits,
        rows=rows,
        max_rows=max_rows,
        expected=expected,
        check_schema=lambda schema: check_schema(name, schema, expected),
    )
    check_schema(name, table.schema, expected)
    return table


class CurrentFormat(FormatHandler):
    """APE simulation package, format 1.x."""

    label = f"APE {fmt.PACKAGE_VERSION}"

    def __init__(self) -> None:
        self.manifest: Manifest | None = None
        self.newer_minor = False
        self.tables: dict[str, pa.Table] = {}
        self.parsed: dict[str, Any] = {}
        self.contents: dict[str, memoryview] = {}

    def check_manifest(self, raw: Any) -> str | None:
        if isinstance(raw, dict) and raw.get("format", fmt.FORMAT_NAME) != fmt.FORMAT_NAME:
            raise PackageFormatError(
                f"manifest.json: format {raw.get('format')!r} is not {fmt.FORMAT_NAME!r}",
                code="manifest.schema",
            )
        if isinstance(raw, dict) and isinstance(raw.get("package_version"), str):
            match = fmt.VERSION_PATTERN.match(raw["package_version"])
            if match and int(match.group(1)) != fmt.MAJOR:  # another major: its schema may differ
                check_version(int(match.group(1)), int(match.group(2)))
        self.manifest = parse_manifest(raw)
        if not SIM_ID_PATTERN.match(self.manifest.sim_id):
            raise PackageFormatError(
                f"manifest.json: sim_id {self.manifest.sim_id[:80]!r} is not a valid simulation "
                "id (letters, digits, '_', '.', '-')",
                code="manifest.sim_id",
            )
        self.label = f"APE {self.manifest.package_version}"
        major, minor = self.manifest.version
        self.newer_minor = minor > fmt.MINOR
        return check_version(major, minor)

    def check_files(self, present: set[str]) -> None:
        assert self.manifest is not None
        listed = set(self.manifest.files)
        for name in sorted(present - {fmt.MANIFEST}):
            if name not in fmt.KNOWN_FILES and not self.newer_minor:
                raise PackageSecurityError(
                    f"{name}: not a file of package format {fmt.PACKAGE_VERSION}",
                    code="name.unknown",
                )
            if name not in listed:
                raise PackageIntegrityError(
                    f"{name}: present but not listed in manifest.json", code="file.unlisted"
                )
        for name in sorted(listed):
            if name not in present:
                raise PackageIntegrityError(
                    f"{name}: listed in manifest.json but missing", code="file.missing"
                )
        for name in fmt.REQUIRED_FILES:
            if name not in present:
                raise PackageFormatError(f"{name}: required file is missing", code="file.missing")

    def check_checksums(self, contents: dict[str, memoryview]) -> None:
        assert self.manifest is not None
        for name, spec in sorted(self.manifest.files.items()):
            data = contents[name]
            if len(data) != spec.size:
                raise PackageIntegrityError(
                    f"{name}: {len(data):,} bytes, but the manifest says {spec.size:,}",
                    code="checksum.size",
                )
            if hashlib.sha256(data).hexdigest() != spec.sha256:
                raise PackageIntegrityError(
                    f"{name}: SHA-256 does not match the manifest "
                    "(the file was altered or corrupted)",
                    code="checksum.sha256",
                )
        self.contents = contents

    def check_content(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        for name in (fmt.PARAMETERS, fmt.SUMMARY):
            self.parsed[name] = strict_json(name, contents[name], limits)
        params = self.parsed[fmt.PARAMETERS]
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
        if not isinstance(self.parsed[fmt.SUMMARY], dict):
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
            self.parsed[fmt.PROTOCOL] = protocol_from_data(data, text, fmt.PROTOCOL)
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
        self.parsed[fmt.AUDIT] = events
        strict_text(fmt.README, contents[fmt.README])

    def check_tables(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        assert self.manifest is not None
        for name, schema in SCHEMAS.items():
            spec = self.manifest.files[name]
            if spec.columns is not None and spec.columns != columns_of(schema):
                raise PackageFormatError(
                    f"manifest.json: files.{name}.columns differ from the format's schema",
                    code="manifest.schema",
                )
            one_row = 1 if name == fmt.METADATA else None  # refused before it is decoded
            self.tables[name] = read_table(
                name, contents[name], schema, limits, spec.rows, max_rows=one_row
            )

    def metadata_json(self) -> dict[str, Any] | None:
        table = self.tables.get(fmt.METADATA)
        if table is None or table.num_rows != 1:
            return None
        return _metadata(table).to_json()

    def declared_summary(self) -> dict[str, Any] | None:
        summary = self.parsed.get(fmt.SUMMARY)
        return summary if isinstance(summary, dict) else None

    def check_consistency(self) -> ValidatedPackage:
        assert self.manifest is not None
        patients, visits = self.tables[fmt.PATIENTS], self.tables[fmt.VISITS]
        meta_table = self.tables[fmt.METADATA]
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
        protocol = self.parsed[fmt.PROTOCOL]
        params = self.parsed[fmt.PARAMETERS]
        agree(
            meta.sim_id == self.manifest.sim_id,
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
        recomputed = compute_summary(patients, visits, meta.years)
        declared = self.parsed[fmt.SUMMARY]
        diff = first_difference(declared, recomputed)
        if diff is not None:
            raise PackageIntegrityError(
                f"summary_stats.json: {diff} differs from the statistics "
                "recomputed from the tables",
                code="consistency.summary",
            )
        check_preview(self.contents.get(fmt.PREVIEW), patients)
        files: dict[str, bytes | memoryview] = {
            local: self.contents[name] for name, local in fmt.FOLDER_FILES.items()
        }
        return ValidatedPackage(
            format=self.label,
            sim_id=meta.sim_id,
            metadata=meta,
            summary=recomputed,
            folder_files=files,
            audit_events=self.parsed[fmt.AUDIT],
            created_by=self.manifest.created_by,
            created_date=self.manifest.created_date,
            ape_version=self.manifest.ape_version,
        )


def _metadata(table: pa.Table) -> SimulationMetadata:
    try:
        return SimulationMetadata.from_table(table)
    except (ValueError, OverflowError) as exc:  # e.g. a created_utc beyond year 9999
        raise PackageFormatError(
            f"data/metadata.parquet: unreadable values ({exc})", code="consistency.metadata"
        ) from None


__all__ = ["CurrentFormat", "read_table"]
