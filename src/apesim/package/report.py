"""The report of a package's validation: its stages, each stage's outcome, and what the
reader found. Shared by the caller (`reader.py`) and the worker that runs the stages
(`stages.py`, through `isolation.py`), which pickles it back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from apesim.errors import PackageError
from apesim.package.source import LoadedSource

if TYPE_CHECKING:
    from apesim.package.handler import ValidatedPackage
    from apesim.package.signature import PackageSignature, SignatureVerdict

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


def located(exc: PackageError, source_name: str) -> PackageError:
    """The same error, its message prefixed with the package's file name."""
    if str(exc).startswith(f"{source_name}:"):
        return exc
    located = type(exc)(f"{source_name}: {exc}", code=exc.code)
    located.__cause__ = exc.__cause__
    return located


__all__ = ["STAGES", "Check", "PackageReport", "located", "unreadable_report"]
