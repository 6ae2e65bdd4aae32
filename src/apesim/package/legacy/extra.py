"""The extra tables of an imported earlier simulation: per patient and per visit, keyed by
APE's ids, the earlier columns APE's tables have no place for and the originals of values
APE had to change (patients_extra.parquet, visits_extra.parquet)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from apesim.package.legacy.columns import BoolArray, Columns, FloatArray
from apesim.package.legacy.format import PATIENTS
from apesim.package.legacy.keys import VisitRows
from apesim.package.legacy.values import dictionary_array, map_states
from apesim.protocol.schema import STATES
from apesim.results.schema import dictionary


def _extra_table(key: list[tuple[str, pa.Array]], columns: list[tuple[str, pa.Array]]) -> pa.Table:
    """The key columns, then the others, renamed `earlier_<name>` where a key holds the name."""
    names = [k for k, _ in key]
    arrays = [a for _, a in key]
    for col, array in columns:
        name = col
        while name in names:  # an earlier column whose name APE uses here
            name = f"earlier_{name}"
        names.append(name)
        arrays.append(array)
    return pa.Table.from_arrays(arrays, names=names)


def patients_extra(
    p: Columns, ids: pa.Array, base: FloatArray | None, final: FloatArray | None
) -> pa.Table:
    """Per patient (our id), the earlier columns APE's patients table has no place for."""
    n = len(ids)
    columns: list[tuple[str, pa.Array]] = []
    for col, read in (
        ("enrollment_date", p.timestamp),
        ("final_disease_state", p.string),
        ("discontinued", p.boolean),
        ("discontinuation_time", p.number),
        ("discontinuation_type", p.string),
        ("discontinuation_reason", p.string),
        ("pre_discontinuation_vision", p.number),
        ("retreatment_count", p.number),
    ):
        values = read(col)
        if values is None:
            continue
        if col == "final_disease_state":
            states = map_states(PATIENTS, col, values)
            values = dictionary_array(np.maximum(states, 0), dictionary(STATES), mask=states < 0)
        elif col == "discontinued":
            values = pa.array(values == 1, mask=values < 0)
        elif isinstance(values, np.ndarray):
            values = pa.array(values, pa.float64(), mask=np.isnan(values))
            if col == "retreatment_count":
                values = values.cast(pa.int64(), safe=False)
        columns.append((col, values))
    for col, values in (("baseline_vision_as_written", base), ("final_vision_as_written", final)):
        if values is not None:
            columns.append((col, pa.array(values, pa.float64())))
    columns.extend(p.others())
    key = [
        ("patient_id", pa.array(np.arange(n, dtype=np.int32))),
        ("earlier_patient_id", ids),
    ]
    return _extra_table(key, columns)


def visits_extra(
    v: Columns,
    rows: VisitRows,
    vision: FloatArray | None,
    next_interval: FloatArray | None,
    next_ok: BoolArray,
) -> pa.Table:
    """Per visit (our patient_id and visit, in visits.parquet's row order), the earlier columns
    APE's visits table has no place for, and originals APE had to change."""
    order = rows.order
    take = pa.array(order)
    columns: list[tuple[str, pa.Array]] = []
    date = v.timestamp("date")
    if date is not None:
        columns.append(("date", date.take(take)))
    if vision is not None:
        columns.append(("vision_as_written", pa.array(vision[order], pa.float64())))
    if next_interval is not None:
        written = next_interval[order]
        if np.any(~np.isnan(written) & ~next_ok):
            columns.append(
                ("next_interval_days_as_written", pa.array(written, mask=np.isnan(written)))
            )
    columns.extend((col, array.take(take)) for col, array in v.others())
    key = [
        ("patient_id", pa.array(rows.pid.astype(np.int32))),
        ("visit", pa.array(rows.visit.astype(np.int16))),
    ]
    return _extra_table(key, columns)
