"""Invariants of every simulated population, as properties over seeds, sizes and protocols.

Each test draws a run (a shipped protocol, possibly with one edit that stresses a rule,
a seed, a number of patients, a duration, a recruitment period and a chunk size), runs the
real engine, and checks one rule on the resulting patients and visits tables.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim.engine import SimulationParameters, simulate
from apesim.engine.tables import CompiledProtocol, compile_protocol
from apesim.errors import ParameterError
from apesim.protocol import STATES, parse_protocol
from apesim.protocol.loader import shipped_protocols
from apesim.protocol.schema import PRN, Fixed, TreatAndExtend

SHIPPED = sorted(k for k in shipped_protocols() if k.startswith("v1_"))  # model 1.0
TE = "v1_aflibercept_treat_and_extend"
NAIVE, STABLE, ACTIVE, HIGHLY_ACTIVE = (STATES.index(s) for s in STATES)

# Single edits that push the engine into its corners: no, short, long or daily loading,
# frequent deaths and stops.
EDITS: dict[str, tuple[str, str]] = {
    "as shipped": ("", ""),
    "no loading": ("loading_doses: 3", "loading_doses: 0"),
    "one loading dose": ("loading_doses: 3", "loading_doses: 1"),
    "long loading": ("loading_doses: 3", "loading_doses: 6"),
    "daily loading": ("loading_interval_days: 28", "loading_interval_days: 1"),
    "high mortality": ("annual_probability: 0.04", "annual_probability: 0.6"),
    "frequent stops": ("premature_annual_probability: 0.05", "premature_annual_probability: 0.7"),
    "poor vision stops": ("threshold_letters: 20", "threshold_letters: 60"),
}

Ints = npt.NDArray[np.int64]


@functools.cache
def compiled(name: str, edit: str) -> CompiledProtocol:
    text = shipped_protocols()[name]
    old, new = EDITS[edit]
    if old:
        assert text.count(old) == 1
        text = text.replace(old, new)
    return compile_protocol(parse_protocol(text, f"{name}.yaml").protocol)


@dataclass(frozen=True)
class Run:
    """One simulated population as numpy columns, with what produced it."""

    cp: CompiledProtocol
    params: SimulationParameters
    patients: pa.Table
    visits: pa.Table

    def col(self, table: str, name: str, fill: int = -1) -> Ints:
        column = (self.patients if table == "patients" else self.visits).column(name)
        if pa.types.is_dictionary(column.type):
            return column.combine_chunks().indices.fill_null(fill).to_numpy().astype(np.int64)
        if pa.types.is_boolean(column.type):
            return column.to_numpy().astype(np.int64)
        return column.fill_null(fill).to_numpy().astype(np.int64)

    @functools.cached_property
    def n(self) -> int:
        return self.patients.num_rows

    @functools.cached_property
    def row_patient(self) -> Ints:
        return self.col("visits", "patient_id")

    @functools.cached_property
    def first_row(self) -> Ints:
        counts = np.bincount(self.row_patient, minlength=self.n)
        return np.r_[0, np.cumsum(counts)[:-1]]

    @functools.cached_property
    def last_row(self) -> Ints:
        return np.cumsum(np.bincount(self.row_patient, minlength=self.n)) - 1

    @functools.cached_property
    def same_patient_as_next(self) -> npt.NDArray[np.bool_]:
        """For each row but the last: is the next row the same patient's?"""
        return self.row_patient[1:] == self.row_patient[:-1]


@st.composite
def runs(draw: st.DrawFn, edits: list[str] | None = None, names: list[str] = SHIPPED) -> Run:
    name = draw(st.sampled_from(names))
    edit = draw(st.sampled_from(edits or ["as shipped"]))
    if EDITS[edit][0] and EDITS[edit][0] not in shipped_protocols()[name]:
        edit = "as shipped"  # e.g. the fixed protocol has no stable-at-max rule
    years = draw(st.sampled_from([0.05, 0.5, 1.0, 2.0, 3.0, 5.0]))
    recruitment = draw(
        st.one_of(st.just(0.0), st.floats(min_value=0.0, max_value=12 * years, allow_nan=False))
    )
    params = SimulationParameters(
        patients=draw(st.integers(min_value=1, max_value=250)),
        years=years,
        seed=draw(st.integers(min_value=0, max_value=2**63 - 1)),
        recruitment_months=recruitment,
    )
    chunk = draw(st.sampled_from([7, 64, 1000]))
    cp = compiled(name, edit)
    chunks = list(simulate(cp, params, chunk_size=chunk))
    return Run(
        cp,
        params,
        pa.concat_tables(c.patients for c in chunks),
        pa.concat_tables(c.visits for c in chunks),
    )


SETTINGS = settings(max_examples=30, deadline=None)
ALL_EDITS = list(EDITS)


@SETTINGS
@given(run=runs())
def test_one_row_per_patient_in_index_order(run: Run) -> None:
    assert run.n == run.params.patients
    np.testing.assert_array_equal(run.col("patients", "patient_id"), np.arange(run.n))
    assert np.all(np.diff(run.row_patient) >= 0), "visits are grouped by patient, in order"


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_visits_count_matches_the_visits_table(run: Run) -> None:
    counts = np.bincount(run.row_patient, minlength=run.n)
    np.testing.assert_array_equal(run.col("patients", "visits"), counts)
    assert counts.min() >= 1, "every patient is seen at least at baseline"


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_visit_numbers_run_from_0_to_n_minus_1(run: Run) -> None:
    position = np.arange(run.visits.num_rows) - run.first_row[run.row_patient]
    np.testing.assert_array_equal(run.col("visits", "visit"), position)


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_days_strictly_increase_by_the_announced_interval(run: Run) -> None:
    day = run.col("visits", "day")
    interval = run.col("visits", "next_interval")
    same = run.same_patient_as_next
    assert np.all(np.diff(day)[same] > 0)
    np.testing.assert_array_equal(np.diff(day)[same], interval[:-1][same])


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_follow_up_starts_at_enrolment_and_ends_before_the_horizon(run: Run) -> None:
    enrol = run.col("patients", "enrol_day")
    day = run.col("visits", "day")
    np.testing.assert_array_equal(day[run.first_row], enrol)
    assert enrol.min() >= 0
    assert enrol.max() < max(run.params.recruitment_days, 1)
    assert day.max() < run.params.horizon_days


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_vision_stays_within_0_to_100_letters(run: Run) -> None:
    for table, column in [
        ("visits", "vision"),
        ("patients", "baseline_vision"),
        ("patients", "final_vision"),
    ]:
        values = run.col(table, column)
        assert values.min() >= 0 and values.max() <= 100, column


@SETTINGS
@given(run=runs())
def test_baseline_visit_is_naive_at_baseline_vision(run: Run) -> None:
    np.testing.assert_array_equal(run.col("visits", "state")[run.first_row], NAIVE)
    np.testing.assert_array_equal(
        run.col("visits", "vision")[run.first_row], run.col("patients", "baseline_vision")
    )


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_final_vision_is_the_last_visits_vision(run: Run) -> None:
    np.testing.assert_array_equal(
        run.col("patients", "final_vision"), run.col("visits", "vision")[run.last_row]
    )


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_one_injection_per_injected_visit(run: Run) -> None:
    injected = run.col("visits", "injected")
    per_patient = np.bincount(run.row_patient, weights=injected, minlength=run.n)
    np.testing.assert_array_equal(run.col("patients", "injections"), per_patient)


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_intervals_follow_the_regimen_within_its_bounds(run: Run) -> None:
    regimen = run.cp.protocol.regimen
    visit = run.col("visits", "visit")
    interval = run.col("visits", "next_interval")
    decided = interval >= 0  # null only on a discontinuation visit
    loading = visit < regimen.loading_doses - 1
    np.testing.assert_array_equal(interval[decided & loading], regimen.loading_interval_days)
    after = decided & ~loading
    if isinstance(regimen, TreatAndExtend):
        first = after & (visit == max(regimen.loading_doses, 1) - 1)
        np.testing.assert_array_equal(interval[first], regimen.initial_interval_days)
        assert interval[after].min(initial=regimen.min_interval_days) >= regimen.min_interval_days
        assert interval[after].max(initial=regimen.max_interval_days) <= regimen.max_interval_days
    elif isinstance(regimen, Fixed):
        np.testing.assert_array_equal(interval[after], regimen.interval_days)
    else:
        assert isinstance(regimen, PRN)
        np.testing.assert_array_equal(interval[after], regimen.monitoring_interval_days)


@SETTINGS
@given(run=runs(["as shipped", "no loading", "one loading dose"], names=[TE]))
def test_treat_and_extend_extends_when_stable_and_shortens_when_active(run: Run) -> None:
    regimen = run.cp.protocol.regimen
    assert isinstance(regimen, TreatAndExtend)
    state = run.col("visits", "state")
    interval = run.col("visits", "next_interval")
    visit = run.col("visits", "visit")
    # Rows after the first post-loading visit, whose previous row is the same patient's.
    rows = np.flatnonzero(np.r_[False, run.same_patient_as_next])
    rows = rows[(visit[rows] > max(regimen.loading_doses, 1) - 1) & (interval[rows] >= 0)]
    prev, now, s = interval[rows - 1], interval[rows], state[rows]
    lo, hi = regimen.min_interval_days, regimen.max_interval_days
    expected = np.select(
        [s == STABLE, s == ACTIVE, s == HIGHLY_ACTIVE],
        [
            np.minimum(prev + regimen.extend_days, hi),
            np.maximum(prev - regimen.shorten_days, lo),
            lo,
        ],
        default=prev,  # NAIVE: still responding, keep the interval
    )
    np.testing.assert_array_equal(now, expected)


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_nothing_after_discontinuation(run: Run) -> None:
    stop_day = run.col("patients", "discontinuation_day")
    reason = run.col("patients", "discontinuation_reason")
    stopped = stop_day >= 0
    last_day = run.col("visits", "day")[run.last_row]
    last_interval = run.col("visits", "next_interval")[run.last_row]
    # The discontinuation visit is the last visit and announces no next one.
    np.testing.assert_array_equal(last_day[stopped], stop_day[stopped])
    assert np.all(last_interval[stopped] == -1)
    assert np.all(reason[stopped] >= 0) and np.all(reason[~stopped] == -1)
    # Follow-up ends there: no death is recorded after it.
    assert np.all(run.col("patients", "death_day")[stopped] == -1)
    # Only a discontinuation visit lacks a next interval.
    interval = run.col("visits", "next_interval")
    assert np.count_nonzero(interval == -1) == np.count_nonzero(stopped)


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_no_injection_on_the_discontinuation_visit(run: Run) -> None:
    stopped = run.col("patients", "discontinuation_day") >= 0
    injected = run.col("visits", "injected")
    assert not injected[run.last_row[stopped]].any()


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_discontinuation_only_after_loading(run: Run) -> None:
    stopped = run.col("patients", "discontinuation_day") >= 0
    last_visit = run.col("visits", "visit")[run.last_row]
    assert np.all(last_visit[stopped] >= run.cp.protocol.regimen.loading_doses)


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_death_falls_within_the_interval_after_the_last_visit(run: Run) -> None:
    death = run.col("patients", "death_day")
    died = death >= 0
    last_day = run.col("visits", "day")[run.last_row]
    last_interval = run.col("visits", "next_interval")[run.last_row]
    assert np.all(death[died] > last_day[died]), "no visit on or after the day of death"
    assert np.all(death[died] <= last_day[died] + last_interval[died])
    assert np.all(death[died] < run.params.horizon_days)


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_patients_neither_stopped_nor_dead_are_followed_to_the_horizon(run: Run) -> None:
    censored = (run.col("patients", "discontinuation_day") < 0) & (
        run.col("patients", "death_day") < 0
    )
    last_day = run.col("visits", "day")[run.last_row]
    last_interval = run.col("visits", "next_interval")[run.last_row]
    assert np.all(last_day[censored] + last_interval[censored] >= run.params.horizon_days)


@SETTINGS
@given(run=runs(ALL_EDITS))
def test_injections_follow_the_regimen(run: Run) -> None:
    regimen = run.cp.protocol.regimen
    visit = run.col("visits", "visit")
    injected = run.col("visits", "injected").astype(bool)
    stop_visit = np.zeros(run.visits.num_rows, bool)
    stopped = run.col("patients", "discontinuation_day") >= 0
    stop_visit[run.last_row[stopped]] = True
    assert injected[visit < regimen.loading_doses].all(), "every loading visit injects"
    if isinstance(regimen, PRN):
        active = run.col("visits", "state") != STABLE
        after = visit >= regimen.loading_doses
        np.testing.assert_array_equal(injected[after], (active & ~stop_visit)[after])
    else:
        np.testing.assert_array_equal(injected, ~stop_visit)


@pytest.mark.parametrize("name", SHIPPED)
def test_each_shipped_protocol_exercises_stopping_and_death(name: str) -> None:
    # A guard for the properties above: with the shipped numbers, the rules they check
    # (discontinuation, death, censoring) actually happen in a modest population.
    cp = compiled(name, "as shipped")
    params = SimulationParameters(patients=2000, years=3.0, seed=11)
    chunks = list(simulate(cp, params))
    patients = pa.concat_tables(c.patients for c in chunks)
    stopped = patients.column("discontinuation_day").is_valid().to_numpy(zero_copy_only=False)
    died = patients.column("death_day").is_valid().to_numpy(zero_copy_only=False)
    assert stopped.any() and died.any() and (~stopped & ~died).any()


@pytest.mark.parametrize("years", [0.0005, 0.0013])
def test_a_run_shorter_than_a_day_is_refused(years: float) -> None:
    # A horizon of 0 days would leave every patient without even a baseline visit.
    with pytest.raises(ParameterError, match="years: must cover at least one day"):
        SimulationParameters(patients=10, years=years, seed=1)


def test_a_run_of_one_day_has_only_baseline_visits() -> None:
    params = SimulationParameters(patients=10, years=0.0014, seed=1)
    assert params.horizon_days == 1
    [chunk] = simulate(compiled(TE, "as shipped"), params)
    assert chunk.visits.num_rows == 10
    assert chunk.visits.column("day").to_pylist() == [0] * 10


def test_chunks_stay_within_the_cell_budget() -> None:
    # Daily visits over 20 years: room for 7,306 visits a patient (horizon 7,305 days), so
    # the default chunk of 50,000 patients would need 365 million cells (about 4 GiB).
    # Nearly everyone stops at the first visit after loading, to keep the run short.
    from apesim.engine.simulate import CELL_BUDGET, DEFAULT_CHUNK

    text = shipped_protocols()["v1_aflibercept_fixed_8_weekly"]
    for old, new in [
        ("loading_interval_days: 28", "loading_interval_days: 1"),
        ("interval_days: 56", "interval_days: 1"),
        ("threshold_letters: 20, probability: 0.5", "threshold_letters: 100, probability: 1.0"),
    ]:
        assert text.count(old) == 1
        text = text.replace(old, new)
    cp = compile_protocol(parse_protocol(text, "daily.yaml").protocol)
    params = SimulationParameters(patients=1200, years=20.0, seed=3)
    capacity = params.horizon_days + 1  # (H - 1) // 1 + 2
    per_chunk = CELL_BUDGET // capacity
    assert per_chunk < DEFAULT_CHUNK
    done: list[int] = []
    chunks = list(simulate(cp, params, progress=lambda n, total: done.append(n)))
    sizes = [c.patients.num_rows for c in chunks]
    assert sizes == [per_chunk, per_chunk, 1200 - 2 * per_chunk]
    assert max(sizes) * capacity <= CELL_BUDGET
    assert done == [per_chunk, 2 * per_chunk, 1200]
    # A chunk of one patient is never cut further.
    one = SimulationParameters(patients=2, years=20.0, seed=3)
    assert [c.patients.num_rows for c in simulate(cp, one, chunk_size=1)] == [1, 1]
