"""The earlier manifest.json: its schema and version, and the files it lists against the
files present (nothing outside the earlier format, every checksummed file listed)."""

from __future__ import annotations

from typing import Any

from apesim.errors import (
    PackageFormatError,
    PackageIntegrityError,
    PackageSecurityError,
    PackageVersionError,
)
from apesim.package import format as fmt
from apesim.package.legacy.format import (
    CHECKSUMMED,
    EARLIER_VERSION,
    KNOWN_FILES,
    MANIFEST,
    PACKAGE_TYPE,
    README,
)
from apesim.package.legacy.names import path_like, shown
from apesim.package.legacy.parse import utc_time


def _check_header(raw: dict[str, Any]) -> None:
    """Version, package type, sim_id and created_date."""
    version = raw.get("package_version")
    if not isinstance(version, str):
        raise PackageFormatError(
            "manifest.json: package_version: missing or not a string", code="manifest.schema"
        )
    if version != EARLIER_VERSION:
        raise PackageVersionError(
            f"manifest.json: earlier-APE package version {shown(version)} is unknown; "
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
            f"manifest.json: sim_id {shown(sim_id)} looks like a path; refusing a doctored package",
            code="name.unsafe_id",
        )
    if utc_time(raw.get("created_date")) is None:
        raise PackageFormatError(
            "manifest.json: created_date: missing or not an ISO 8601 time",
            code="manifest.schema",
        )


def check_manifest(raw: Any) -> dict[str, str]:
    """Validate the earlier manifest; return its file_checksums {name: SHA-256}."""
    if not isinstance(raw, dict):
        raise PackageFormatError("manifest.json: must be a JSON object", code="manifest.schema")
    _check_header(raw)
    checksums = raw.get("file_checksums")
    if not isinstance(checksums, dict):
        raise PackageFormatError(
            "manifest.json: file_checksums: must be an object", code="manifest.schema"
        )
    for name, digest in checksums.items():
        if not isinstance(digest, str) or not fmt.SHA256_PATTERN.match(digest):
            raise PackageFormatError(
                f"manifest.json: file_checksums.{shown(name)}: not a SHA-256 hex digest",
                code="manifest.schema",
            )
    total = raw.get("total_files")
    if isinstance(total, bool) or not isinstance(total, int) or total != len(checksums):
        raise PackageFormatError(
            "manifest.json: total_files must be the number of entries of file_checksums",
            code="manifest.schema",
        )
    return checksums


def check_files(checksums: dict[str, str], present: set[str]) -> None:
    """The files present and listed are exactly the earlier format's, as its exporter wrote
    them."""
    for name in sorted(set(checksums) | present):
        if name not in KNOWN_FILES:
            raise PackageSecurityError(
                f"{shown(name)}: not a file of the earlier APE's package format",
                code="name.unknown",
            )
    for name in sorted(present):
        if name in CHECKSUMMED and name not in checksums:
            raise PackageIntegrityError(
                f"{name}: present but not listed in manifest.json", code="file.unlisted"
            )
    for name in CHECKSUMMED:
        if name in checksums and name not in present:
            raise PackageIntegrityError(
                f"{name}: listed in manifest.json but missing", code="file.missing"
            )
        if name not in present:
            raise PackageFormatError(f"{name}: required file is missing", code="file.missing")
    for name in (MANIFEST, README):
        if name in checksums:
            raise PackageFormatError(
                f"manifest.json: file_checksums lists {name}, which that exporter never "
                "checksummed",
                code="manifest.schema",
            )
