"""manifest.json: the package's table of contents, with a size and SHA-256 for every file.

Readers ignore keys they do not know, so later minor versions can add fields.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, TypeVar

import pyarrow as pa
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from apesim import __version__
from apesim.errors import PackageFormatError, PackageSecurityError, PackageVersionError
from apesim.package import format as fmt
from apesim.safeload import dump_json
from apesim.text import escape_char, first_control


class ColumnSpec(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    name: StrictStr
    type: StrictStr
    nullable: bool


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    size: Annotated[StrictInt, Field(ge=0)]
    sha256: Annotated[StrictStr, Field(pattern=fmt.SHA256_PATTERN.pattern)]
    rows: Annotated[StrictInt, Field(ge=0)] | None = None
    columns: list[ColumnSpec] | None = None


class Manifest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)
    format: StrictStr = fmt.FORMAT_NAME
    package_version: Annotated[StrictStr, Field(pattern=fmt.VERSION_PATTERN.pattern)]
    ape_version: StrictStr
    created_date: Annotated[
        StrictStr, Field(pattern=r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
    ]
    created_by: StrictStr
    sim_id: Annotated[StrictStr, Field(min_length=1, max_length=200)]

    @field_validator("created_date")
    @classmethod
    def _real_date(cls, value: str) -> str:
        datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ")  # ValueError: not a date that exists
        return value

    files: dict[StrictStr, FileEntry]

    @property
    def version(self) -> tuple[int, int]:
        major, minor = self.package_version.split(".")
        return int(major), int(minor)

    def to_json(self) -> str:
        return dump_json(self.model_dump(mode="json", exclude_none=True))


def columns_of(schema: pa.Schema) -> list[ColumnSpec]:
    return [ColumnSpec(name=f.name, type=str(f.type), nullable=f.nullable) for f in schema]


M = TypeVar("M", bound=Manifest)


def parse_manifest(
    data: Any,
    model: type[M] = Manifest,  # type: ignore[assignment]
    name: str = fmt.MANIFEST,
) -> M:
    """Validate the parsed JSON of manifest.json (or another manifest `name` of the `model`'s
    kind); errors name the field."""
    if not isinstance(data, dict):
        raise PackageFormatError(f"{name}: must be a JSON object", code="manifest.schema")
    try:
        manifest = model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(root)"
        msg = "missing field" if first["type"] == "missing" else first["msg"]
        raise PackageFormatError(f"{name}: {field}: {msg}", code="manifest.schema") from None
    for field in ("ape_version", "created_by"):  # sim_id has its own pattern
        check_text(name, field, getattr(manifest, field))
    return manifest


def check_text(where: str, field: str, value: str) -> None:
    """Refuse an id, name or version holding a control, format or separator character
    (ESC, C1, newline, a bidirectional override, ...): such text is shown to people, and no
    writer of the format puts one there (docs/package-format.md, "Text")."""
    found = first_control(value)
    if found is not None:
        raise PackageSecurityError(
            f"{where}: {field} contains the control character {escape_char(found)}; ids, names "
            "and versions must be plain text (the package was altered or written by a faulty "
            "tool: ask its sender to export it again)",
            code="text.control",
        )


def check_version(major: int, minor: int) -> str | None:
    """Refuse a newer major version; return a warning for a newer minor one."""
    if major > fmt.MAJOR:
        needed = fmt.READERS_BY_MAJOR.get(major)
        hint = f"APE {needed} or later" if needed else f"a newer APE that reads format {major}.x"
        raise PackageVersionError(
            f"manifest.json: package format {major}.{minor} needs {hint}; "
            f"this is APE {__version__}, which reads format {fmt.MAJOR}.x",
            code="version.newer_major",
        )
    if major < 1:
        raise PackageVersionError(
            f"manifest.json: unknown package format {major}.{minor}", code="version.unknown"
        )
    if minor > fmt.MINOR:
        return (
            f"package format {major}.{minor} is newer than this APE's {fmt.PACKAGE_VERSION}; "
            "files and fields it does not know were ignored"
        )
    return None
