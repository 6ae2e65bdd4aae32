"""The treatment rules both models share (engine/regimens.py): properties over any states,
intervals and visit numbers."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from apesim.engine.regimens import (
    ACTIVE,
    HIGHLY_ACTIVE,
    NAIVE,
    STABLE,
    next_interval,
    wants_injection,
)
from apesim.protocol.calendar import Observation
from apesim.protocol.schema import PRN, STATES, Fixed, TreatAndExtend

TE = TreatAndExtend(
    type="treat_and_extend",
    loading_doses=3,
    loading_interval_days=28,
    initial_interval_days=56,
    min_interval_days=28,
    max_interval_days=112,
    extend_days=14,
    shorten_days=14,
)
states = st.lists(st.sampled_from([NAIVE, STABLE, ACTIVE, HIGHLY_ACTIVE]), min_size=1, max_size=50)


def _arrays(codes: list[int], interval: int) -> tuple[np.ndarray, np.ndarray]:
    return np.array(codes, np.int8), np.full(len(codes), interval, np.int16)


def test_the_codes_follow_the_schema_order() -> None:
    assert [STATES[c] for c in (NAIVE, STABLE, ACTIVE, HIGHLY_ACTIVE)] == list(STATES)


@given(states, st.integers(28, 112), st.integers(3, 40), st.booleans())
def test_treat_and_extend_stays_within_its_bounds_and_follows_the_state(
    codes: list[int], interval: int, k: int, naive_keeps: bool
) -> None:
    state, previous = _arrays(codes, interval)
    out = next_interval(TE, k, state, previous, naive_keeps_interval=naive_keeps)
    assert out.dtype == np.int16
    assert ((out >= TE.min_interval_days) & (out <= TE.max_interval_days)).all()
    assert (out[state == STABLE] == min(interval + 14, 112)).all()
    assert (out[state == ACTIVE] == max(interval - 14, 28)).all()
    assert (out[state == HIGHLY_ACTIVE] == 28).all()
    naive = out[state == NAIVE]
    assert (naive == (interval if naive_keeps else max(interval - 14, 28))).all()


@given(states, st.integers(0, 40))
def test_loading_visits_come_at_the_loading_interval_then_the_initial_one(
    codes: list[int], k: int
) -> None:
    state, previous = _arrays(codes, 70)
    out = next_interval(TE, k, state, previous, naive_keeps_interval=True)
    if k < TE.loading_doses - 1:
        assert (out == TE.loading_interval_days).all()
    elif k == TE.loading_doses - 1:
        assert (out == TE.initial_interval_days).all()


@given(states, st.integers(0, 40))
def test_who_is_injected(codes: list[int], k: int) -> None:
    state = np.array(codes, np.int8)
    prn = PRN(type="prn", loading_doses=3, loading_interval_days=28)
    fixed = Fixed(type="fixed", loading_doses=3, loading_interval_days=28, interval_days=56)
    watch = Observation(type="observation", interval_days=91)
    assert wants_injection(TE, k, state).all() and wants_injection(fixed, k, state).all()
    assert not wants_injection(watch, k, state).any()
    as_needed = wants_injection(prn, k, state)
    assert (as_needed == (True if k < 3 else state != STABLE)).all()
    intervals = next_interval(watch, k, state, state.astype(np.int16), naive_keeps_interval=False)
    assert (intervals == 91).all()
