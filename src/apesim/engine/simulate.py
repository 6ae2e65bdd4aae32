"""The engine: advance every patient of a chunk one visit per step, with numpy.

The loop runs over visit numbers, never over patients or rows: at step k every patient
still in follow-up has visit k at once. Per-patient random streams (see `rng`) make the
result independent of the chunk size.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.engine import rng
from apesim.engine.regimens import (
    STABLE,
    next_interval,
    wants_injection,
)
from apesim.engine.tables import AnyCompiled, CompiledProtocol
from apesim.errors import ParameterError
from apesim.limits import DAYS_PER_YEAR, DEFAULT_CHUNK, MAX_PATIENTS, MAX_YEARS
from apesim.progress import ProgressCallback
from apesim.protocol.schema import STATES, Fixed, TreatAndExtend
from apesim.results.numpy_view import from_numpy
from apesim.results.schema import (
    DISCONTINUATION_REASONS,
    PATIENTS_SCHEMA,
    SEXES,
    VISITS_SCHEMA,
    dictionary,
)

REASON_POOR_VISION, REASON_STABLE, REASON_PREMATURE = range(3)
# At most this many cells (patients x visit capacity) in a chunk's visit arrays, which take
# 11 bytes a cell; up to about 55 in all when every cell is a visit (with the rows and Arrow
# tables built from them, and the caller's previous chunk). Measured peaks (ru_maxrss, of
# which the interpreter and imports take about 70 MiB): 180 MiB for the shipped protocols
# over 20 years, 280 MiB for daily visits over 20 years that nobody stops, against 4.4 GiB
# for 50,000 patients of a daily protocol in one chunk. It is about what the default chunk
# already held for 5 years of 4-weekly visits (50,000 x 67), so those runs are unchanged; a
# larger budget saves little time (a daily protocol over 20 years runs 1.2 to 1.3 times
# faster at 8 million cells, for 440 MiB).
CELL_BUDGET = 4_000_000


@dataclass(frozen=True)
class SimulationParameters:
    """What a run needs besides the protocol."""

    patients: int
    years: float
    seed: int
    recruitment_months: float = 0.0

    def __post_init__(self) -> None:
        if isinstance(self.years, int) and not isinstance(self.years, bool):
            object.__setattr__(self, "years", float(self.years))
        if isinstance(self.patients, bool) or not 1 <= self.patients <= MAX_PATIENTS:
            raise ParameterError(f"patients: must be between 1 and {MAX_PATIENTS:,}")
        if not 0 < self.years <= MAX_YEARS:
            raise ParameterError(f"years: must be more than 0 and at most {MAX_YEARS:g}")
        if self.horizon_days < 1:  # no day to hold even the baseline visit
            raise ParameterError("years: must cover at least one day")
        if not 0 <= self.seed < 2**63:
            raise ParameterError("seed: must be between 0 and 2**63 - 1")
        if not 0 <= self.recruitment_months <= 12 * self.years:
            raise ParameterError("recruitment_months: must lie between 0 and the duration")

    @property
    def horizon_days(self) -> int:
        """Visits happen on days 0 .. horizon_days - 1 of the simulation."""
        return round(self.years * DAYS_PER_YEAR)

    @property
    def recruitment_days(self) -> int:
        return round(self.recruitment_months * DAYS_PER_YEAR / 12)

    def to_dict(self) -> dict[str, int | float]:
        return {
            "patients": self.patients,
            "years": self.years,
            "seed": self.seed,
            "recruitment_months": float(self.recruitment_months),
        }


@dataclass(frozen=True)
class Chunk:
    patients: pa.Table
    visits: pa.Table


def _dictionary(
    indices: npt.NDArray[np.int8], dictionary: pa.Array, mask: npt.NDArray[np.bool_] | None = None
) -> pa.DictionaryArray:
    idx = from_numpy(indices, pa.int8(), mask=mask)
    return pa.DictionaryArray.from_arrays(idx, dictionary)


def _visit_capacity(cp: CompiledProtocol, horizon: int) -> int:
    """The most visits a patient can have: the loading visits, then at most one per shortest
    interval after loading (a short loading interval must not size the whole follow-up)."""
    regimen = cp.protocol.regimen
    if isinstance(regimen, TreatAndExtend):
        after = regimen.min_interval_days  # the initial interval is at least this
    elif isinstance(regimen, Fixed):
        after = regimen.interval_days
    else:
        after = regimen.monitoring_interval_days
    # Both are upper bounds; the first is the smaller when loading is not at a short interval.
    return min(
        (horizon - 1) // cp.min_interval + 2, regimen.loading_doses + (horizon - 1) // after + 2
    )


def simulate_chunk(cp: AnyCompiled, params: SimulationParameters, start: int, stop: int) -> Chunk:
    """Simulate the block of patients with indices start..stop-1 of a run and return their
    two tables, under the model the protocol was compiled for. The block's results depend
    only on the protocol, the parameters and the indices (per-patient random streams), so a
    run may be cut into any blocks, simulated anywhere, and concatenated in index order."""
    from apesim.engine.calendar import simulate_calendar_chunk
    from apesim.engine.calendar_tables import CompiledCalendar

    if isinstance(cp, CompiledCalendar):
        return simulate_calendar_chunk(cp, params, start, stop)
    return _simulate_markov_chunk(cp, params, start, stop)


def _simulate_markov_chunk(
    cp: CompiledProtocol, params: SimulationParameters, start: int, stop: int
) -> Chunk:
    """Model 1.0 (`ape-markov`): patients start..stop-1, one Markov step per visit."""
    n = stop - start
    pop = rng.patients(cp, params.seed, params.recruitment_days, start, stop)
    index, keys, age, sex, enrol = pop.index, pop.keys, pop.age, pop.sex, pop.enrol
    horizon = params.horizon_days
    stop_rules = cp.protocol.discontinuation
    vision = pop.vision.copy()
    baseline_vision = pop.vision

    cap = _visit_capacity(cp, horizon)
    day_m = np.zeros((n, cap), np.int32)
    state_m = np.zeros((n, cap), np.int8)
    vision_m = np.zeros((n, cap), np.int16)
    injected_m = np.zeros((n, cap), bool)
    interval_m = np.zeros((n, cap), np.int16)
    made_m = np.zeros((n, cap), bool)

    day = enrol.copy()
    state = np.zeros(n, np.int8)
    injected = np.zeros(n, bool)
    interval = np.zeros(n, np.int16)
    stable_run = np.zeros(n, np.int16)
    stop_day = np.full(n, -1, np.int32)
    stop_reason = np.full(n, -1, np.int8)
    death_day = np.full(n, -1, np.int32)
    active = day < horizon
    loading = cp.protocol.regimen.loading_doses
    max_interval = cp.protocol.regimen.max_interval

    for k in range(cap):
        idx = np.flatnonzero(active)
        if idx.size == 0:
            break
        u = rng.uniforms(keys[idx], k)
        s, v, inj_prev = state[idx], vision[idx], injected[idx]
        if k > 0:
            group = s.astype(np.int64) * 2 + inj_prev
            s = cp.transitions.sample(group, u[:, rng.TRANSITION]).astype(np.int8)
            group = s.astype(np.int64) * 2 + inj_prev
            change = cp.vision_change.sample(group, u[:, rng.VISION])
            v = np.clip(v + change, 0, 100).astype(np.int16)
        nxt = next_interval(cp.protocol.regimen, k, s, interval[idx], naive_keeps_interval=True)

        # Discontinuation, decided before treatment at this visit.
        reason = np.full(idx.size, -1, np.int8)
        if k >= loading:
            at_max = (s == STABLE) & (interval[idx] >= max_interval)
            run = np.where(at_max, stable_run[idx] + 1, 0).astype(np.int16)
            stable_run[idx] = run
            premature = u[:, rng.STOP_PREMATURE] < cp.premature_by_interval[interval[idx]]
            reason[premature] = REASON_PREMATURE
            rule = stop_rules.stable_at_max_interval
            if rule is not None:
                hit = (run >= rule.consecutive_visits) & (u[:, rng.STOP_STABLE] < rule.probability)
                reason[hit] = REASON_STABLE
            pv = stop_rules.poor_vision
            if pv is not None:
                hit = (v < pv.threshold_letters) & (u[:, rng.STOP_VISION] < pv.probability)
                reason[hit] = REASON_POOR_VISION
        stopped = reason >= 0
        inj = wants_injection(cp.protocol.regimen, k, s) & ~stopped

        day_m[idx, k] = day[idx]
        state_m[idx, k] = s
        vision_m[idx, k] = v
        injected_m[idx, k] = inj
        interval_m[idx, k] = np.where(stopped, -1, nxt)
        made_m[idx, k] = True

        state[idx], vision[idx], injected[idx], interval[idx] = s, v, inj, nxt
        stop_day[idx[stopped]] = day[idx[stopped]]
        stop_reason[idx[stopped]] = reason[stopped]

        # Death during the interval that follows this visit.
        dies = ~stopped & (u[:, rng.DEATH] < cp.death_by_interval[nxt])
        when = day[idx] + 1 + np.floor(u[:, rng.DEATH_DAY] * (nxt - 1)).astype(np.int32)
        dies &= when < horizon
        death_day[idx[dies]] = when[dies]

        day[idx] += nxt
        active[idx] = ~stopped & ~dies & (day[idx] < horizon)

    return build_chunk(
        index,
        enrol,
        age,
        sex,
        baseline_vision,
        day_m,
        state_m,
        vision_m,
        injected_m,
        interval_m,
        made_m,
        stop_day,
        stop_reason,
        death_day,
    )


def build_chunk(
    index: npt.NDArray[np.int64],
    enrol: npt.NDArray[np.int32],
    age: npt.NDArray[np.int16],
    sex: npt.NDArray[np.int8],
    baseline_vision: npt.NDArray[np.int16],
    day_m: npt.NDArray[np.int32],
    state_m: npt.NDArray[np.int8],
    vision_m: npt.NDArray[np.int16],
    injected_m: npt.NDArray[np.bool_],
    interval_m: npt.NDArray[np.int16],
    made_m: npt.NDArray[np.bool_],
    stop_day: npt.NDArray[np.int32],
    stop_reason: npt.NDArray[np.int8],
    death_day: npt.NDArray[np.int32],
) -> Chunk:
    """The patients and visits tables of a chunk from its visit matrices (patients x visit
    number; `made_m` marks the visits that happened). Shared by both models."""
    n = index.size
    cap = made_m.shape[1]
    made = made_m
    visits_per_patient = made.sum(axis=1)
    rows_patient = np.repeat(index.astype(np.int32), visits_per_patient)
    visit_no = np.broadcast_to(np.arange(cap, dtype=np.int16), (n, cap))[made]
    interval_rows = interval_m[made]
    last_vision = vision_m[np.arange(n), np.maximum(visits_per_patient - 1, 0)]
    last_vision = np.where(visits_per_patient > 0, last_vision, baseline_vision)
    state_rows = state_m[made]

    visits = pa.Table.from_arrays(
        [
            from_numpy(rows_patient, pa.int32()),
            from_numpy(day_m[made], pa.int32()),
            from_numpy(visit_no, pa.int16()),
            _dictionary(state_rows, dictionary(STATES)),
            from_numpy(vision_m[made], pa.int16()),
            from_numpy(injected_m[made], pa.bool_()),
            from_numpy(interval_rows, pa.int16(), mask=interval_rows < 0),
        ],
        schema=VISITS_SCHEMA,
    )
    patients = pa.Table.from_arrays(
        [
            from_numpy(index.astype(np.int32), pa.int32()),
            from_numpy(enrol, pa.int32()),
            from_numpy(age, pa.int16()),
            _dictionary(sex, dictionary(SEXES)),
            from_numpy(baseline_vision, pa.int16()),
            from_numpy(last_vision.astype(np.int16), pa.int16()),
            from_numpy(injected_m.sum(axis=1).astype(np.int16), pa.int16()),
            from_numpy(visits_per_patient.astype(np.int16), pa.int16()),
            from_numpy(stop_day, pa.int32(), mask=stop_day < 0),
            _dictionary(stop_reason, dictionary(DISCONTINUATION_REASONS), mask=stop_reason < 0),
            from_numpy(death_day, pa.int32(), mask=death_day < 0),
        ],
        schema=PATIENTS_SCHEMA,
    )
    return Chunk(patients=patients, visits=visits)


def effective_chunk_size(cp: AnyCompiled, params: SimulationParameters, chunk_size: int) -> int:
    """`chunk_size`, reduced so that a chunk's visit arrays hold at most `CELL_BUDGET` cells
    (at least one patient a chunk). The results do not depend on it."""
    from apesim.engine.calendar import visit_capacity
    from apesim.engine.calendar_tables import CompiledCalendar

    if isinstance(cp, CompiledCalendar):
        capacity = visit_capacity(cp, params.horizon_days)
    else:
        capacity = _visit_capacity(cp, params.horizon_days)
    return max(1, min(chunk_size, CELL_BUDGET // capacity))


def simulate(
    cp: AnyCompiled,
    params: SimulationParameters,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
) -> Iterator[Chunk]:
    """Yield the simulation chunk by chunk; `progress(done, total)` after each chunk.

    Chunks hold at most `chunk_size` patients, fewer when the protocol allows so many visits
    that the chunk would exceed `CELL_BUDGET` (see `effective_chunk_size`).
    """
    if chunk_size < 1:
        raise ParameterError("chunk_size: must be at least 1")
    chunk_size = effective_chunk_size(cp, params, chunk_size)
    total = params.patients
    for start in range(0, total, chunk_size):
        stop = min(start + chunk_size, total)
        yield simulate_chunk(cp, params, start, stop)
        if progress is not None:
            progress(stop, total)
