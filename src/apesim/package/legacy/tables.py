"""The earlier patients and visits tables converted into APE's schemas (see
docs/package-format.md): letters rounded and clipped, states mapped, discontinuations and
deaths told apart, and the earlier columns APE has no place for kept in the extra tables."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.package.legacy.columns import BoolArray, Columns, FloatArray, IntArray
from apesim.package.legacy.extra import patients_extra, visits_extra
from apesim.package.legacy.format import (
    AGE_UNKNOWN,
    PATIENT_INDEX,
    PATIENTS,
    SEX_UNKNOWN,
    SEX_VALUES,
    VISITS,
)
from apesim.package.legacy.keys import VisitRows, check_counts, patient_ids, visit_rows
from apesim.package.legacy.values import (
    INT16_MAX,
    changed_note,
    dictionary_array,
    int16_count,
    int32_days,
    map_states,
    stops,
    vision_letters,
)
from apesim.protocol.schema import STATES
from apesim.results.schema import (
    DISCONTINUATION_REASONS,
    PATIENTS_SCHEMA,
    VISITS_SCHEMA,
    dictionary,
)


@dataclass(frozen=True)
class Converted:
    """The earlier tables in APE's schemas, with what the earlier statistics need."""

    patients: pa.Table
    visits: pa.Table
    patients_extra: pa.Table
    visits_extra: pa.Table
    enrol: IntArray
    final_vision: FloatArray  # as written (before rounding and clipping)
    last_vision: FloatArray  # last visit's vision as written, NaN for a patient never seen
    discontinued: BoolArray  # the earlier flag: deaths included
    conversions: list[str]  # values changed to fit the format, said in the imported event


def convert_tables(tables: dict[str, pa.Table]) -> Converted:
    """The earlier patients and visits in APE's schemas (see docs/package-format.md)."""
    p = Columns(PATIENTS, tables[PATIENTS])
    v = Columns(VISITS, tables[VISITS])
    ids = patient_ids(p, tables[PATIENT_INDEX])
    enrol = int32_days(PATIENTS, "enrollment_time_days", p.integer("enrollment_time_days")[0])
    base, base_original = vision_letters(p, "baseline_vision")
    final, final_original = vision_letters(p, "final_vision")
    injections = int16_count(PATIENTS, "total_injections", p.integer("total_injections")[0])
    visit_counts = int16_count(PATIENTS, "total_visits", p.integer("total_visits")[0])

    rows = visit_rows(v, ids, enrol)
    vision, vision_original = vision_letters(v, "vision")
    injected = v.boolean("injected", required=True)
    states = v.string("disease_state", required=True)
    assert injected is not None and states is not None
    state_idx = map_states(VISITS, "disease_state", states)[rows.order]
    injected = injected[rows.order] == 1
    check_counts(ids, rows, injected, visit_counts, injections)

    last_day, last_vision = _last_visits(v, rows, enrol)
    stopped, died, stop_day, reason = _discontinuations(p, last_day)
    next_interval = v.number("next_interval_days")
    nxt = np.full(rows.order.size, np.nan) if next_interval is None else next_interval[rows.order]
    nxt_ok = ~np.isnan(nxt) & (nxt >= 1) & (nxt <= INT16_MAX)  # the format's next_interval
    patients = _patients_table(
        enrol, base, final, injections, visit_counts, stopped, died, stop_day, reason
    )
    visits = _visits_table(rows, state_idx, vision, injected, nxt, nxt_ok)
    final_written = p.number("final_vision", required=True)
    assert final_written is not None
    return Converted(
        patients=patients,
        visits=visits,
        patients_extra=patients_extra(p, ids, base_original, final_original),
        visits_extra=visits_extra(v, rows, vision_original, next_interval, nxt_ok),
        enrol=enrol,
        final_vision=final_written,
        last_vision=last_vision,
        discontinued=stopped | died,
        conversions=[
            *_vision_notes("patients", "baseline_vision", base, base_original),
            *_vision_notes("patients", "final_vision", final, final_original),
            *_vision_notes("visits", "vision", vision, vision_original),
            *changed_note(
                "visits next_interval_days",
                int(np.count_nonzero(~np.isnan(nxt) & ~nxt_ok)),
                f"outside 1..{INT16_MAX} are null",
                "visits_extra.parquet",
            ),
        ],
    )


def _vision_notes(table: str, col: str, letters: IntArray, written: FloatArray | None) -> list[str]:
    """What rounding and clipping to 0..100 letters changed in one vision column."""
    changed = 0 if written is None else int(np.count_nonzero(letters != written))
    return changed_note(
        f"{table} {col}", changed, "rounded or clipped to 0..100 letters", f"{table}_extra.parquet"
    )


def _last_visits(v: Columns, rows: VisitRows, enrol: IntArray) -> tuple[IntArray, FloatArray]:
    """Each patient's last visit day (the enrolment day for one never seen) and that visit's
    vision as written (NaN for one never seen)."""
    last_day = enrol.copy()
    last_day[rows.pid[rows.last]] = rows.day[rows.last]
    last_vision = np.full(enrol.size, np.nan)
    written = v.number("vision", required=True)
    assert written is not None
    last_vision[rows.pid[rows.last]] = written[rows.order][rows.last]
    return last_day, last_vision


def _discontinuations(
    p: Columns, last_day: IntArray
) -> tuple[BoolArray, BoolArray, IntArray, npt.NDArray[np.int8]]:
    """Who stopped treatment, who died, on which day (within APE's range), and why."""
    kinds, reasons = p.string("discontinuation_type"), p.string("discontinuation_reason")
    flag, time = p.boolean("discontinued"), p.number("discontinuation_time")
    stopped, died, stop_day, reason = stops(last_day.size, flag, time, kinds, reasons, last_day)
    return stopped, died, int32_days(PATIENTS, "discontinuation_time", stop_day), reason


def _patients_table(
    enrol: IntArray,
    base: IntArray,
    final: IntArray,
    injections: IntArray,
    visit_counts: IntArray,
    stopped: BoolArray,
    died: BoolArray,
    stop_day: IntArray,
    reason: npt.NDArray[np.int8],
) -> pa.Table:
    """APE's patients table: ids 0..n-1 in the earlier order; age and sex unknown."""
    n = enrol.size
    return pa.Table.from_arrays(
        [
            pa.array(np.arange(n, dtype=np.int32)),
            pa.array(enrol.astype(np.int32)),
            pa.array(np.full(n, AGE_UNKNOWN, np.int16)),
            dictionary_array(np.full(n, SEX_VALUES.index(SEX_UNKNOWN)), dictionary(SEX_VALUES)),
            pa.array(base.astype(np.int16)),
            pa.array(final.astype(np.int16)),
            pa.array(injections.astype(np.int16)),
            pa.array(visit_counts.astype(np.int16)),
            pa.array(stop_day.astype(np.int32), pa.int32(), mask=~stopped),
            dictionary_array(reason, dictionary(DISCONTINUATION_REASONS), mask=~stopped),
            pa.array(stop_day.astype(np.int32), pa.int32(), mask=~died),
        ],
        schema=PATIENTS_SCHEMA,
    )


def _visits_table(
    rows: VisitRows,
    state_idx: npt.NDArray[np.int8],
    vision: IntArray,
    injected: BoolArray,
    nxt: FloatArray,
    nxt_ok: BoolArray,
) -> pa.Table:
    """APE's visits table in its row order; `vision` in the earlier order, the rest in ours;
    the next interval null where it does not fit."""
    return pa.Table.from_arrays(
        [
            pa.array(rows.pid.astype(np.int32)),
            pa.array(rows.day.astype(np.int32)),
            pa.array(rows.visit.astype(np.int16)),
            dictionary_array(state_idx, dictionary(STATES)),
            pa.array(vision[rows.order].astype(np.int16)),
            pa.array(injected),
            pa.array(np.where(nxt_ok, nxt, 0).astype(np.int16), pa.int16(), mask=~nxt_ok),
        ],
        schema=VISITS_SCHEMA,
    )
