"""`ape reproduce`: simulate a stored simulation or a package again from its recorded
protocol, parameters, seed and model, in memory, and compare the tables with the original's
chunk by chunk. Nothing is written anywhere: the original (imported or not) is only read.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from apesim.engine.models import engine_major, model_for
from apesim.engine.simulate import SimulationParameters, simulate
from apesim.engine.tables import compile_protocol
from apesim.errors import ProtocolError, ReproduceError
from apesim.progress import ProgressCallback
from apesim.protocol import parse_protocol
from apesim.workspace import layout
from apesim.workspace.results import load_simulation
from apesim.workspace.store import Workspace

# `ape reproduce`'s exit code when the re-simulation differs from the original.
EXIT_DIFFERS = 3
_ID = {"patients": "patient_id", "visits": "patient_id"}


@dataclass(frozen=True)
class Difference:
    """The first place where the re-simulation differs: table, patient, column (row)."""

    table: str
    column: str | None
    row: int | None
    patient: int | None
    expected: Any = None  # the original's value
    found: Any = None  # the re-simulation's value

    def describe(self) -> str:
        if self.column is None:
            return f"{self.table}: {self.expected} rows in the original, {self.found} again"
        return (
            f"{self.table}: patient {self.patient}, column {self.column!r} (row {self.row}): "
            f"{self.expected!r} in the original, {self.found!r} again"
        )


@dataclass(frozen=True)
class Reproduction:
    """What `ape reproduce` reports."""

    source: str
    sim_id: str
    model: str
    engine_version: str
    patients: int
    visits: int
    difference: Difference | None

    @property
    def identical(self) -> bool:
        return self.difference is None

    def to_json(self) -> dict[str, Any]:
        diff = self.difference
        return {
            "source": self.source,
            "sim_id": self.sim_id,
            "model": self.model,
            "engine_version": self.engine_version,
            "patients": self.patients,
            "visits": self.visits,
            "identical": self.identical,
            "difference": None
            if diff is None
            else {
                "table": diff.table,
                "column": diff.column,
                "row": diff.row,
                "patient": diff.patient,
                "expected": diff.expected,
                "found": diff.found,
                "message": diff.describe(),
            },
        }


def _first_row(a: pa.Array, b: pa.Array) -> int | None:
    """The first row where two arrays of one column differ (nulls equal nulls)."""
    if a.equals(b):
        return None
    if pa.types.is_dictionary(a.type):
        a, b = a.cast(a.type.value_type), b.cast(b.type.value_type)
    same = pc.or_kleene(pc.and_(pc.is_null(a), pc.is_null(b)), pc.fill_null(pc.equal(a, b), False))
    row = pc.index(same, False).as_py()
    return None if row < 0 else int(row)


def _compare(table: str, original: pa.Table, again: pa.Table, offset: int) -> Difference | None:
    for name in original.column_names:
        a = original.column(name).combine_chunks()
        b = again.column(name).combine_chunks()
        row = _first_row(a, b)
        if row is not None:
            return Difference(
                table=table,
                column=name,
                row=offset + row,
                patient=original.column(_ID[table])[row].as_py(),
                expected=a[row].as_py(),
                found=b[row].as_py(),
            )
    return None


def reproduce_tables(
    source: str,
    sim_id: str,
    protocol_text: str,
    parameters: dict[str, Any],
    engine_version: str,
    patients: pa.Table,
    visits: pa.Table,
    progress: ProgressCallback | None = None,
) -> Reproduction:
    """Re-simulate and compare with `patients` and `visits` (the original tables)."""
    try:
        lp = parse_protocol(protocol_text, f"{sim_id}/protocol.yaml")
    except ProtocolError as exc:
        raise ReproduceError(f"{source}: its protocol cannot be read ({exc})") from None
    model = model_for(lp.protocol)
    if engine_major(engine_version) != engine_major(model.engine_version):
        raise ReproduceError(
            f"{source}: made by engine {engine_version!r}, which this APE does not have "
            f"(it has {model.label} as engine {model.engine_version}); it cannot be re-simulated"
        )
    params = SimulationParameters(
        patients=parameters["patients"],
        years=parameters["years"],
        seed=parameters["seed"],
        recruitment_months=parameters.get("recruitment_months", 0.0),
    )
    cp = compile_protocol(lp.protocol)
    p_off = v_off = 0
    difference: Difference | None = None
    for chunk in simulate(cp, params, progress=progress):
        for table, original, again, offset in (
            ("patients", patients, chunk.patients, p_off),
            ("visits", visits, chunk.visits, v_off),
        ):
            if offset + again.num_rows > original.num_rows:
                more = f"more than {original.num_rows}"
                difference = Difference(table, None, None, None, original.num_rows, more)
                break
            difference = _compare(table, original.slice(offset, again.num_rows), again, offset)
            if difference is not None:
                break
        if difference is not None:
            break
        p_off += chunk.patients.num_rows
        v_off += chunk.visits.num_rows
    else:
        for table, original, done in (("patients", patients, p_off), ("visits", visits, v_off)):
            if done != original.num_rows:
                difference = Difference(table, None, None, None, original.num_rows, done)
                break
    return Reproduction(
        source=source,
        sim_id=sim_id,
        model=model.label,
        engine_version=engine_version,
        patients=patients.num_rows,
        visits=visits.num_rows,
        difference=difference,
    )


def reproduce_simulation(
    ws: Workspace, ref: str, progress: ProgressCallback | None = None
) -> Reproduction:
    """Re-simulate a stored simulation (its folder is only read)."""
    sim = load_simulation(ws, ref)
    meta = sim.metadata
    return reproduce_tables(
        sim.record.sim_id,
        sim.record.sim_id,
        sim.protocol_text,
        sim.parameters,
        meta.engine_version,
        sim.patients,
        sim.visits,
        progress,
    )


def _table(data: bytes | memoryview) -> pa.Table:
    return pq.ParquetFile(pa.BufferReader(data)).read(use_threads=False)


def reproduce_package(path: Path, progress: ProgressCallback | None = None) -> Reproduction:
    """Validate a package completely (in the reader's worker), then re-simulate it."""
    from apesim.package import validate_package
    from apesim.safeload import load_json

    report = validate_package(path)
    package = report.validated
    assert package is not None
    files = package.folder_files
    text = bytes(files[layout.PROTOCOL]).decode("utf-8")
    parameters = load_json(bytes(files[layout.PARAMETERS]).decode("utf-8"))
    return reproduce_tables(
        report.source_name,
        package.sim_id,
        text,
        parameters,
        package.metadata.engine_version,
        _table(files[layout.PATIENTS]),
        _table(files[layout.VISITS]),
        progress,
    )
