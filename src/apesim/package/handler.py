"""The contract between the generic reader and a package format, and the choice of format.

The reader checks the container, names and limits for every package; a handler then checks
what its format says (manifest, files, checksums, content, tables, consistency) and, when all
holds, produces a `ValidatedPackage`: everything the importer writes, already checked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

from apesim.audit import AuditEvent
from apesim.errors import PackageFormatError
from apesim.package import format as fmt
from apesim.results.metadata import SimulationMetadata
from apesim.results.summary import Summary


@dataclass(frozen=True)
class ValidatedPackage:
    """A package that passed every check, ready to install into a workspace."""

    format: str
    sim_id: str
    metadata: SimulationMetadata
    summary: Summary
    folder_files: dict[str, bytes | memoryview]  # workspace file name -> content (no audit)
    audit_events: list[AuditEvent]  # the package's trail, to which `imported` is appended
    created_by: str | None
    created_date: str | None
    ape_version: str | None
    import_note: str | None = None  # e.g. "converted from earlier APE format"
    # Facts for the `imported` event's details (e.g. protocol fields that do not map); the
    # importer's own keys win, except `original_sim_id`: the package's id when ours differs.
    import_details: dict[str, Any] = field(default_factory=dict)


class FormatHandler(ABC):
    """One package format's checks, run by the reader in order."""

    label: str

    @abstractmethod
    def check_manifest(self, raw: Any) -> str | None:
        """Validate the manifest and its version; return a warning or None."""

    @abstractmethod
    def check_files(self, present: set[str]) -> None:
        """The files present are exactly the ones the format and the manifest allow."""

    @abstractmethod
    def check_checksums(self, contents: dict[str, memoryview]) -> None:
        """Every file's size and SHA-256 as the manifest says."""

    @abstractmethod
    def check_content(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        """Parse JSON/YAML safely; validate the protocol and the audit trail."""

    @abstractmethod
    def check_tables(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        """Read the Parquet tables and check their schemas."""

    @abstractmethod
    def check_consistency(self) -> ValidatedPackage:
        """Cross-file checks; return the package ready to install."""

    def metadata_json(self) -> dict[str, Any] | None:
        """The simulation's metadata as far as it is known (for previews)."""
        return None

    def declared_summary(self) -> dict[str, Any] | None:
        """The summary statistics the package declares, if they could be read."""
        return None


def select_handler(manifest: Any, names: set[str]) -> FormatHandler:
    """Our format by its `package_version` and `files`; the earlier APE's by its
    `package_type` and `file_checksums`."""
    from apesim.package.current import CurrentFormat

    if isinstance(manifest, dict):
        if manifest.get("package_type") == "ape_simulation" and "file_checksums" in manifest:
            from apesim.package.legacy import LegacyFormat

            return LegacyFormat()
        if "files" in manifest or "package_version" in manifest:
            return CurrentFormat()
    raise PackageFormatError(
        "manifest.json: not an APE package manifest (no package_version/files)",
        code="manifest.schema",
    )
