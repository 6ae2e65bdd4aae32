"""Summary statistics: each definition checked on tiny tables computed by hand, and the
statistics as a pure function of the tables (same tables, same JSON bytes)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim.engine import SimulationParameters, simulate
from apesim.engine.tables import compile_protocol
from apesim.protocol import resolve_protocol
from apesim.results.schema import DISCONTINUATION_REASONS, PATIENTS_SCHEMA, VISITS_SCHEMA
from apesim.results.stats import compute_summary, horizon_days, summary_json
from tests.analysis.random_tables import simulations
from tests.results.reference_stats import reference_summary

# -- building tables by hand -----------------------------------------------------------


@dataclass
class Patient:
    """One patient and its visits as (day, vision, injected); the patient row is derived."""

    base: int
    visits: list[tuple[int, int, bool]]
    enrol: int = 0
    stop_reason: str | None = None  # discontinued at the last visit
    death: int | None = None
    age: int = 75
    sex: str = "F"


def build(people: list[Patient]) -> tuple[pa.Table, pa.Table]:
    patients, visits = [], []
    for pid, p in enumerate(people):
        assert p.visits[0][0] == p.enrol
        for number, (day, vision, injected) in enumerate(p.visits):
            last = number == len(p.visits) - 1
            stopped_here = last and p.stop_reason is not None
            visits.append(
                {
                    "patient_id": pid,
                    "day": day,
                    "visit": number,
                    "state": "STABLE",
                    "vision": vision,
                    "injected": injected,
                    "next_interval": None if stopped_here else 28,
                }
            )
        patients.append(
            {
                "patient_id": pid,
                "enrol_day": p.enrol,
                "baseline_age": p.age,
                "sex": p.sex,
                "baseline_vision": p.base,
                "final_vision": p.visits[-1][1],
                "injections": sum(inj for _, _, inj in p.visits),
                "visits": len(p.visits),
                "discontinuation_day": p.visits[-1][0] if p.stop_reason else None,
                "discontinuation_reason": p.stop_reason,
                "death_day": p.death,
            }
        )
    return (
        pa.Table.from_pylist(patients, schema=PATIENTS_SCHEMA),
        pa.Table.from_pylist(visits, schema=VISITS_SCHEMA),
    )


def summarise(people: list[Patient], years: float = 2.0) -> dict[str, Any]:
    return compute_summary(*build(people), years)


# Three patients over 2 years (horizon round(2 x 365.25) = 730 days):
#   A: followed to the end, injected at every visit, one visit after day 365;
#   B: stopped for poor vision at day 56 (that visit not injected);
#   C: enrolled at day 100, died at day 300, so never observed at one year.
A = Patient(50, [(0, 50, True), (28, 55, True), (56, 60, True), (112, 62, True), (400, 70, True)])
B = Patient(40, [(0, 40, True), (28, 38, True), (56, 20, False)], stop_reason="poor_vision")
C = Patient(60, [(100, 60, True), (128, 65, True)], enrol=100, death=300)


@pytest.fixture(scope="module")
def hand() -> dict[str, Any]:
    return summarise([A, B, C])


def test_horizon_is_years_times_365_25_rounded() -> None:
    assert [horizon_days(y) for y in (1.0, 2.0, 3.0, 5.0)] == [365, 730, 1096, 1826]


def test_counts(hand: dict[str, Any]) -> None:
    assert (hand["patients"], hand["visits"], hand["deaths"]) == (3, 10, 1)
    assert hand["injections"]["total"] == 9
    assert hand["years"] == 2.0


def test_follow_up_ends_at_discontinuation_death_or_horizon(hand: dict[str, Any]) -> None:
    # A: 730 - 0, B: 56 - 0 (stopped), C: 300 - 100 (died) = 986 days.
    assert hand["patient_years"] == 986 / 365.25
    assert hand["injections"]["per_patient_year"] == 9 * 365.25 / 986


def test_year1_injections_average_over_patients_observed_at_one_year(
    hand: dict[str, Any],
) -> None:
    # A: 4 injections before day 365 (day 400 is not), B: 2; C died before one year.
    assert hand["injections"]["year1_patients"] == 2
    assert hand["injections"]["year1_mean"] == 3.0


def test_year1_vision_is_the_last_observation_carried_forward(hand: dict[str, Any]) -> None:
    # A's last visit by day 365 is day 112 (62 letters); B stopped at 20 letters.
    year1 = hand["vision"]["year1"]
    assert (year1["n"], year1["mean"], year1["median"]) == (2, 41.0, 41.0)
    assert year1["sd"] == pytest.approx(math.sqrt(882))
    change = hand["vision_change"]["year1"]
    assert change == {"n": 2, "mean": -4.0, "gain_15_share": 0.0, "loss_15_share": 0.5}


def test_vision_at_baseline_and_end_cover_every_patient(hand: dict[str, Any]) -> None:
    assert hand["vision"]["baseline"] == {"n": 3, "mean": 50.0, "sd": 10.0, "median": 50.0}
    end = hand["vision"]["end"]
    assert (end["n"], end["mean"], end["median"]) == (3, 155 / 3, 65.0)
    assert end["sd"] == pytest.approx(math.sqrt(4550 / 6))
    change = hand["vision_change"]["end"]  # +20, -20, +5
    assert change == {"n": 3, "mean": 5 / 3, "gain_15_share": 1 / 3, "loss_15_share": 1 / 3}


def test_discontinuation_counts_every_reason(hand: dict[str, Any]) -> None:
    assert hand["discontinuation"] == {
        "total": 1,
        "rate": 1 / 3,
        "by_reason": {"poor_vision": 1, "premature": 0, "stable_at_max_interval": 0},
    }
    assert list(hand["discontinuation"]["by_reason"]) == sorted(DISCONTINUATION_REASONS)


def test_mean_treatment_interval_is_days_between_consecutive_injections(
    hand: dict[str, Any],
) -> None:
    # A: 28, 28, 56, 288; B: 28 (its last visit was not an injection); C: 28.
    assert hand["mean_treatment_interval_days"] == 456 / 6


# -- one rule at a time ----------------------------------------------------------------


def test_injection_on_day_365_after_enrolment_is_not_in_year1() -> None:
    on_day_364 = Patient(50, [(10, 50, True), (374, 50, True)], enrol=10)
    on_day_365 = Patient(50, [(9, 50, True), (374, 50, True)], enrol=9)
    assert summarise([on_day_364])["injections"]["year1_mean"] == 2.0
    assert summarise([on_day_365])["injections"]["year1_mean"] == 1.0


def test_vision_on_day_365_after_enrolment_counts_for_year1() -> None:
    on_the_day = Patient(50, [(0, 50, True), (365, 80, True)])
    day_after = Patient(50, [(0, 50, True), (366, 80, True)])
    assert summarise([on_the_day])["vision"]["year1"]["mean"] == 80.0
    assert summarise([day_after])["vision"]["year1"]["mean"] == 50.0


def test_patient_enrolled_less_than_a_year_before_the_horizon_is_not_observed() -> None:
    # Horizon 730: enrolled at day 365 is followed a full year, day 366 is not.
    in_time = Patient(50, [(365, 50, True)], enrol=365)
    too_late = Patient(50, [(366, 50, True)], enrol=366)
    assert summarise([in_time])["vision"]["year1"]["n"] == 1
    assert summarise([too_late])["vision"]["year1"]["n"] == 0


def test_patient_dying_on_day_365_is_not_observed_at_one_year() -> None:
    died_on_365 = Patient(50, [(0, 50, True)], death=365)
    died_on_366 = Patient(50, [(0, 50, True)], death=366)
    assert summarise([died_on_365])["injections"]["year1_patients"] == 0
    assert summarise([died_on_366])["injections"]["year1_patients"] == 1


def test_discontinued_patient_is_still_observed_at_one_year() -> None:
    stopped = Patient(50, [(0, 50, True), (28, 30, False)], stop_reason="premature")
    summary = summarise([stopped])
    assert summary["vision"]["year1"]["mean"] == 30.0
    assert summary["injections"]["year1_mean"] == 1.0


def test_change_of_exactly_15_letters_counts_as_gain_or_loss() -> None:
    people = [
        Patient(50, [(0, 65, True)]),  # +15
        Patient(50, [(0, 64, True)]),  # +14
        Patient(50, [(0, 35, True)]),  # -15
        Patient(50, [(0, 36, True)]),  # -14
    ]
    change = summarise(people)["vision_change"]["end"]
    assert (change["gain_15_share"], change["loss_15_share"]) == (0.25, 0.25)


def test_treatment_interval_skips_visits_without_injection() -> None:
    prn = Patient(50, [(0, 50, True), (28, 50, False), (56, 50, False), (84, 50, True)])
    assert summarise([prn])["mean_treatment_interval_days"] == 84.0


def test_treatment_interval_never_spans_two_patients() -> None:
    one = Patient(50, [(0, 50, True), (100, 50, True)])
    two = Patient(50, [(0, 50, True)])
    assert summarise([one, two])["mean_treatment_interval_days"] == 100.0


def test_undefined_statistics_are_null() -> None:
    # Half a year: nobody is observed at one year; one visit: no interval, no sd.
    summary = summarise([Patient(50, [(0, 50, True)])], years=0.5)
    assert summary["injections"]["year1_mean"] is None
    assert summary["vision"]["year1"] == {"n": 0, "mean": None, "sd": None, "median": None}
    assert summary["vision_change"]["year1"]["mean"] is None
    assert summary["vision"]["baseline"]["sd"] is None
    assert summary["mean_treatment_interval_days"] is None
    assert '"mean_treatment_interval_days": null' in summary_json(summary)


def test_no_injection_at_all_gives_no_treatment_interval() -> None:
    # Everyone stopped at visit 0 (no loading, a stop rule that always fires): no row is
    # injected, so there is no interval (this used to raise IndexError).
    people = [
        Patient(50, [(0, 10, False)], stop_reason="poor_vision"),
        Patient(60, [(0, 15, False)], stop_reason="poor_vision"),
    ]
    summary = summarise(people)
    assert summary["injections"]["total"] == 0
    assert summary["mean_treatment_interval_days"] is None
    assert summary["discontinuation"]["by_reason"]["poor_vision"] == 2


def test_a_reason_without_a_discontinuation_day_is_read_from_the_dictionary() -> None:
    # The engine never writes this, but an untrusted package may: the reason is counted
    # by its value (the total counts discontinuation days) instead of raising IndexError.
    patients, visits = build([Patient(50, [(0, 50, True)], stop_reason="premature")])
    index = patients.schema.get_field_index("discontinuation_day")
    no_day = pa.array([None], pa.int32())
    patients = patients.set_column(index, PATIENTS_SCHEMA.field(index), no_day)
    summary = compute_summary(patients, visits, 2.0)
    assert summary["discontinuation"]["total"] == 0
    assert summary["discontinuation"]["by_reason"] == {
        "poor_vision": 0,
        "premature": 1,
        "stable_at_max_interval": 0,
    }


def test_median_of_an_even_count_is_the_midpoint() -> None:
    people = [Patient(b, [(0, b, True)]) for b in (40, 41, 60, 90)]
    assert summarise(people)["vision"]["baseline"]["median"] == 50.5


# -- a pure function of the tables -----------------------------------------------------


@pytest.fixture(scope="module")
def simulated() -> tuple[pa.Table, pa.Table]:
    cp = compile_protocol(resolve_protocol("v1_prn_monthly").protocol)
    params = SimulationParameters(patients=150, years=2.0, seed=99, recruitment_months=8.0)
    chunks = list(simulate(cp, params, chunk_size=40))
    return (
        pa.concat_tables(c.patients for c in chunks),
        pa.concat_tables(c.visits for c in chunks),
    )


def test_same_tables_give_the_same_json_bytes(simulated: tuple[pa.Table, pa.Table]) -> None:
    first = summary_json(compute_summary(*simulated, 2.0))
    assert summary_json(compute_summary(*simulated, 2.0)) == first
    # The same values in one chunk instead of four.
    combined = tuple(t.combine_chunks() for t in simulated)
    assert summary_json(compute_summary(*combined, 2.0)) == first


def test_json_is_sorted_and_ends_with_a_newline(simulated: tuple[pa.Table, pa.Table]) -> None:
    text = summary_json(compute_summary(*simulated, 2.0))
    assert text.endswith("}\n")
    assert text.index('"deaths"') < text.index('"discontinuation"') < text.index('"injections"')


@settings(max_examples=20, deadline=None)
@given(order=st.permutations(range(150)))
def test_patient_row_order_does_not_matter(
    simulated: tuple[pa.Table, pa.Table], order: list[int]
) -> None:
    patients, visits = simulated
    expected = summary_json(compute_summary(patients, visits, 2.0))
    assert summary_json(compute_summary(patients.take(order), visits, 2.0)) == expected


def test_a_changed_value_changes_the_statistics(simulated: tuple[pa.Table, pa.Table]) -> None:
    # Guards the purity tests above against comparing constants.
    patients, visits = simulated
    final = patients.column("final_vision").to_pylist()
    final[0] = 0 if final[0] else 100
    index = patients.schema.get_field_index("final_vision")
    edited = patients.set_column(index, PATIENTS_SCHEMA.field(index), pa.array(final, pa.int16()))
    assert summary_json(compute_summary(edited, visits, 2.0)) != summary_json(
        compute_summary(patients, visits, 2.0)
    )


@settings(max_examples=300, deadline=None)
@given(simulations())
def test_chunked_statistics_equal_the_whole_table_computation(
    simulation: tuple[pa.Table, pa.Table, float],
) -> None:
    """The visits are read chunk by chunk (a patient's rows may span chunks): the JSON bytes
    are those of the earlier whole-table computation, kept as the reference."""
    patients, visits, years = simulation
    assert summary_json(compute_summary(patients, visits, years)) == summary_json(
        reference_summary(patients, visits, years)
    )
