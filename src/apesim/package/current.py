"""Format 1.x of APE simulation packages: the checks of docs/package-format.md."""

from __future__ import annotations

import hashlib
import math
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from apesim import audit
from apesim.engine.simulate import MAX_YEARS
from apesim.errors import (
    PackageFormatError,
    PackageIntegrityError,
    PackageSecurityError,
    ProtocolError,
)
from apesim.package import format as fmt
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
from apesim.protocol.schema import STATES
from apesim.results.metadata import SimulationMetadata
from apesim.results.schema import (
    DISCONTINUATION_REASONS,
    METADATA_SCHEMA,
    PATIENTS_SCHEMA,
    SEX_VALUES,
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
        check_schema=lambda schema: _check_schema(name, schema, expected),
    )
    _check_schema(name, table.schema, expected)
    return table


def _check_schema(name: str, actual: pa.Schema, expected: pa.Schema) -> None:
    if actual.names != expected.names:
        missing = [c for c in expected.names if c not in actual.names]
        extra = [c for c in actual.names if c not in expected.names]
        what = (
            f"missing column {missing[0]!r}"
            if missing
            else f"unexpected column {extra[0]!r}"
            if extra
            else "columns in the wrong order"
        )
        raise PackageFormatError(f"{name}: {what}", code="parquet.schema")
    for got, want in zip(actual, expected, strict=True):
        if not got.type.equals(want.type) or got.nullable != want.nullable:
            raise PackageFormatError(
                f"{name}: column {want.name!r} is {got.type}{'' if got.nullable else ' not null'}"
                f", expected {want.type}{'' if want.nullable else ' not null'}",
                code="parquet.schema",
            )


def first_difference(a: Any, b: Any, path: str = "") -> str | None:
    """The first key path where two JSON values differ (floats compared exactly)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for key in sorted(set(a) | set(b)):
            where = f"{path}.{key}" if path else key
            if key not in a or key not in b:
                return where
            found = first_difference(a[key], b[key], where)
            if found:
                return found
        return None
    if type(a) is not type(b) and not (
        isinstance(a, (int, float))
        and isinstance(b, (int, float))
        and not isinstance(a, bool)
        and not isinstance(b, bool)
    ):
        return path or "(root)"
    if isinstance(a, float) or isinstance(b, float):
        return None if (a == b or (math.isnan(a) and math.isnan(b))) else path
    return None if a == b else (path or "(root)")


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
        _agree(
            meta.sim_id == self.manifest.sim_id,
            "data/metadata.parquet: sim_id differs from manifest.json",
            "consistency.sim_id",
        )
        _agree(
            meta.patients == patients.num_rows,
            f"data/metadata.parquet: patients is "
            f"{meta.patients:,} but data/patients.parquet has {patients.num_rows:,} rows",
            "consistency.rows",
        )
        _agree(
            protocol.fingerprint == meta.protocol_fingerprint,
            "protocol.yaml: its fingerprint differs from the one in data/metadata.parquet",
            "consistency.protocol",
        )
        for key in ("name", "version"):  # the fingerprint binds protocol.yaml, not these
            _agree(
                getattr(meta, f"protocol_{key}") == getattr(protocol.protocol, key),
                f"data/metadata.parquet: protocol_{key} differs from the {key} in protocol.yaml",
                f"consistency.protocol_{key}",
            )
        for key in ("patients", "years", "seed"):
            _agree(
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


def check_values(
    patients: pa.Table, visits: pa.Table, meta: SimulationMetadata, params: dict[str, Any]
) -> None:
    """Every value within the ranges and categories the format specifies."""
    years = meta.years
    _agree(
        math.isfinite(years) and 0 < years <= MAX_YEARS,
        f"data/metadata.parquet: years must be more than 0 and at most {MAX_YEARS:g}",
        "consistency.values",
    )
    _agree(meta.seed >= 0, "data/metadata.parquet: seed must not be negative", "consistency.values")
    _agree(
        math.isfinite(meta.runtime_seconds) and meta.runtime_seconds >= 0,
        "data/metadata.parquet: runtime_seconds must be a number of seconds",
        "consistency.values",
    )
    months = params.get("recruitment_months")
    _agree(
        isinstance(months, (int, float)) and math.isfinite(months) and 0 <= months <= 12 * years,
        "parameters.json: recruitment_months must lie between 0 and the duration",
        "consistency.values",
    )
    for table, column, allowed in (
        (patients, "sex", SEX_VALUES),
        (patients, "discontinuation_reason", DISCONTINUATION_REASONS),
        (visits, "state", STATES),
    ):
        values = set(table.column(column).combine_chunks().dictionary.to_pylist())
        unknown = sorted(str(v) for v in values - set(allowed))
        _agree(
            not unknown,
            f"{column}: unknown value {unknown[0][:40]!r} (expected one of {', '.join(allowed)})"
            if unknown
            else "",
            "consistency.values",
        )
    for table, column, low, high in (
        (patients, "baseline_vision", 0, 100),
        (patients, "final_vision", 0, 100),
        (visits, "vision", 0, 100),
        (patients, "baseline_age", -1, 120),
        (patients, "enrol_day", 0, None),
        (visits, "day", 0, None),
        (visits, "visit", 0, None),
        (visits, "next_interval", 1, None),
    ):
        bounds = pc.min_max(table.column(column))
        lo, hi = bounds["min"].as_py(), bounds["max"].as_py()
        _agree(
            lo is None or (lo >= low and (high is None or hi <= high)),
            f"{column}: values must lie in {low}..{high if high is not None else ''}",
            "consistency.values",
        )
    ids = patients.column("patient_id")
    n = patients.num_rows
    bounds = pc.min_max(ids)
    _agree(
        n == 0 or (bounds["min"].as_py() == 0 and bounds["max"].as_py() == n - 1),
        "data/patients.parquet: patient_id must run from 0 to patients - 1",
        "consistency.values",
    )


def _agree(condition: bool, message: str, code: str) -> None:
    if not condition:
        raise PackageIntegrityError(message, code=code)


def check_tables_agree(patients: pa.Table, visits: pa.Table) -> None:
    """Patient ids unique; visits sorted by patient and day; every visit's patient exists;
    visit counts per patient as the patients table says."""
    pid = patients.column("patient_id").to_numpy()
    if pid.size and np.any(np.diff(np.sort(pid)) == 0):
        raise PackageIntegrityError(
            "data/patients.parquet: patient_id is not unique", code="consistency.duplicate_patient"
        )
    v_pid = visits.column("patient_id").to_numpy()
    v_day = visits.column("day").to_numpy()
    if v_pid.size:
        step = np.diff(v_pid.astype(np.int64))
        if np.any(step < 0) or np.any((step == 0) & (np.diff(v_day.astype(np.int64)) <= 0)):
            raise PackageIntegrityError(
                "data/visits.parquet: rows are not sorted by patient_id and day",
                code="consistency.order",
            )
    sorted_pid = np.sort(pid)
    pos = np.searchsorted(sorted_pid, v_pid)
    found = (
        (pos < sorted_pid.size)
        & (sorted_pid[np.minimum(pos, max(sorted_pid.size - 1, 0))] == v_pid)
        if sorted_pid.size
        else np.zeros(v_pid.size, bool)
    )
    if not np.all(found):
        missing = int(v_pid[~found][0])
        raise PackageIntegrityError(
            f"data/visits.parquet: visits of patient {missing}, who is "
            "not in data/patients.parquet",
            code="consistency.orphan_visit",
        )
    counts = np.bincount(pos, minlength=sorted_pid.size)
    declared = patients.column("visits").to_numpy()[np.argsort(pid, kind="stable")]
    if not np.array_equal(counts, declared):
        raise PackageIntegrityError(
            "data/patients.parquet: visit counts differ from data/visits.parquet",
            code="consistency.visits",
        )


__all__ = ["CurrentFormat", "check_tables_agree", "first_difference", "read_table"]
