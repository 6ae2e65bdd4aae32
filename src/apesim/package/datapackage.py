"""`datapackage.json`: the package as a Frictionless Data Package (v2), so that tools that
have never heard of APE can read and check its tables (`frictionless validate`).

Made from the data dictionary (`results/dictionary.py`) and the package's facts; the reader
makes it again and compares (`consistency.datapackage`).
"""

from __future__ import annotations

import re
from typing import Any

from apesim.package import format as fmt
from apesim.package.facts import PackageFacts
from apesim.results.dictionary import METADATA, PATIENTS, VISITS, Column, Table
from apesim.safeload import dump_json

PROFILE = "https://datapackage.org/profiles/2.0/datapackage.json"

# Frictionless reads Parquet through pandas, where a missing integer becomes NaN: "nan" is
# how a null of a nullable column reaches its checks (no column holds that text).
_MISSING = ["", "nan"]

# The package's tables and their dictionaries, in the descriptor's order.
TABLES: dict[str, Table] = {fmt.PATIENTS: PATIENTS, fmt.VISITS: VISITS, fmt.METADATA: METADATA}


def _type(kind: str) -> str:
    """The Table Schema type of an Arrow type."""
    if kind.startswith(("int", "uint")):
        return "integer"
    if kind == "bool":
        return "boolean"
    if kind in ("double", "float"):
        return "number"
    if kind.startswith("timestamp"):
        return "datetime"
    return "string"


def _field(column: Column, arrow: dict[str, Any]) -> dict[str, Any]:
    nullable = bool(arrow["nullable"])
    words = [column.description]
    if column.unit:
        words.append(f"Unit: {column.unit}.")
    if column.null_means:
        words.append(f"Empty (null) when {column.null_means}.")
    field: dict[str, Any] = {
        "name": column.name,
        "type": _type(str(arrow["type"])),
        "description": " ".join(words),
    }
    constraints: dict[str, Any] = {"required": not nullable}
    if column.categories is not None:
        constraints["enum"] = list(column.categories)
    if column.minimum is not None:
        constraints["minimum"] = column.minimum
    if column.maximum is not None:
        constraints["maximum"] = column.maximum
    field["constraints"] = constraints
    if column.unit:
        field["unit"] = column.unit
    if nullable:
        field["missingValues"] = _MISSING
    return field


def _resource(table: Table, entry: str, facts: PackageFacts) -> dict[str, Any]:
    """A table's resource: its columns' types as the manifest lists them, their meaning from
    the dictionary. Its size and SHA-256 are manifest.json's: Frictionless reads Parquet
    through pyarrow and cannot count or hash its bytes."""
    arrow = facts.columns(entry)
    schema: dict[str, Any] = {"fields": [_field(c, arrow[c.name]) for c in table.columns]}
    if table.primary_key:
        schema["primaryKey"] = list(table.primary_key)
    if table.name == "visits":
        schema["foreignKeys"] = [
            {
                "fields": ["patient_id"],
                "reference": {"resource": "patients", "fields": ["patient_id"]},
            }
        ]
    return {
        "name": table.name,
        "type": "table",
        "path": entry,
        "format": "parquet",
        "mediatype": "application/vnd.apache.parquet",
        "description": table.row,
        "schema": schema,
    }


def package_name(sim_id: str) -> str:
    """The Data Package's name: lower-case letters, digits, '-', '_' and '.' only."""
    return "ape-" + re.sub(r"[^a-z0-9._-]", "-", sim_id.lower())


def datapackage(facts: PackageFacts) -> dict[str, Any]:
    """The descriptor of the package's three tables."""
    meta = facts.metadata
    return {
        "$schema": PROFILE,
        "name": package_name(meta.sim_id),
        "title": f"APE simulation {meta.name} ({meta.sim_id})",
        "description": (
            f"{meta.patients:,} virtual patients treated under the protocol "
            f"{meta.protocol_name} {meta.protocol_version} for {meta.years:g} years (seed "
            f"{meta.seed}), simulated by APE, the AMD Protocol Explorer. README.txt explains "
            "every file; manifest.json holds the SHA-256 of each."
        ),
        "created": facts.created,
        "keywords": ["neovascular AMD", "anti-VEGF", "simulation", "APE"],
        "resources": [_resource(table, entry, facts) for entry, table in TABLES.items()],
    }


def datapackage_json(facts: PackageFacts) -> bytes:
    """`datapackage.json`'s bytes: sorted keys, two-space indentation, a final newline."""
    return dump_json(datapackage(facts)).encode("utf-8")
