"""What a package's self-description is made from: the facts every writer and reader of
format 1.1 knows once the tables, the trail and the manifest's entries are settled.

The writer gathers them from the workspace; the reader from the package it has checked.
The README, `datapackage.json` and `ro-crate-metadata.json` are pure functions of them, so
the reader can make them again and refuse a package whose copies say anything else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from apesim.audit import AuditEvent
from apesim.package import format as fmt
from apesim.results.metadata import SimulationMetadata
from apesim.results.summary import Summary


@dataclass(frozen=True)
class PackageFacts:
    """A package's simulation, its trail and its manifest's facts (before the manifest)."""

    metadata: SimulationMetadata
    summary: Summary
    events: list[AuditEvent]  # the packaged trail
    created: str  # the package's created date, ISO 8601 UTC with Z
    created_by: str
    ape_version: str  # the APE that wrote the package
    # The manifest's entries (as JSON: size, sha256, and for tables rows and columns, each
    # column's name, Arrow type and nullability) of the files written before the one made.
    files: dict[str, dict[str, Any]]

    def columns(self, entry: str) -> dict[str, dict[str, Any]]:
        """A table's columns by name, as the manifest lists them."""
        return {c["name"]: c for c in self.files[entry].get("columns") or []}

    @property
    def filename(self) -> str:
        """The package's file name as its writer named it."""
        return fmt.package_filename(self.metadata.sim_id, self.created[:10].replace("-", ""))
