"""The validation stages of a package already in memory, run in the reader's worker.

Format-specific stages live in a handler (`handler.py` is the contract), chosen here by the
manifest: `current.py` for APE format 1.x, `differential.py` for a differential package
rebuilt on its base, `legacy/` for packages of the earlier APE.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
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
from apesim.package.handler import FormatHandler
from apesim.package.names import ARCHIVE_MAGIC, check_names
from apesim.package.report import STAGES, Check, PackageReport, located
from apesim.package.safezip import (
    DEFLATED,
    ZipEntry,
    check_canonical,
    read_directory,
    read_entry,
)
from apesim.package.source import LoadedSource


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
    if not signed:
        return
    from apesim.package.signature import verify_envelope  # cryptography: only when signed

    for name in sorted(signed):
        report.signatures.append(verify_envelope(name, bytes(st.contents[name]), st.manifest_raw))
    assert st.source is not None  # each signature member keeps its date (countersigning)
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
            exc = located(exc, report.source_name)
            report.error = exc
            report.checks.append(Check(code, label, False, str(exc), exc.code))
        else:
            report.checks.append(Check(code, label, True))
    if st.handler is not None and report.summary is None and st.checksummed:
        report.summary = st.handler.declared_summary(st.contents, st.limits)
    return report


__all__ = ["inspect_loaded", "select_handler"]
