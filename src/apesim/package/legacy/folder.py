"""The imported earlier simulation's folder: what every simulation holds, in APE's schemas
and under APE's file names, plus the extra tables and the earlier files byte for byte under
`source/`. No name from the package becomes a file name."""

from __future__ import annotations

import io
from typing import Any

import pyarrow as pa

from apesim.package.legacy.format import SOURCE_FILES
from apesim.package.legacy.tables import Converted
from apesim.protocol.convert import ProtocolConversion
from apesim.results.metadata import SimulationMetadata
from apesim.results.parquet_io import write_table
from apesim.results.stats import DAYS_PER_YEAR, summary_json
from apesim.results.summary import Summary
from apesim.safeload import dump_json
from apesim.workspace import layout


def _parquet_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    write_table(sink, table)
    return sink.getvalue()


def our_parameters(converted: Converted, metadata: SimulationMetadata) -> dict[str, Any]:
    """APE's parameters.json; recruitment lasted until the last enrolment."""
    years = metadata.years
    span = int(converted.enrol.max(initial=0)) * 12 / DAYS_PER_YEAR
    return {
        "patients": metadata.patients,
        "years": years,
        "seed": metadata.seed,
        "recruitment_months": round(min(span, 12 * years), 3),
    }


def folder_files(
    converted: Converted,
    summary: Summary,
    metadata: SimulationMetadata,
    conversion: ProtocolConversion,
    contents: dict[str, memoryview],
) -> dict[str, bytes | memoryview]:
    """Workspace file name -> content of the imported simulation (the audit trail apart)."""
    files: dict[str, bytes | memoryview] = {
        layout.PATIENTS: _parquet_bytes(converted.patients),
        layout.VISITS: _parquet_bytes(converted.visits),
        layout.METADATA: _parquet_bytes(metadata.to_table()),
        layout.PROTOCOL: conversion.text.encode("utf-8"),
        layout.PARAMETERS: dump_json(our_parameters(converted, metadata)).encode("utf-8"),
        layout.SUMMARY: summary_json(summary).encode("utf-8"),
        layout.EXTRA_PATIENTS: _parquet_bytes(converted.patients_extra),
        layout.EXTRA_VISITS: _parquet_bytes(converted.visits_extra),
    }
    for name, kept in SOURCE_FILES.items():
        if name in contents:
            files[kept] = contents[name]
    return files
