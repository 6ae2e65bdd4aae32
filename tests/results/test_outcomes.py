"""All-patient and on-treatment outcomes at a time, on tables written by hand."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim.analysis import outcomes_by_year
from apesim.engine import SimulationParameters, simulate
from apesim.engine.tables import compile_protocol
from apesim.protocol import resolve_protocol
from apesim.results.outcomes import outcomes_at, outcomes_over
from tests.analysis.tables import patients_table, visits_table
from tests.results.reference_outcomes import outcomes_at as reference_outcomes_at

# p0 treated throughout; p1 stops on day 200 and is followed (vision falls); p2 dies on
# day 100; p3 enrolled late, so its first year is beyond the run.
PATIENTS = patients_table(
    [
        {"patient_id": 0, "baseline_vision": 50, "final_vision": 65},
        {
            "patient_id": 1,
            "baseline_vision": 40,
            "final_vision": 30,
            "discontinuation_day": 200,
            "discontinuation_reason": "stable_at_max_interval",
        },
        {"patient_id": 2, "baseline_vision": 70, "final_vision": 70, "death_day": 100},
        {"patient_id": 3, "baseline_vision": 60, "final_vision": 60, "enrol_day": 500},
    ]
)
VISITS = visits_table(
    [
        (0, 0, 50, True),
        (0, 100, 60, True),
        (0, 400, 65, True),
        (1, 0, 40, True),
        (1, 200, 45, False),
        (1, 330, 30, False),
        (2, 0, 70, True),
        (3, 500, 60, True),
    ]
)


def test_all_patients_carry_vision_after_stopping_and_on_treatment_leaves_them_out() -> None:
    o = outcomes_at(PATIENTS, VISITS, 2.0, 365)
    assert (o.all_patients.n, o.all_patients.mean_change) == (2, 0.0)  # +10 and -10
    assert (o.on_treatment.n, o.on_treatment.mean_change) == (1, 10.0)
    assert o.all_patients.loss_15_share == 0.0 and o.on_treatment.gain_15_share == 0.0
    assert o.injections_mean == 1.5  # before day 365: 2 and 1
    # of the three patients whose first year lies within the run
    assert (o.discontinued_share, o.dead_share, o.ended_share) == pytest.approx(
        (1 / 3, 1 / 3, 2 / 3)
    )


def test_the_longest_interval_share_counts_patients_on_treatment() -> None:
    assert (
        outcomes_at(PATIENTS, VISITS, 2.0, 365, longest_interval=28).longest_interval_share == 1.0
    )
    assert (
        outcomes_at(PATIENTS, VISITS, 2.0, 365, longest_interval=56).longest_interval_share == 0.0
    )


def test_outcomes_by_year_lists_the_years_within_the_run() -> None:
    frame = outcomes_by_year(PATIENTS, VISITS, 2.0)
    assert frame["at"].tolist() == ["1 year", "2 years"]
    assert frame.loc[0, "on treatment: vision change"] == 10.0


@settings(max_examples=12, deadline=None)
@given(
    st.sampled_from(["aflibercept_treat_and_extend", "prn_monthly", "v1_prn_monthly"]),
    st.integers(1, 5000),
)
def test_one_pass_for_every_time_equals_the_outcomes_at_each_time(
    protocol: str, batch_rows: int
) -> None:
    params = SimulationParameters(patients=400, years=4.0, seed=3, recruitment_months=9)
    chunks = list(simulate(compile_protocol(resolve_protocol(protocol).protocol), params))
    patients = pa.concat_tables(c.patients for c in chunks)
    visits = pa.Table.from_batches(  # cut anywhere: a patient's visits span batches
        pa.concat_tables(c.visits for c in chunks).to_batches(max_chunksize=batch_rows)
    )
    days = [1, 100, 364, 365, 672, 730, 1095, 1460]
    found = outcomes_over(patients, visits, params.years, days, longest_interval=112)
    for at, got in zip(days, found, strict=True):
        expected = reference_outcomes_at(patients, visits, params.years, at, 112)
        assert dataclasses.astuple(got) == dataclasses.astuple(expected), at
