"""Validate an untrusted package, cheapest checks first, before anything is written.

`inspect_package` runs every stage it can and reports each one (it never raises for a bad
package); `validate_package` raises the first failure's `PackageError`. Each stage either
passes or fails with a stable finding code. The stages themselves run in a worker process
(`isolation.py`) and live in `stages.py`; this module is the caller's side, light enough
that a caller forks its worker before the format's libraries (Arrow, pydantic) are loaded.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from apesim.errors import PackageError, PackageLimitError
from apesim.package import format as fmt
from apesim.package.report import STAGES, Check, PackageReport, unreadable_report
from apesim.package.source import PackageSource, load_source


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
    from apesim.package.signature import verdict, verify_envelope

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
    from apesim.package.stages import inspect_loaded

    return inspect_loaded(loaded, limits, base=base)


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
        from apesim.package.signature import require

        require(report.verdict, report.source_name)
    return report


__all__ = [
    "STAGES",
    "Check",
    "PackageReport",
    "inspect_package",
    "judge",
    "unreadable_report",
    "validate_package",
]
