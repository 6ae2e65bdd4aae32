"""Packages written by the earlier APE's exporter (lh/vegf-1, `ape/utils/simulation_package.py`,
package_version "1.0"), read through the same safety pipeline as our own format and converted
into APE's data model on import.

The reader has already checked the container, the entry names and the limits. This handler
checks the earlier manifest, files and SHA-256 checksums, parses the JSON and YAML strictly,
reads the Parquet tables whatever Arrow types that exporter's library versions produced, and
converts everything into APE's schemas: our tables, metadata, protocol (via
`apesim.protocol.convert`) and hash-chained audit trail. The earlier files are kept byte for
byte under `source/`; columns APE has no place for go to `patients_extra.parquet` and
`visits_extra.parquet`. No id, name or file name from the package ever becomes a path: the
folder's file names are the constants below. docs/package-format.md ("Packages of the
earlier APE") is the specification of this mapping.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from apesim import audit
from apesim.errors import (
    PackageError,
    PackageFormatError,
    PackageIntegrityError,
    PackageLimitError,
    PackageSecurityError,
    PackageVersionError,
    ProtocolError,
)
from apesim.package import format as fmt
from apesim.package.current import check_tables_agree, strict_json, strict_text
from apesim.package.handler import FormatHandler, ValidatedPackage
from apesim.protocol.convert import ProtocolConversion, convert_protocol_data, earlier_state
from apesim.protocol.schema import STATES
from apesim.results.metadata import SimulationMetadata
from apesim.results.parquet_io import write_table
from apesim.results.schema import (
    DISCONTINUATION_REASONS,
    PATIENTS_SCHEMA,
    SEXES,
    VISITS_SCHEMA,
    dictionary,
)
from apesim.results.stats import DAYS_PER_YEAR, compute_summary, summary_json
from apesim.safeload import dump_json, load_yaml
from apesim.workspace import layout
from apesim.workspace.names import SIM_ID_PATTERN

LABEL = "earlier APE 1.0"
IMPORT_NOTE = "converted from earlier APE format"
PACKAGE_TYPE = "ape_simulation"
EARLIER_VERSION = "1.0"
EARLIER_USER = "unknown"  # the earlier audit trail does not say who acted

MANIFEST = "manifest.json"
PATIENTS = "data/patients.parquet"
VISITS = "data/visits.parquet"
METADATA = "data/metadata.parquet"
PATIENT_INDEX = "data/patient_index.parquet"
SUMMARY = "data/summary_stats.json"
PROTOCOL = "protocol.yaml"
PARAMETERS = "parameters.json"
AUDIT = "audit_log.json"
README = "README.txt"

# The earlier format's files. The exporter checksums all but the manifest and README.txt.
CHECKSUMMED = (PATIENTS, VISITS, METADATA, PATIENT_INDEX, SUMMARY, PROTOCOL, PARAMETERS, AUDIT)
KNOWN_FILES = (MANIFEST, *CHECKSUMMED, README)
PARQUET_FILES = (PATIENTS, VISITS, METADATA, PATIENT_INDEX)
# Where each original file is kept in the imported simulation's folder: APE's names.
SOURCE_FILES = {name: f"{layout.SOURCE_DIR}/{name}" for name in KNOWN_FILES}

SEX_UNKNOWN = "U"  # the earlier APE recorded neither sex nor age
AGE_UNKNOWN = -1
SEX_VALUES = (*SEXES, SEX_UNKNOWN)
# Earlier discontinuation types (and reasons) -> APE's reasons; any other type is premature.
REASON_OF_TYPE = {
    "planned": "stable_at_max_interval",
    "stable_max_interval": "stable_at_max_interval",
    "stable_at_max_interval": "stable_at_max_interval",
    "treatment_decision_stable": "stable_at_max_interval",
    "poor_vision": "poor_vision",
    "poor_response": "poor_vision",
    "ineffective": "poor_vision",
    "deterioration": "poor_vision",
    "treatment_decision_no_improvement": "poor_vision",
    "premature": "premature",
    "adverse": "premature",
    "attrition": "premature",
    "administrative": "premature",
    "random_administrative": "premature",
}
DEATH_TYPES = {"death", "died", "mortality"}
REL_TOL = 1e-9  # "within floating-point rounding" for the statistics both APEs define

_INT16_MAX, _INT32_MAX = 2**15 - 1, 2**31 - 1
_PATH_LIKE = re.compile(r"[/\\\x00-\x1f\x7f]|^\.\.?$|^~|^[A-Za-z]:")
_ENGINE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]


# -- strict parsing of untrusted content ----------------------------------------------------


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def earlier_json(name: str, data: memoryview, limits: fmt.ReadLimits) -> Any:
    """Strict JSON (no duplicate keys, bounded depth), except that NaN and ±Infinity, which
    the earlier exporter's Python `json.dump` writes for an undefined number, are read as
    null instead of refusing an archive that exporter wrote."""
    try:
        return strict_json(name, data, limits)
    except PackageFormatError as exc:
        if exc.code != "json.nonfinite":
            raise
    # Depth and UTF-8 were checked before the non-finite number was met.
    try:
        return json.loads(
            bytes(data).decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=lambda _name: None,
        )
    except ValueError as exc:
        code = "json.duplicate_key" if "duplicate" in str(exc) else "json.invalid"
        raise PackageFormatError(f"{name}: {exc}", code=code) from None


def _earlier_yaml(text: str, limits: fmt.ReadLimits) -> Any:
    try:
        return load_yaml(text, max_depth=limits.max_depth)
    except ValueError as exc:
        message = str(exc)
        code = (
            "yaml.alias"
            if "alias" in message or "anchor" in message
            else "limit.depth"
            if "nested" in message
            else "yaml.invalid"
        )
        cls = PackageFormatError if code == "yaml.invalid" else PackageSecurityError
        if code == "limit.depth":
            cls = PackageLimitError
        raise cls(f"protocol.yaml: {message}", code=code) from None


def _shown(value: object, limit: int = 60) -> str:
    """A value from the package, quoted and shortened, safe to put in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def path_like(value: str) -> bool:
    """True for an id or name that looks like a path: separators, control characters, '.',
    '..', a drive letter or a leading '~' (a doctored package)."""
    return bool(_PATH_LIKE.search(value)) or ".." in value.split("/")


def derived_sim_id(original: str) -> str:
    """A safe, stable simulation id for an earlier id that is not one (see SIM_ID_PATTERN)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", original).strip("-_")[:40].strip("-_")
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"earlier-{slug}-{digest}" if slug else f"earlier-{digest}"


def _utc_time(value: object) -> datetime | None:
    """An ISO 8601 time; one without a zone is taken as UTC (the earlier APE wrote local
    time without a zone)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def _event_time(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


# -- reading the Parquet tables whatever their Arrow types ---------------------------------


def _read_parquet(name: str, data: memoryview, limits: fmt.ReadLimits) -> pa.Table:
    """Read an earlier Parquet file from memory under the same limits as our own tables."""
    if bytes(data[:4]) != b"PAR1" or bytes(data[-4:]) != b"PAR1":
        raise PackageFormatError(f"{name}: not a Parquet file", code="parquet.invalid")
    try:
        parquet = pq.ParquetFile(pa.BufferReader(pa.py_buffer(data)))
        meta = parquet.metadata
        if meta.num_rows > limits.max_rows:
            raise PackageLimitError(
                f"{name}: {meta.num_rows:,} rows exceeds the limit of {limits.max_rows:,}",
                code="limit.rows",
            )
        decoded = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        if decoded > limits.max_total_bytes:
            raise PackageLimitError(
                f"{name}: decodes to more than {limits.max_total_bytes:,} bytes",
                code="limit.total_size",
            )
        table = parquet.read().combine_chunks()
        table.validate(full=True)  # also that text is UTF-8, which reading does not check
    except PackageError:
        raise
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise PackageFormatError(
            f"{name}: unreadable Parquet ({exc})", code="parquet.invalid"
        ) from None
    if len(set(table.column_names)) != table.num_columns:
        raise PackageFormatError(f"{name}: a column name appears twice", code="parquet.schema")
    return table


def _is_stringy(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t))


class _Columns:
    """The columns of one earlier table, normalised to a few Arrow/numpy types, with the
    variations pandas and pyarrow versions produce accepted: string or large_string (or
    dictionary-encoded), any timestamp unit with or without a zone, integers stored as
    doubles, all-null columns typed null, optional columns missing."""

    def __init__(self, name: str, table: pa.Table) -> None:
        self.name = name
        self.table = table
        self.rows = table.num_rows
        self.used: set[str] = set()

    def _get(self, col: str, required: bool) -> pa.Array | None:
        self.used.add(col)
        if col not in self.table.column_names:
            if required:
                raise PackageFormatError(
                    f"{self.name}: missing column {col!r}", code="parquet.schema"
                )
            return None
        array = self.table.column(col).combine_chunks()
        if pa.types.is_dictionary(array.type):
            array = array.dictionary_decode()
        return array

    def _wrong(self, col: str, array: pa.Array, expected: str) -> PackageFormatError:
        return PackageFormatError(
            f"{self.name}: column {col!r} is {array.type}, expected {expected}",
            code="parquet.schema",
        )

    def _no_nulls(self, col: str, nulls: int) -> None:
        if nulls:
            raise PackageFormatError(
                f"{self.name}: column {col!r} has {nulls:,} missing values", code="parquet.null"
            )

    def string(self, col: str, *, required: bool = False) -> pa.Array | None:
        array = self._get(col, required)
        if array is None:
            return None
        t = array.type
        if not (_is_stringy(t) or pa.types.is_null(t) or pa.types.is_integer(t)):
            raise self._wrong(col, array, "a string")
        array = array.cast(pa.string())
        if required:
            self._no_nulls(col, array.null_count)
        return array

    def number(self, col: str, *, required: bool = False) -> FloatArray | None:
        """Float64 values, NaN where missing."""
        array = self._get(col, required)
        if array is None:
            return None
        t = array.type
        if not (pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_null(t)):
            raise self._wrong(col, array, "a number")
        # Unsafe only beyond 2**53, where the range checks refuse the value anyway.
        values = array.cast(pa.float64(), safe=False).fill_null(math.nan)
        values = values.to_numpy(zero_copy_only=False)
        values = np.asarray(values, dtype=np.float64)
        if np.isinf(values).any():
            raise PackageFormatError(
                f"{self.name}: column {col!r} holds an infinity", code="parquet.null"
            )
        if required:
            self._no_nulls(col, int(np.isnan(values).sum()))
        return values

    def integer(self, col: str) -> tuple[IntArray, bool]:
        """Whole numbers of a required column (doubles rounded half up) and whether any value
        had to be rounded."""
        values = self.number(col, required=True)
        assert values is not None
        rounded = np.floor(values + 0.5)
        if np.abs(rounded).max(initial=0) > 2**53:
            raise PackageFormatError(
                f"{self.name}: column {col!r} is out of range", code="legacy.range"
            )
        return rounded.astype(np.int64), bool(np.any(rounded != values))

    def boolean(self, col: str, *, required: bool = False) -> npt.NDArray[np.int8] | None:
        """1, 0, or -1 where missing (booleans, or integers that are all 0 or 1)."""
        array = self._get(col, required)
        if array is None:
            return None
        t = array.type
        binary = pa.types.is_integer(t) and pc.all(
            pc.is_in(array, value_set=pa.array([0, 1], t)), skip_nulls=True
        ).as_py() in (True, None)
        if not (pa.types.is_boolean(t) or pa.types.is_null(t) or binary):
            raise self._wrong(col, array, "a boolean")
        values = array.cast(pa.int8()).fill_null(-1).to_numpy(zero_copy_only=False)
        out = np.asarray(values, dtype=np.int8)
        if required:
            self._no_nulls(col, int((out < 0).sum()))
        return out

    def value(self, col: str, *, required: bool = False) -> Any:
        """The first row's value as Python (for the one-row metadata table)."""
        array = self._get(col, required)
        if array is None:
            return None
        try:
            value = array[0].as_py()
        except (ValueError, OverflowError):  # e.g. a timestamp beyond Python's datetime
            raise PackageFormatError(
                f"{self.name}: column {col!r} holds a value out of range", code="legacy.range"
            ) from None
        if required and value is None:
            self._no_nulls(col, 1)
        return value

    def timestamp(self, col: str) -> pa.Array | None:
        """Timestamps in microseconds (in UTC when zoned); dates as timestamps; strings kept."""
        array = self._get(col, False)
        if array is None:
            return None
        t = array.type
        if pa.types.is_timestamp(t):
            return array.cast(pa.timestamp("us", tz="UTC" if t.tz else None), safe=False)
        if pa.types.is_date(t) or pa.types.is_null(t):
            return array.cast(pa.timestamp("us"))
        if _is_stringy(t):
            return array.cast(pa.string())
        raise self._wrong(col, array, "a timestamp")

    def others(self) -> list[tuple[str, pa.Array]]:
        """The columns not read above, kept as they are (strings and timestamps normalised)."""
        out = []
        for col in self.table.column_names:
            if col in self.used:
                continue
            array = self.table.column(col).combine_chunks()
            if pa.types.is_dictionary(array.type):
                array = array.dictionary_decode()
            if _is_stringy(array.type):
                array = array.cast(pa.string())
            elif pa.types.is_timestamp(array.type):
                array = array.cast(
                    pa.timestamp("us", tz="UTC" if array.type.tz else None), safe=False
                )
            out.append((col, array))
        return out


def _vision(columns: _Columns, col: str) -> tuple[IntArray, FloatArray | None]:
    """Letters as APE stores them: rounded half up and clipped to 0..100. The originals are
    returned too when that changed any value (they are kept in the extra table)."""
    values = columns.number(col, required=True)
    assert values is not None
    letters = np.clip(np.floor(values + 0.5), 0, 100).astype(np.int64)
    return letters, (values if np.any(letters != values) else None)


def _int32(name: str, col: str, values: IntArray) -> IntArray:
    if values.size and (values.min() < -_INT32_MAX or values.max() > _INT32_MAX):
        raise PackageFormatError(f"{name}: {col} is out of range for a day", code="legacy.range")
    return values


def _int16_count(name: str, col: str, values: IntArray) -> IntArray:
    if values.size and (values.min() < 0 or values.max() > _INT16_MAX):
        raise PackageLimitError(
            f"{name}: {col} must lie in 0..{_INT16_MAX:,} per patient", code="legacy.range"
        )
    return values


def _dictionary(
    indices: npt.ArrayLike, dictionary: pa.Array, mask: BoolArray | None = None
) -> pa.Array:
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(indices, dtype=np.int8), pa.int8(), mask=mask), dictionary
    )


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    write_table(sink, table)
    return sink.getvalue()


@dataclass(frozen=True)
class _EarlierMeta:
    """The one row of the earlier metadata.parquet."""

    sim_id: str
    memorable_name: str | None
    engine_type: str | None
    n_patients: int | None
    duration_years: float
    seed: int
    timestamp: datetime | None
    runtime_seconds: float


class LegacyFormat(FormatHandler):
    """The earlier APE's package format, version 1.0: checked, then converted."""

    label = LABEL

    def __init__(self) -> None:
        self.manifest: dict[str, Any] = {}
        self.checksums: dict[str, str] = {}
        self.contents: dict[str, memoryview] = {}
        self.parsed: dict[str, Any] = {}
        self.conversion: ProtocolConversion | None = None
        self.tables: dict[str, pa.Table] = {}
        self.earlier_meta: _EarlierMeta | None = None
        self.metadata: SimulationMetadata | None = None

    # -- manifest, files, checksums ------------------------------------------------------

    def check_manifest(self, raw: Any) -> str | None:
        if not isinstance(raw, dict):
            raise PackageFormatError("manifest.json: must be a JSON object", code="manifest.schema")
        version = raw.get("package_version")
        if not isinstance(version, str):
            raise PackageFormatError(
                "manifest.json: package_version: missing or not a string", code="manifest.schema"
            )
        if version != EARLIER_VERSION:
            raise PackageVersionError(
                f"manifest.json: earlier-APE package version {_shown(version)} is unknown; "
                f"this APE reads the earlier APE's version {EARLIER_VERSION}",
                code="version.unknown",
            )
        if raw.get("package_type") != PACKAGE_TYPE:
            raise PackageFormatError(
                f"manifest.json: package_type must be {PACKAGE_TYPE!r}", code="manifest.schema"
            )
        sim_id = raw.get("sim_id")
        if not isinstance(sim_id, str) or not 0 < len(sim_id) <= 200:
            raise PackageFormatError(
                "manifest.json: sim_id: must be a string of 1 to 200 characters",
                code="manifest.schema",
            )
        if path_like(sim_id):
            raise PackageSecurityError(
                f"manifest.json: sim_id {_shown(sim_id)} looks like a path; refusing a "
                "doctored package",
                code="name.unsafe_id",
            )
        if _utc_time(raw.get("created_date")) is None:
            raise PackageFormatError(
                "manifest.json: created_date: missing or not an ISO 8601 time",
                code="manifest.schema",
            )
        checksums = raw.get("file_checksums")
        if not isinstance(checksums, dict):
            raise PackageFormatError(
                "manifest.json: file_checksums: must be an object", code="manifest.schema"
            )
        for name, digest in checksums.items():
            if not isinstance(digest, str) or not fmt.SHA256_PATTERN.match(digest):
                raise PackageFormatError(
                    f"manifest.json: file_checksums.{_shown(name)}: not a SHA-256 hex digest",
                    code="manifest.schema",
                )
        total = raw.get("total_files")
        if isinstance(total, bool) or not isinstance(total, int) or total != len(checksums):
            raise PackageFormatError(
                "manifest.json: total_files must be the number of entries of file_checksums",
                code="manifest.schema",
            )
        self.manifest = raw
        self.checksums = checksums
        return None

    def check_files(self, present: set[str]) -> None:
        for name in sorted(set(self.checksums) | present):
            if name not in KNOWN_FILES:
                raise PackageSecurityError(
                    f"{_shown(name)}: not a file of the earlier APE's package format",
                    code="name.unknown",
                )
        for name in sorted(present):
            if name in CHECKSUMMED and name not in self.checksums:
                raise PackageIntegrityError(
                    f"{name}: present but not listed in manifest.json", code="file.unlisted"
                )
        for name in CHECKSUMMED:
            if name in self.checksums and name not in present:
                raise PackageIntegrityError(
                    f"{name}: listed in manifest.json but missing", code="file.missing"
                )
            if name not in present:
                raise PackageFormatError(f"{name}: required file is missing", code="file.missing")
        for name in (MANIFEST, README):
            if name in self.checksums:
                raise PackageFormatError(
                    f"manifest.json: file_checksums lists {name}, which that exporter never "
                    "checksummed",
                    code="manifest.schema",
                )

    def check_checksums(self, contents: dict[str, memoryview]) -> None:
        for name in CHECKSUMMED:
            if hashlib.sha256(contents[name]).hexdigest() != self.checksums[name]:
                raise PackageIntegrityError(
                    f"{name}: SHA-256 does not match the manifest "
                    "(the file was altered or corrupted)",
                    code="checksum.sha256",
                )
        self.contents = contents

    # -- content -------------------------------------------------------------------------

    def check_content(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        for name in (SUMMARY, PARAMETERS, AUDIT):
            self.parsed[name] = earlier_json(name, contents[name], limits)
        self._check_parameters(self.parsed[PARAMETERS])
        self._check_summary(self.parsed[SUMMARY])
        self.parsed[AUDIT] = self._convert_audit(self.parsed[AUDIT])
        if README in contents:
            strict_text(README, contents[README])
        text = strict_text(PROTOCOL, contents[PROTOCOL])
        data = _earlier_yaml(text, limits)
        try:
            self.conversion = convert_protocol_data(data, PROTOCOL)
        except ProtocolError as exc:
            raise PackageFormatError(str(exc), code="protocol.invalid") from None

    @staticmethod
    def _check_parameters(params: Any) -> None:
        if not isinstance(params, dict):
            raise PackageFormatError(
                "parameters.json: must be a JSON object", code="parameters.schema"
            )
        kinds = {
            "engine_type": (str,),
            "n_patients": (int,),
            "duration_years": (int, float),
            "seed": (int,),
        }
        for key, kind in kinds.items():
            value = params.get(key)
            if isinstance(value, bool) or not isinstance(value, kind):
                raise PackageFormatError(
                    f"parameters.json: {key}: missing or not a {kind[-1].__name__}",
                    code="parameters.schema",
                )

    @staticmethod
    def _check_summary(summary: Any) -> None:
        if not isinstance(summary, dict):
            raise PackageFormatError(
                "data/summary_stats.json: must be a JSON object", code="summary.schema"
            )
        for key in _SUMMARY_KEYS:
            value = summary.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, (int, float))
            ):
                raise PackageFormatError(
                    f"data/summary_stats.json: {key}: not a number", code="summary.schema"
                )

    def _convert_audit(self, raw: Any) -> list[audit.AuditEvent]:
        """Each earlier event becomes one of ours, chained: action = its event name, details
        = its content, time = its timestamp (taken as UTC when it has no zone)."""
        if not isinstance(raw, list):
            raise PackageFormatError(
                "audit_log.json: must be a JSON list of events", code="audit.invalid"
            )
        moment = _utc_time(self.manifest.get("created_date"))
        assert moment is not None
        events: list[audit.AuditEvent] = []
        for i, item in enumerate(raw):
            name = item.get("event") if isinstance(item, dict) else None
            if not isinstance(name, str) or not 0 < len(name) <= 200 or not name.isprintable():
                raise PackageFormatError(
                    f"audit_log.json: event {i} has no event name", code="audit.invalid"
                )
            details = {k: v for k, v in item.items() if k != "event"}
            when = _utc_time(item.get("timestamp"))
            events = audit.append(
                events, name, details, user=EARLIER_USER, time=_event_time(when or moment)
            )
        return events

    # -- tables --------------------------------------------------------------------------

    def check_tables(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        for name in PARQUET_FILES:
            self.tables[name] = _read_parquet(name, contents[name], limits)
        meta = self.tables[METADATA]
        if meta.num_rows != 1:
            raise PackageIntegrityError(
                f"{METADATA}: must hold exactly one row", code="consistency.metadata"
            )
        self.earlier_meta = self._read_metadata(_Columns(METADATA, meta))
        self.metadata = self._our_metadata(self.earlier_meta, self.tables[PATIENTS].num_rows)

    @staticmethod
    def _read_metadata(cols: _Columns) -> _EarlierMeta:
        def number(value: Any) -> float | None:
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            return float(value) if ok and math.isfinite(value) else None

        def text(value: Any, col: str) -> str | None:
            if value is not None and not isinstance(value, str):
                raise PackageFormatError(f"{METADATA}: {col} is not text", code="parquet.schema")
            return value

        sim_id = text(cols.value("sim_id", required=True), "sim_id")
        years = number(cols.value("duration_years", required=True))
        seed = cols.value("seed", required=True)
        if isinstance(seed, float) and seed.is_integer():
            seed = int(seed)
        if years is None or not 0 < years <= 1000:
            raise PackageFormatError(
                f"{METADATA}: duration_years must be a positive number of years",
                code="legacy.metadata",
            )
        if isinstance(seed, bool) or not isinstance(seed, int) or not -(2**63) <= seed < 2**63:
            raise PackageFormatError(
                f"{METADATA}: seed must be a whole number", code="legacy.metadata"
            )
        n = number(cols.value("n_patients"))
        runtime = number(cols.value("runtime_seconds"))
        assert sim_id is not None
        return _EarlierMeta(
            sim_id=sim_id,
            memorable_name=text(cols.value("memorable_name"), "memorable_name"),
            engine_type=text(cols.value("engine_type"), "engine_type"),
            n_patients=int(n) if n is not None and n.is_integer() else None,
            duration_years=years,
            seed=seed,
            timestamp=_utc_time(cols.value("timestamp")),
            runtime_seconds=runtime if runtime is not None and runtime >= 0 else 0.0,
        )

    def _our_metadata(self, em: _EarlierMeta, patients: int) -> SimulationMetadata:
        assert self.conversion is not None
        if path_like(em.sim_id):
            raise PackageSecurityError(
                f"{METADATA}: sim_id {_shown(em.sim_id)} looks like a path; refusing a "
                "doctored package",
                code="name.unsafe_id",
            )
        if em.sim_id != self.manifest["sim_id"]:
            raise PackageIntegrityError(
                f"{METADATA}: sim_id differs from manifest.json", code="consistency.sim_id"
            )
        sim_id = em.sim_id if SIM_ID_PATTERN.match(em.sim_id) else derived_sim_id(em.sim_id)
        name = em.memorable_name
        if name is not None and path_like(name):
            raise PackageSecurityError(
                f"{METADATA}: memorable_name {_shown(name)} looks like a path; refusing a "
                "doctored package",
                code="name.unsafe_name",
            )
        if not name or not name.strip() or len(name) > 200 or not name.isprintable():
            name = sim_id
        engine = em.engine_type if em.engine_type and _ENGINE.match(em.engine_type) else "unknown"
        created = em.timestamp or _utc_time(self.manifest["created_date"])
        assert created is not None
        protocol = self.conversion.loaded.protocol
        return SimulationMetadata(
            sim_id=sim_id,
            name=name.strip(),
            protocol_name=protocol.name,
            protocol_version=protocol.version,
            protocol_fingerprint=self.conversion.fingerprint,
            engine_version=f"earlier APE ({engine})",
            patients=patients,
            years=em.duration_years,
            seed=em.seed,
            created_utc=created,
            runtime_seconds=em.runtime_seconds,
        )

    def metadata_json(self) -> dict[str, Any] | None:
        return self.metadata.to_json() if self.metadata is not None else None

    # -- consistency and conversion ------------------------------------------------------

    def check_consistency(self) -> ValidatedPackage:
        assert self.metadata is not None and self.earlier_meta is not None
        assert self.conversion is not None
        self._check_parameters_agree()
        converted = _convert_tables(self.tables)
        check_tables_agree(converted.patients, converted.visits)
        _check_declared_summary(self.parsed[SUMMARY], converted)
        summary = compute_summary(converted.patients, converted.visits, self.metadata.years)
        folder = self._folder_files(converted, summary)
        return ValidatedPackage(
            format=self.label,
            sim_id=self.metadata.sim_id,
            metadata=self.metadata,
            summary=summary,
            folder_files=folder,
            audit_events=self.parsed[AUDIT],
            created_by=None,
            created_date=str(self.manifest["created_date"]),
            ape_version=None,
            import_note=self._import_note(),
        )

    def _check_parameters_agree(self) -> None:
        params, em = self.parsed[PARAMETERS], self.earlier_meta
        assert em is not None
        pairs = {
            "engine_type": em.engine_type,
            "n_patients": em.n_patients,
            "duration_years": em.duration_years,
            "seed": em.seed,
        }
        for key, value in pairs.items():
            if value is not None and params[key] != value:
                raise PackageIntegrityError(
                    f"parameters.json: {key} differs from {METADATA}", code="consistency.parameters"
                )

    def _import_note(self) -> str:
        """The imported event's note: what the conversion could not keep as it was."""
        assert self.earlier_meta is not None and self.metadata is not None
        assert self.conversion is not None
        note = IMPORT_NOTE
        if self.metadata.sim_id != self.earlier_meta.sim_id:
            note += f"; original sim_id {json.dumps(self.earlier_meta.sim_id)}"
        if self.conversion.unmapped:
            fields = ", ".join(self.conversion.unmapped_fields)
            note += f"; protocol fields that do not map: {fields}"
        return note

    def _folder_files(self, converted: _Converted, summary: dict[str, Any]) -> dict[str, Any]:
        assert self.metadata is not None and self.conversion is not None
        years = self.metadata.years
        span = int(converted.enrol.max(initial=0)) * 12 / DAYS_PER_YEAR
        parameters = {
            "patients": self.metadata.patients,
            "years": years,
            "seed": self.metadata.seed,
            "recruitment_months": round(min(span, 12 * years), 3),
        }
        files: dict[str, bytes | memoryview] = {
            layout.PATIENTS: _parquet_bytes(converted.patients),
            layout.VISITS: _parquet_bytes(converted.visits),
            layout.METADATA: _parquet_bytes(self.metadata.to_table()),
            layout.PROTOCOL: self.conversion.text.encode("utf-8"),
            layout.PARAMETERS: dump_json(parameters).encode("utf-8"),
            layout.SUMMARY: summary_json(summary).encode("utf-8"),
            layout.EXTRA_PATIENTS: _parquet_bytes(converted.patients_extra),
            layout.EXTRA_VISITS: _parquet_bytes(converted.visits_extra),
        }
        for name, kept in SOURCE_FILES.items():
            if name in self.contents:
                files[kept] = self.contents[name]
        return files


_SUMMARY_KEYS = (
    "total_patients",
    "patient_count",
    "total_visits",
    "total_injections",
    "mean_visits_per_patient",
    "mean_final_vision",
    "std_final_vision",
    "discontinuation_rate",
)


@dataclass(frozen=True)
class _Converted:
    """The earlier tables in APE's schemas, with what the earlier statistics need."""

    patients: pa.Table
    visits: pa.Table
    patients_extra: pa.Table
    visits_extra: pa.Table
    enrol: IntArray
    final_vision: FloatArray  # as written (before rounding and clipping)
    last_vision: FloatArray  # last visit's vision as written, NaN for a patient never seen
    discontinued: BoolArray  # the earlier flag: deaths included


def _map_states(name: str, col: str, values: pa.Array) -> npt.NDArray[np.int8]:
    """Earlier state strings -> indices into APE's STATES (-1 where missing); a state APE
    does not know is refused."""
    encoded = values.dictionary_encode()
    lookup = []
    for raw in encoded.dictionary.to_pylist():
        state = earlier_state(raw)
        if state is None:
            raise PackageFormatError(
                f"{name}: {col} {_shown(raw)} is not a disease state APE knows",
                code="legacy.state",
            )
        lookup.append(STATES.index(state))
    indices = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False))
    table = np.asarray([*lookup, -1], dtype=np.int8)  # index -1 picks the trailing -1
    return table[indices.astype(np.int64)]


def _clean(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def _stops(
    n: int,
    flag: npt.NDArray[np.int8] | None,
    time: FloatArray | None,
    kinds: pa.Array | None,
    reasons: pa.Array | None,
    last_day: IntArray,
) -> tuple[BoolArray, BoolArray, IntArray, npt.NDArray[np.int8]]:
    """Who stopped treatment, who died, on which day, and APE's reason for each stop."""
    time = np.full(n, np.nan) if time is None else time
    known = ~np.isnan(time)
    stopped = known.copy() if flag is None else np.where(flag >= 0, flag == 1, known)
    kind = [_clean(v) for v in (kinds.to_pylist() if kinds is not None else [None] * n)]
    why = [_clean(v) for v in (reasons.to_pylist() if reasons is not None else [None] * n)]
    died = stopped & np.array(
        [k in DEATH_TYPES or (not k and w in DEATH_TYPES) for k, w in zip(kind, why, strict=True)],
        dtype=bool,
    )
    day = np.where(known, np.floor(np.where(known, time, 0) + 0.5), last_day).astype(np.int64)
    reason = np.array(
        [
            DISCONTINUATION_REASONS.index(REASON_OF_TYPE.get(k or w, "premature"))
            for k, w in zip(kind, why, strict=True)
        ],
        dtype=np.int8,
    )
    return stopped & ~died, died, day, reason


def _patient_ids(p: _Columns, index_table: pa.Table) -> pa.Array:
    """The earlier patient ids: unique, and exactly those of patient_index.parquet."""
    ids = p.string("patient_id", required=True)
    assert ids is not None
    n = len(ids)
    if n > _INT32_MAX:
        raise PackageLimitError(f"{PATIENTS}: too many patients", code="legacy.range")
    if pc.count_distinct(ids).as_py() != n:
        raise PackageIntegrityError(
            f"{PATIENTS}: patient_id is not unique", code="consistency.duplicate_patient"
        )
    index = _Columns(PATIENT_INDEX, index_table).string("patient_id", required=True)
    assert index is not None
    if len(index) != n or pc.any(pc.is_null(pc.index_in(index, value_set=ids))).as_py():
        raise PackageIntegrityError(
            f"{PATIENT_INDEX}: does not list exactly the patients of {PATIENTS}",
            code="consistency.patient_index",
        )
    return ids


@dataclass(frozen=True)
class _VisitRows:
    """Each visit's APE patient id, day and visit number, in APE's row order; `order` maps
    those rows to the earlier table's rows."""

    pid: IntArray
    day: IntArray
    visit: IntArray
    order: IntArray
    last: BoolArray  # the last visit of its patient


def _visit_rows(v: _Columns, ids: pa.Array, enrol: IntArray) -> _VisitRows:
    v_ids = v.string("patient_id", required=True)
    assert v_ids is not None
    position = pc.index_in(v_ids, value_set=ids)
    if position.null_count:
        orphan = v_ids.filter(pc.is_null(position))[0].as_py()
        raise PackageIntegrityError(
            f"{VISITS}: visits of patient {_shown(orphan)}, who is not in {PATIENTS}",
            code="consistency.orphan_visit",
        )
    pid = np.asarray(position.to_numpy(zero_copy_only=False), dtype=np.int64)
    time_days = v.integer("time_days")[0]
    day = _int32(VISITS, "time_days", enrol[pid] + time_days)
    order = np.lexsort((day, pid))
    pid, day = pid[order], day[order]
    if pid.size == 0:
        return _VisitRows(pid, day, pid, order, np.zeros(0, bool))
    same = (pid[1:] == pid[:-1]) & (day[1:] == day[:-1])
    if same.any():
        who = ids[int(pid[1:][same][0])].as_py()
        raise PackageIntegrityError(
            f"{VISITS}: patient {_shown(who)} has two visits on the same day",
            code="consistency.order",
        )
    rows = np.arange(pid.size)
    starts = np.r_[True, pid[1:] != pid[:-1]]
    visit = rows - np.maximum.accumulate(np.where(starts, rows, 0))
    _int16_count(VISITS, "visits per patient", visit)
    return _VisitRows(pid, day, visit, order, np.r_[pid[1:] != pid[:-1], True])


def _check_counts(
    ids: pa.Array, rows: _VisitRows, injected: BoolArray, visits: IntArray, injections: IntArray
) -> None:
    """Each patient's total_visits and total_injections are what the visits table holds."""
    n = len(ids)
    for col, counted, stated, code in (
        ("total_visits", np.bincount(rows.pid, minlength=n), visits, "consistency.visits"),
        (
            "total_injections",
            np.bincount(rows.pid[injected], minlength=n),
            injections,
            "consistency.injections",
        ),
    ):
        if not np.array_equal(counted, stated):
            who = ids[int(np.flatnonzero(counted != stated)[0])].as_py()
            raise PackageIntegrityError(
                f"{PATIENTS}: {col} of patient {_shown(who)} differs from {VISITS}", code=code
            )


def _convert_tables(tables: dict[str, pa.Table]) -> _Converted:
    """The earlier patients and visits in APE's schemas (see docs/package-format.md)."""
    p = _Columns(PATIENTS, tables[PATIENTS])
    v = _Columns(VISITS, tables[VISITS])
    ids = _patient_ids(p, tables[PATIENT_INDEX])
    n = len(ids)
    enrol = _int32(PATIENTS, "enrollment_time_days", p.integer("enrollment_time_days")[0])
    base, base_original = _vision(p, "baseline_vision")
    final, final_original = _vision(p, "final_vision")
    injections = _int16_count(PATIENTS, "total_injections", p.integer("total_injections")[0])
    visit_counts = _int16_count(PATIENTS, "total_visits", p.integer("total_visits")[0])

    rows = _visit_rows(v, ids, enrol)
    order = rows.order
    vision, vision_original = _vision(v, "vision")
    injected = v.boolean("injected", required=True)
    states = v.string("disease_state", required=True)
    assert injected is not None and states is not None
    state_idx = _map_states(VISITS, "disease_state", states)[order]
    injected = injected[order] == 1
    _check_counts(ids, rows, injected, visit_counts, injections)

    last_day = enrol.copy()
    last_day[rows.pid[rows.last]] = rows.day[rows.last]
    last_vision = np.full(n, np.nan)
    written = v.number("vision", required=True)
    assert written is not None
    last_vision[rows.pid[rows.last]] = written[order][rows.last]
    kinds, reasons = p.string("discontinuation_type"), p.string("discontinuation_reason")
    flag, time = p.boolean("discontinued"), p.number("discontinuation_time")
    stopped, died, stop_day, reason = _stops(n, flag, time, kinds, reasons, last_day)
    stop_day = _int32(PATIENTS, "discontinuation_time", stop_day)

    next_interval = v.number("next_interval_days")
    nxt = np.full(order.size, np.nan) if next_interval is None else next_interval[order]
    nxt_ok = ~np.isnan(nxt) & (nxt >= 0) & (nxt <= _INT16_MAX)
    patients = pa.Table.from_arrays(
        [
            pa.array(np.arange(n, dtype=np.int32)),
            pa.array(enrol.astype(np.int32)),
            pa.array(np.full(n, AGE_UNKNOWN, np.int16)),
            _dictionary(np.full(n, SEX_VALUES.index(SEX_UNKNOWN)), dictionary(SEX_VALUES)),
            pa.array(base.astype(np.int16)),
            pa.array(final.astype(np.int16)),
            pa.array(injections.astype(np.int16)),
            pa.array(visit_counts.astype(np.int16)),
            pa.array(stop_day.astype(np.int32), pa.int32(), mask=~stopped),
            _dictionary(reason, dictionary(DISCONTINUATION_REASONS), mask=~stopped),
            pa.array(stop_day.astype(np.int32), pa.int32(), mask=~died),
        ],
        schema=PATIENTS_SCHEMA,
    )
    visits = pa.Table.from_arrays(
        [
            pa.array(rows.pid.astype(np.int32)),
            pa.array(rows.day.astype(np.int32)),
            pa.array(rows.visit.astype(np.int16)),
            _dictionary(state_idx, dictionary(STATES)),
            pa.array(vision[order].astype(np.int16)),
            pa.array(injected),
            pa.array(np.where(nxt_ok, nxt, 0).astype(np.int16), pa.int16(), mask=~nxt_ok),
        ],
        schema=VISITS_SCHEMA,
    )
    final_written = p.number("final_vision", required=True)
    assert final_written is not None
    return _Converted(
        patients=patients,
        visits=visits,
        patients_extra=_patients_extra(p, ids, base_original, final_original),
        visits_extra=_visits_extra(v, rows, vision_original, next_interval, nxt_ok),
        enrol=enrol,
        final_vision=final_written,
        last_vision=last_vision,
        discontinued=stopped | died,
    )


def _extra_table(key: list[tuple[str, pa.Array]], columns: list[tuple[str, pa.Array]]) -> pa.Table:
    names = [k for k, _ in key]
    arrays = [a for _, a in key]
    for col, array in columns:
        name = col
        while name in names:  # an earlier column whose name APE uses here
            name = f"earlier_{name}"
        names.append(name)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=names)


def _patients_extra(
    p: _Columns, ids: pa.Array, base: FloatArray | None, final: FloatArray | None
) -> pa.Table:
    """Per patient (our id), the earlier columns APE's patients table has no place for."""
    n = len(ids)
    columns: list[tuple[str, pa.Array]] = []
    for col, read in (
        ("enrollment_date", p.timestamp),
        ("final_disease_state", p.string),
        ("discontinued", p.boolean),
        ("discontinuation_time", p.number),
        ("discontinuation_type", p.string),
        ("discontinuation_reason", p.string),
        ("pre_discontinuation_vision", p.number),
        ("retreatment_count", p.number),
    ):
        values = read(col)
        if values is None:
            continue
        if col == "final_disease_state":
            states = _map_states(PATIENTS, col, values)
            values = _dictionary(np.maximum(states, 0), dictionary(STATES), mask=states < 0)
        elif col == "discontinued":
            values = pa.array(values == 1, mask=values < 0)
        elif isinstance(values, np.ndarray):
            values = pa.array(values, pa.float64(), mask=np.isnan(values))
            if col == "retreatment_count":
                values = values.cast(pa.int64(), safe=False)
        columns.append((col, values))
    for col, values in (("baseline_vision_as_written", base), ("final_vision_as_written", final)):
        if values is not None:
            columns.append((col, pa.array(values, pa.float64())))
    columns.extend(p.others())
    key = [
        ("patient_id", pa.array(np.arange(n, dtype=np.int32))),
        ("earlier_patient_id", ids),
    ]
    return _extra_table(key, columns)


def _visits_extra(
    v: _Columns,
    rows: _VisitRows,
    vision: FloatArray | None,
    next_interval: FloatArray | None,
    next_ok: BoolArray,
) -> pa.Table:
    """Per visit (our patient_id and visit, in visits.parquet's row order), the earlier columns
    APE's visits table has no place for, and originals APE had to change."""
    order = rows.order
    take = pa.array(order)
    columns: list[tuple[str, pa.Array]] = []
    date = v.timestamp("date")
    if date is not None:
        columns.append(("date", date.take(take)))
    if vision is not None:
        columns.append(("vision_as_written", pa.array(vision[order], pa.float64())))
    if next_interval is not None:
        written = next_interval[order]
        if np.any(~np.isnan(written) & ~next_ok):
            columns.append(
                ("next_interval_days_as_written", pa.array(written, mask=np.isnan(written)))
            )
    columns.extend((col, array.take(take)) for col, array in v.others())
    key = [
        ("patient_id", pa.array(rows.pid.astype(np.int32))),
        ("visit", pa.array(rows.visit.astype(np.int16))),
    ]
    return _extra_table(key, columns)


# -- agreement with the earlier summary_stats.json ------------------------------------------


def _mean_sd(values: FloatArray, ddof: int) -> tuple[float, float]:
    """Mean and standard deviation as the earlier engines computed them (0 when undefined)."""
    n = values.size
    if n == 0:
        return 0.0, 0.0
    mean = math.fsum(values) / n
    if n <= ddof:
        return mean, 0.0
    return mean, math.sqrt(math.fsum((values - mean) ** 2) / (n - ddof))


def final_vision_definitions(converted: _Converted) -> dict[str, tuple[float, float]]:
    """The earlier engines' definitions of the final vision's mean and sd: the visit-based
    engines over every patient's last vision with the sample sd; the time-based engine over
    the patients seen at least once with the population sd (numpy's default)."""
    seen = converted.last_vision[~np.isnan(converted.last_vision)]
    return {
        "all patients, sample sd": _mean_sd(converted.final_vision, 1),
        "all patients, population sd": _mean_sd(converted.final_vision, 0),
        "patients seen, sample sd": _mean_sd(seen, 1),
        "patients seen, population sd": _mean_sd(seen, 0),
    }


def _close(declared: float, recomputed: float) -> bool:
    return math.isclose(declared, recomputed, rel_tol=REL_TOL, abs_tol=REL_TOL)


def earlier_statistics(converted: _Converted) -> dict[str, float]:
    """The earlier summary's counts and rates, recomputed from the converted tables."""
    n = converted.patients.num_rows
    visits = converted.visits.num_rows
    injections = int(pc.sum(converted.visits.column("injected").cast(pa.int64())).as_py() or 0)
    return {
        "total_patients": n,
        "patient_count": n,
        "total_visits": visits,
        "total_injections": injections,
        "mean_visits_per_patient": visits / n if n else 0.0,
        "discontinuation_rate": int(converted.discontinued.sum()) / n if n else 0.0,
    }


def _check_declared_summary(declared: dict[str, Any], converted: _Converted) -> None:
    """Every quantity the earlier summary_stats.json states must agree with the tables."""
    recomputed = earlier_statistics(converted)
    for key, value in recomputed.items():
        stated = declared.get(key)
        if stated is not None and not (
            stated == value if isinstance(value, int) else _close(float(stated), value)
        ):
            raise PackageIntegrityError(
                f"{SUMMARY}: {key} is {stated}, but the tables give {value}",
                code="consistency.summary",
            )
    mean, sd = declared.get("mean_final_vision"), declared.get("std_final_vision")
    if mean is None and sd is None:
        return
    for got_mean, got_sd in final_vision_definitions(converted).values():
        if (mean is None or _close(mean, got_mean)) and (sd is None or _close(sd, got_sd)):
            return
    raise PackageIntegrityError(
        f"{SUMMARY}: mean_final_vision {mean} and std_final_vision {sd} agree with no "
        "definition of the earlier APE recomputed from the tables",
        code="consistency.summary",
    )


__all__ = [
    "IMPORT_NOTE",
    "KNOWN_FILES",
    "LABEL",
    "SOURCE_FILES",
    "LegacyFormat",
    "derived_sim_id",
    "earlier_json",
    "final_vision_definitions",
    "path_like",
]
