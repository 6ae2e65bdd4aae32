"""Packages written by the earlier APE's exporter (placeholder until the converter lands)."""

from __future__ import annotations

from typing import Any

from apesim.errors import PackageFormatError
from apesim.package import format as fmt
from apesim.package.handler import FormatHandler, ValidatedPackage


class LegacyFormat(FormatHandler):
    """Earlier APE 1.0: recognised, not yet importable."""

    label = "earlier APE 1.0"

    def check_manifest(self, raw: Any) -> str | None:
        raise PackageFormatError(
            "earlier APE packages are recognised but cannot be imported by this version yet",
            code="legacy.unsupported",
        )

    def check_files(self, present: set[str]) -> None:  # pragma: no cover - not reached
        raise NotImplementedError

    def check_checksums(self, contents: dict[str, memoryview]) -> None:  # pragma: no cover
        raise NotImplementedError

    def check_content(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        raise NotImplementedError  # pragma: no cover

    def check_tables(self, contents: dict[str, memoryview], limits: fmt.ReadLimits) -> None:
        raise NotImplementedError  # pragma: no cover

    def check_consistency(self) -> ValidatedPackage:  # pragma: no cover
        raise NotImplementedError
