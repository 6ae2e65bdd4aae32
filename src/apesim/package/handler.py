"""The contract between the generic reader and a package format (the reader chooses one).

The reader checks the container, names and limits for every package; a handler then checks
what its format says (manifest, files, checksums, content, tables, consistency) and, when all
holds, produces a `ValidatedPackage`: everything the importer writes, already checked.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from apesim.audit import AuditEvent
from apesim.package import format as fmt
from apesim.results.metadata import SimulationMetadata
from apesim.results.summary import Summary

M = TypeVar("M")  # a format's parsed manifest
C = TypeVar("C")  # its parsed content (JSON, YAML, protocol, audit trail)
T = TypeVar("T")  # its tables


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


@dataclass(frozen=True)
class ManifestFound(Generic[M]):
    """What a handler's manifest check found: the parsed manifest, the format's label for
    the report, and a warning (e.g. a newer minor version) or None."""

    manifest: M
    label: str
    warning: str | None = None


class FormatHandler(ABC, Generic[M, C, T]):
    """One package format's checks, run by the reader in order. A handler keeps no state:
    each check takes what the earlier ones found (`M` the manifest, `C` the parsed content,
    `T` the tables) and returns what it finds."""

    label: str  # before the manifest is read

    @abstractmethod
    def check_manifest(self, raw: Any) -> ManifestFound[M]:
        """Validate the manifest and its version."""

    @abstractmethod
    def check_files(self, manifest: M, present: set[str]) -> None:
        """The files present are exactly the ones the format and the manifest allow."""

    @abstractmethod
    def check_checksums(self, manifest: M, contents: dict[str, memoryview]) -> None:
        """Every file's size and SHA-256 as the manifest says."""

    @abstractmethod
    def check_content(
        self, manifest: M, contents: dict[str, memoryview], limits: fmt.ReadLimits
    ) -> C:
        """Parse JSON/YAML safely; validate the protocol and the audit trail."""

    @abstractmethod
    def check_tables(
        self, manifest: M, content: C, contents: dict[str, memoryview], limits: fmt.ReadLimits
    ) -> T:
        """Read the Parquet tables and check their schemas."""

    @abstractmethod
    def check_consistency(
        self, manifest: M, content: C, tables: T, contents: dict[str, memoryview]
    ) -> ValidatedPackage:
        """Cross-file checks; return the package ready to install."""

    def metadata_json(self, tables: T) -> dict[str, Any] | None:
        """The simulation's metadata as far as it is known (for previews)."""
        return None

    def declared_summary(
        self, contents: dict[str, memoryview], limits: fmt.ReadLimits
    ) -> dict[str, Any] | None:
        """The summary statistics the package declares, if they can be read from its
        checksummed files (for previews of a package that failed a later check)."""
        return None


__all__ = ["FormatHandler", "ManifestFound", "ValidatedPackage"]
