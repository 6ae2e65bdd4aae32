"""Validate an untrusted package, cheapest checks first, before anything is written.

`inspect_package` runs every stage it can and reports each one (it never raises for a bad
package); `validate_package` raises the first failure's `PackageError`. Each stage either
passes or fails with a stable finding code. Format-specific stages live in a handler
(`handler.py` is the contract), chosen here by the manifest: `current.py` for APE format
1.x, `legacy/` for packages of the earlier APE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from apesim import faults
from apesim.errors import (
    PackageError,
    PackageFormatError,
    PackageLimitError,
    PackageSecurityError,
    PackageVersionError,
)
from apesim.package import format as fmt
from apesim.package.content import strict_json
from apesim.package.current import CurrentFormat
from apesim.package.differential import DifferentialFormat
from apesim.package.handler import FormatHandler, ValidatedPackage
from apesim.package.names import ARCHIVE_MAGIC, check_names
from apesim.package.safezip import (
    DEFLATED,
    ZipEntry,
    check_canonical,
    read_directory,
    read_entry,
)
from apesim.package.signature import (
    PackageSignature,
    SignatureVerdict,
    require,
    verdict,
    verify_envelope,
)
from apesim.package.source import LoadedSource, PackageSource, load_source

STAGES: tuple[tuple[str, str], ...] = (
    ("container", "ZIP structure is sound (nothing prepended, appended, overlapping or encrypted)"),
    ("names", "Entry names are safe (no paths, links, duplicates or nested archives)"),
    ("limits", "Sizes, entry count and compression ratios are within limits"),
    ("manifest", "Manifest is present and valid"),
    ("version", "Package format version is supported"),
    ("files", "Files present are exactly those the manifest lists"),
    ("checksums", "Every file matches its size and SHA-256"),
    ("signatures", "Every signature verifies and names this package's manifest"),
    ("content", "JSON, YAML, protocol and audit trail are well-formed and safe"),
    ("tables", "Parquet tables have the schema the format specifies"),
    ("consistency", "Tables, metadata and summary statistics agree"),
)


@dataclass(frozen=True)
class Check:
    """The outcome of one validation stage: passed, failed, or not run (None)."""

    code: str
    label: str
    passed: bool | None
    message: str = ""
    finding: str | None = None  # the stable code of the failure


@dataclass
class PackageReport:
    """What `ape inspect` shows and the app previews: never raises for a bad package."""

    source_name: str
    size: int = 0
    sha256: str = ""
    format: str = "unknown"
    checks: list[Check] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    metadata: dict[str, Any] | None = None
    summary: dict[str, Any] | None = None
    error: PackageError | None = None
    validated: ValidatedPackage | None = None
    reader_peak_bytes: int | None = None  # the memory a worker process added at its peak
    manifest_sha256: str = ""  # SHA-256 of manifest.json as in the package
    signatures: list[PackageSignature] = field(default_factory=list)  # each one verified
    verdict: SignatureVerdict | None = None  # the signatures against a trust list

    @property
    def ok(self) -> bool:
        return self.error is None and self.validated is not None

    @property
    def created_by(self) -> str | None:
        return self.validated.created_by if self.validated else _get(self.manifest, "created_by")

    @property
    def created_date(self) -> str | None:
        return (
            self.validated.created_date if self.validated else _get(self.manifest, "created_date")
        )

    @property
    def ape_version(self) -> str | None:
        return self.validated.ape_version if self.validated else _get(self.manifest, "ape_version")

    def to_json(self) -> dict[str, Any]:
        return {
            "file": self.source_name,
            "size": self.size,
            "sha256": self.sha256,
            "format": self.format,
            "valid": self.ok,
            "error": None
            if self.error is None
            else {"code": self.error.code, "message": str(self.error)},
            "warnings": self.warnings,
            "checks": [
                {
                    "code": c.code,
                    "label": c.label,
                    "passed": c.passed,
                    "message": c.message,
                    "finding": c.finding,
                }
                for c in self.checks
            ],
            "signature": None if self.verdict is None else self.verdict.to_json(),
            "manifest": self.manifest,
            "metadata": self.metadata,
            "summary": self.summary,
        }


def _get(d: dict[str, Any] | None, key: str) -> Any:
    return d.get(key) if isinstance(d, dict) else None


@dataclass
class _State:
    """What earlier stages found, for the later ones."""

    limits: fmt.ReadLimits
    source: LoadedSource | None = None
    entries: dict[str, ZipEntry] = field(default_factory=dict)
    all_entries: list[ZipEntry] = field(default_factory=list)
    handler: FormatHandler[Any, Any, Any] | None = None
    manifest_raw: Any = None
    version_error: PackageVersionError | None = None
    version_warning: str | None = None
    contents: dict[str, memoryview] = field(default_factory=dict)
    checksummed: bool = False  # every file matched its checksum
    # What each stage of the handler found, for the later stages.
    manifest: Any = None
    content: Any = None
    tables: Any = None
    base: dict[str, bytes] | None = None  # a differential package's base tables


def select_handler(
    manifest: Any, base: dict[str, bytes] | None = None
) -> FormatHandler[Any, Any, Any]:
    """Our format by its `package_version` and `files` (a differential package by its
    `format`, rebuilt on `base`); the earlier APE's by its `package_type` and
    `file_checksums`."""
    if isinstance(manifest, dict):
        if manifest.get("format") == fmt.DIFFERENTIAL_FORMAT:
            return DifferentialFormat(base)
        if manifest.get("package_type") == "ape_simulation" and "file_checksums" in manifest:
            from apesim.package.legacy import LegacyFormat  # loaded only for their packages

            return LegacyFormat()
        if "files" in manifest or "package_version" in manifest:
            return CurrentFormat()
    raise PackageFormatError(
        "manifest.json: not an APE package manifest (no package_version/files)",
        code="manifest.schema",
    )


def _stage_container(st: _State, report: PackageReport) -> None:
    assert st.source is not None
    entries = read_directory(st.source.data, st.limits.max_entries)
    st.all_entries = entries
    st.entries = {e.name: e for e in entries}


def _stage_names(st: _State, report: PackageReport) -> None:
    check_names(st.all_entries, None)


def _stage_limits(st: _State, report: PackageReport) -> None:
    lim = st.limits
    total = 0
    for entry in st.entries.values():
        total += entry.size
        if total > lim.max_total_bytes:
            raise PackageLimitError(
                f"the package unpacks to more than {lim.max_total_bytes:,} bytes"
                + fmt.limit_hint("max_unpacked_gib"),
                code="limit.total_size",
            )
        if entry.compressed_size and entry.size / entry.compressed_size > lim.max_ratio:
            raise PackageLimitError(
                f"{entry.name}: compression ratio {entry.size / entry.compressed_size:.0f}:1 "
                f"exceeds the limit of {lim.max_ratio:.0f}:1" + fmt.limit_hint("max_ratio"),
                code="limit.ratio",
            )
        if (
            entry.name.endswith(".parquet")
            and entry.method == DEFLATED
            and entry.size > lim.max_deflated_parquet_bytes
        ):
            raise PackageLimitError(
                f"{entry.name}: a DEFLATEd Parquet file of {entry.size:,} bytes exceeds the "
                f"limit of {lim.max_deflated_parquet_bytes:,} (store Parquet files uncompressed "
                "in the ZIP: they are compressed inside)",
                code="limit.file_size",
            )
        if not entry.name.endswith(".parquet") and entry.size > lim.text_limit(entry.name):
            raise PackageLimitError(
                f"{entry.name}: {entry.size:,} bytes exceeds the limit of "
                f"{lim.text_limit(entry.name):,} for this file",
                code="limit.file_size",
            )


def _read(st: _State, name: str) -> memoryview:
    assert st.source is not None
    entry = st.entries[name]
    limit = st.limits.max_total_bytes if name.endswith(".parquet") else st.limits.text_limit(name)
    data = read_entry(st.source.data, entry, max_bytes=limit, max_ratio=st.limits.max_ratio)
    head = bytes(data[:8])
    if not name.endswith(".parquet") and any(head.startswith(m) for m in ARCHIVE_MAGIC):
        raise PackageSecurityError(f"{name}: holds a nested archive", code="name.nested_archive")
    return data


def _stage_manifest(st: _State, report: PackageReport) -> None:
    if fmt.MANIFEST not in st.entries:
        raise PackageFormatError(
            "manifest.json is missing: this is not an APE package", code="manifest.missing"
        )
    data = _read(st, fmt.MANIFEST)
    st.contents[fmt.MANIFEST] = data
    st.manifest_raw = strict_json(fmt.MANIFEST, data, st.limits)
    report.manifest = st.manifest_raw if isinstance(st.manifest_raw, dict) else None
    report.manifest_sha256 = hashlib.sha256(data).hexdigest()
    st.handler = select_handler(st.manifest_raw, st.base)
    report.format = st.handler.label
    try:
        found = st.handler.check_manifest(st.manifest_raw)
    except PackageVersionError as exc:  # reported by the version stage, which comes next
        st.version_error = exc
        return
    st.manifest, st.version_warning = found.manifest, found.warning
    report.format = found.label


def _stage_version(st: _State, report: PackageReport) -> None:
    if st.version_error is not None:
        raise st.version_error
    if st.version_warning:
        report.warnings.append(st.version_warning)


def _stage_files(st: _State, report: PackageReport) -> None:
    assert st.handler is not None
    st.handler.check_files(st.manifest, set(st.entries))


def _stage_checksums(st: _State, report: PackageReport) -> None:
    assert st.handler is not None
    for name in sorted(st.entries):
        if name != fmt.MANIFEST:
            st.contents[name] = _read(st, name)
    st.handler.check_checksums(st.manifest, st.contents)
    st.checksummed = True


def _stage_signatures(st: _State, report: PackageReport) -> None:
    """Each signature member (the files stage admitted only well-named ones, in format 1.1
    and later) verifies and names this manifest; read under the limits stage's bounds."""
    signed = {name for name in st.entries if name.startswith(fmt.SIGNATURES_DIR)}
    for name in sorted(signed):
        report.signatures.append(verify_envelope(name, bytes(st.contents[name]), st.manifest_raw))
    if signed:  # each signature member keeps the date it was added on (countersigning)
        assert st.source is not None
        check_canonical(st.source.data, st.all_entries, signed)


def _stage_content(st: _State, report: PackageReport) -> None:
    assert st.handler is not None
    st.content = st.handler.check_content(st.manifest, st.contents, st.limits)


def _stage_tables(st: _State, report: PackageReport) -> None:
    faults.point("read.tables")
    assert st.handler is not None
    st.tables = st.handler.check_tables(st.manifest, st.content, st.contents, st.limits)
    report.metadata = st.handler.metadata_json(st.tables)


def _stage_consistency(st: _State, report: PackageReport) -> None:
    assert st.handler is not None
    report.validated = st.handler.check_consistency(st.manifest, st.content, st.tables, st.contents)
    report.summary = dict(report.validated.summary)


_RUNNERS: dict[str, Callable[[_State, PackageReport], None]] = {
    "container": _stage_container,
    "names": _stage_names,
    "limits": _stage_limits,
    "manifest": _stage_manifest,
    "version": _stage_version,
    "files": _stage_files,
    "checksums": _stage_checksums,
    "signatures": _stage_signatures,
    "content": _stage_content,
    "tables": _stage_tables,
    "consistency": _stage_consistency,
}


def inspect_package(
    source: PackageSource,
    *,
    limits: fmt.ReadLimits | None = None,
    source_name: str | None = None,
    isolate: bool = True,
    base: dict[str, bytes] | None = None,
    trust: Mapping[str, str] | None = None,
    beside: Sequence[tuple[str, bytes]] = (),
) -> PackageReport:
    """Validate a package stage by stage and report each stage; never raises PackageError.
    With `isolate` (the default) the checks run in a child process that may die on a
    malformed file without taking APE with it (`isolation.py`). `base`: the base
    simulation's tables (file name -> bytes) that a differential package is rebuilt on. A
    valid package's signatures, with those kept `beside` it (name, bytes), are judged
    against `trust` (key id -> name) into `report.verdict`."""
    report = _inspect(source, limits, source_name, isolate, base)
    return judge(report, trust or {}, beside)


def judge(
    report: PackageReport, trust: Mapping[str, str], beside: Sequence[tuple[str, bytes]] = ()
) -> PackageReport:
    """Check the signatures kept beside a valid package (small files, parsed under the
    same limits as its members) and give the report its verdict."""
    if not report.ok:
        return report
    for name, data in beside:
        try:
            if len(data) > fmt.SIGNATURE_MAX_BYTES:
                raise PackageLimitError(
                    f"{len(data):,} bytes exceeds the limit of {fmt.SIGNATURE_MAX_BYTES:,} for a "
                    "signature file",
                    code="limit.file_size",
                )
            found = verify_envelope(name, data, report.manifest)
        except PackageError as exc:
            error = (
                exc
                if str(exc).startswith(f"{name}:")
                else type(exc)(f"{name}: {exc}", code=exc.code)
            )
            report.error = error
            report.checks = [
                Check(c.code, c.label, False, str(error), error.code)
                if c.code == "signatures"
                else c
                for c in report.checks
            ]
            return report
        if all(s.key_id != found.key_id for s in report.signatures):
            report.signatures.append(found)
    report.verdict = verdict(report.signatures, dict(trust))
    return report


def _inspect(
    source: PackageSource,
    limits: fmt.ReadLimits | None,
    source_name: str | None,
    isolate: bool,
    base: dict[str, bytes] | None,
) -> PackageReport:
    limits = limits or fmt.ReadLimits()
    try:
        loaded = load_source(source, limits.max_total_bytes, source_name)
    except PackageError as exc:
        report = PackageReport(source_name=source_name or "package", error=exc)
        report.checks = [Check(c, label, None) for c, label in STAGES]
        report.checks[0] = Check("container", STAGES[0][1], False, str(exc), exc.code)
        return report
    if isolate:
        from apesim.package.isolation import inspect_in_child

        return inspect_in_child(loaded, limits, base)
    return inspect_loaded(loaded, limits, base=base)


def inspect_loaded(
    source: LoadedSource,
    limits: fmt.ReadLimits,
    on_stage: Callable[[str], None] | None = None,
    *,
    base: dict[str, bytes] | None = None,
) -> PackageReport:
    """Every stage on a package already read into memory, in this process; `on_stage` hears
    each stage's code before it runs."""
    st = _State(limits=limits, source=source, base=base)
    report = PackageReport(source_name=source.name, size=source.size, sha256=source.sha256)
    for code, label in STAGES:
        if report.error is not None:
            report.checks.append(Check(code, label, None))
            continue
        if on_stage is not None:
            on_stage(code)
        try:
            try:
                _RUNNERS[code](st, report)
            except PackageError:
                raise
            except Exception as bug:  # a bug of ours: a stranger's file must never crash APE
                raise PackageFormatError(
                    f"the package could not be read ({label.lower()}: "
                    f"{type(bug).__name__}: {str(bug)[:200]})",
                    code="package.unreadable",
                ) from bug
        except PackageError as exc:
            exc = _located(exc, report.source_name)
            report.error = exc
            report.checks.append(Check(code, label, False, str(exc), exc.code))
        else:
            report.checks.append(Check(code, label, True))
    if st.handler is not None and report.summary is None and st.checksummed:
        report.summary = st.handler.declared_summary(st.contents, st.limits)
    return report


def unreadable_report(
    source: LoadedSource, stage: str | None, error: PackageError
) -> PackageReport:
    """The report of a package whose reading ended abnormally during `stage` (the stages
    before it passed)."""
    report = PackageReport(
        source_name=source.name, size=source.size, sha256=source.sha256, error=error
    )
    reached = False
    for code, label in STAGES:
        if code == stage:
            reached = True
            report.checks.append(Check(code, label, False, str(error), error.code))
        else:
            report.checks.append(Check(code, label, None if reached or stage is None else True))
    return report


def _located(exc: PackageError, source_name: str) -> PackageError:
    """The same error, its message prefixed with the package's file name."""
    if str(exc).startswith(f"{source_name}:"):
        return exc
    located = type(exc)(f"{source_name}: {exc}", code=exc.code)
    located.__cause__ = exc.__cause__
    return located


def validate_package(
    source: PackageSource,
    *,
    limits: fmt.ReadLimits | None = None,
    source_name: str | None = None,
    base: dict[str, bytes] | None = None,
    trust: Mapping[str, str] | None = None,
    beside: Sequence[tuple[str, bytes]] = (),
    require_signature: bool = False,
) -> PackageReport:
    """Like `inspect_package`, but raise the first failure's PackageError; with
    `require_signature`, also a package that no trusted key signed."""
    report = inspect_package(
        source, limits=limits, source_name=source_name, base=base, trust=trust, beside=beside
    )
    if report.error is not None:
        raise report.error
    if require_signature and report.verdict is not None:
        require(report.verdict, report.source_name)
    return report
