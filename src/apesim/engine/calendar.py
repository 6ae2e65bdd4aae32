"""The model-2.0 engine (`ape-calendar`): disease and vision evolve in calendar time between
visits, and visits only observe them.

Each patient carries a true vision V and a potential P (the vision a dry macula recovers
to). Between two visits the interval is cut into at most three stretches, in this order: dry
because an injection still works (the `durability` days after it), active, and dry because
the lesion has burnt out (after the quiescence day). Dry stretches recover V towards P
(time constant `recovery_days`) once the patient has been treated; active stretches lose
`active_loss` letters a year, of which `irreversible_fraction` also comes off P; atrophy
takes its letters a year off P (and V) all the time. A never-treated eye follows its
natural history in closed form from its baseline, so what it shows on a day does not depend
on how often it was seen. Death and loss to follow-up are days drawn at enrolment, from the
life table and the registries' hazards: they do not depend on the protocol. The loop runs
over visit numbers, vectorised over the patients of a chunk (see `simulate.py`).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from apesim.engine import rng
from apesim.engine.calendar_tables import NEVER, CompiledCalendar, sample_sorted
from apesim.engine.regimens import (
    ACTIVE,
    HIGHLY_ACTIVE,
    NAIVE,
    STABLE,
    next_interval,
    wants_injection,
)
from apesim.engine.simulate import (
    REASON_POOR_VISION,
    REASON_PREMATURE,
    REASON_STABLE,
    Chunk,
    SimulationParameters,
    build_chunk,
)
from apesim.limits import DAYS_PER_YEAR
from apesim.protocol.calendar import Observation

F64 = npt.NDArray[np.float64]


def visit_capacity(cp: CompiledCalendar, horizon: int) -> int:
    """The most visits a patient can have within `horizon` days."""
    return (horizon - 1) // cp.min_interval + 2


def _recover(v: F64, p: F64, factor: F64) -> F64:
    """V after a dry stretch: the gap to P shrinks by `factor` (V never exceeds P)."""
    return p - np.maximum(p - v, 0.0) * factor


def simulate_calendar_chunk(
    cp: CompiledCalendar, params: SimulationParameters, start: int, stop: int
) -> Chunk:
    """Simulate patients with indices start..stop-1 under model 2.0 and return their tables."""
    n = stop - start
    # The population: the same streams and draws as model 1.0, so the same patients.
    pop = rng.patients(cp, params.seed, params.recruitment_days, start, stop)
    index, keys, age, sex, enrol = pop.index, pop.keys, pop.age, pop.sex, pop.enrol
    vision0 = pop.vision
    horizon = params.horizon_days
    protocol = cp.protocol
    vision_model = protocol.vision
    rules = protocol.discontinuation
    observation_only = isinstance(protocol.regimen, Observation)
    zeros = np.zeros(n, np.int64)

    # Patient-level traits and the days of the events that do not depend on the protocol.
    t = rng.uniforms_at(rng.salted(keys, rng.TRAITS), 0, rng.TRAIT_SLOTS)
    response = cp.response.sample(t[:, rng.TRAIT_RESPONSE])
    durability = cp.durability.sample(t[:, rng.TRAIT_DURABILITY]).astype(np.int32)
    non_responder = t[:, rng.TRAIT_NON_RESPONSE] < protocol.disease.non_responder_share
    durability[non_responder] = 0
    loss_rate = cp.active_loss.sample(t[:, rng.TRAIT_ACTIVE_LOSS]) / DAYS_PER_YEAR
    atrophy = cp.atrophy.sample(t[:, rng.TRAIT_ATROPHY]) / DAYS_PER_YEAR
    quiet_day = enrol + np.minimum(
        cp.quiescence_day.sample(zeros, t[:, rng.TRAIT_QUIESCENCE]), NEVER - enrol
    ).astype(np.int32)
    group = sex.astype(np.int64) * cp.death_ages + (age.astype(np.int64) - cp.death_first_age)
    died = sample_sorted(cp.death_day, group, t[:, rng.TRAIT_DEATH])
    death_at = np.where(died >= NEVER, NEVER, enrol + died).astype(np.int64)
    age_band = age.astype(np.int64) - cp.death_first_age
    lost = sample_sorted(cp.loss_day, age_band, t[:, rng.TRAIT_LOSS_TO_FOLLOW_UP])
    lost_at = np.where(lost >= NEVER, NEVER, enrol + lost).astype(np.int64)

    gain = vision_model.gain
    room = gain.at_reference + gain.per_letter_below * (gain.reference_letters - vision0)
    v0 = vision0.astype(np.float64)
    potential0 = np.maximum(
        v0, np.minimum(float(vision_model.ceiling_letters), v0 + response * np.maximum(room, 0))
    )
    keep = vision_model.irreversible_fraction

    cap = visit_capacity(cp, horizon)
    # Visit-major (row k is written at step k, contiguously); build_chunk reads them as .T.
    day_m = np.zeros((cap, n), np.int32)
    state_m = np.zeros((cap, n), np.int8)
    vision_m = np.zeros((cap, n), np.int16)
    injected_m = np.zeros((cap, n), bool)
    interval_m = np.zeros((cap, n), np.int16)
    made_m = np.zeros((cap, n), bool)

    day = enrol.copy()
    v = v0.copy()
    p = potential0.copy()
    last_inj = np.full(n, -1, np.int64)
    prev_day = enrol.astype(np.int64)
    treated_ever = np.zeros(n, bool)
    on_treatment = np.full(n, not observation_only)
    was_active = np.ones(n, bool)
    interval = np.zeros(n, np.int16)
    stable_run = np.zeros(n, np.int16)
    stop_day = np.full(n, -1, np.int32)
    stop_reason = np.full(n, -1, np.int8)
    death_day = np.where(death_at < horizon, death_at, -1).astype(np.int32)
    following = day < np.minimum(horizon, death_at)
    loading = protocol.regimen.loading_doses
    max_interval = protocol.regimen.max_interval
    follow_up = rules.follow_up_interval_days
    day_keys = rng.salted(keys, rng.DAYS)
    visit_keys = rng.salted(keys, rng.VISITS)
    recovery = cp.recovery
    activity = cp.activity
    exudation = cp.exudation
    wet_drop = vision_model.exudation_letters

    for k in range(cap):
        idx = np.flatnonzero(following)
        if idx.size == 0:
            break
        d = day[idx].astype(np.int64)
        treated = treated_ever[idx]
        quiet = quiet_day[idx].astype(np.int64)
        if k > 0:
            # Disease and vision from the previous visit to this one.
            t0 = prev_day[idx]
            dt = d - t0
            li = last_inj[idx]
            dry_until = np.where(li >= 0, li + durability[idx], t0)
            a = np.clip(dry_until - t0, 0, dt)
            b = np.clip(quiet - t0, a, dt) - a
            c = dt - a - b
            vi, pi, lr, at = v[idx], p[idx], loss_rate[idx], atrophy[idx]
            pi = pi - at * a
            vi = _recover(vi, pi, recovery[a])
            # Active from t0 + a to t0 + a + b, at a rate waning with time since enrolment.
            e0 = enrol[idx]
            weight = activity[t0 + a + b - e0] - activity[t0 + a - e0]
            wet = pi - wet_drop
            vi = np.minimum(vi, wet + (vi - wet) * exudation[b])
            vi = vi - lr * weight
            pi = pi - keep * lr * weight - at * b
            vi = np.minimum(vi, pi)
            pi = pi - at * c
            vi = _recover(vi, pi, recovery[c])
            # Never treated: the natural history in closed form from enrolment.
            never = np.flatnonzero(~treated)
            if never.size:
                who = idx[never]
                since = d[never] - enrol[who]
                act = activity[np.minimum(since, np.maximum(quiet[never] - enrol[who], 0))]
                vi[never] = v0[who] - loss_rate[who] * act - atrophy[who] * since
                pi[never] = potential0[who] - (keep * loss_rate[who]) * act - atrophy[who] * since
            vi = np.maximum(vi, 0.0)
            pi = np.maximum(pi, 0.0)
            v[idx], p[idx] = vi, pi
            noise = cp.noise.sample(
                np.zeros(idx.size, np.int64), rng.uniforms_at(day_keys[idx], d)[:, 0]
            )
            seen = np.clip(np.rint(vi) + noise, 0, 100).astype(np.int16)
            active = (d < quiet) & ((last_inj[idx] < 0) | (d >= last_inj[idx] + durability[idx]))
            s = np.where(active, np.where(was_active[idx], HIGHLY_ACTIVE, ACTIVE), STABLE).astype(
                np.int8
            )
        else:
            seen = vision0[idx]
            active = np.ones(idx.size, bool)
            s = np.full(idx.size, NAIVE, np.int8)

        on = on_treatment[idx]
        nxt = next_interval(cp.protocol.regimen, k, s, interval[idx], naive_keeps_interval=False)
        reason = np.full(idx.size, -1, np.int8)
        if k >= loading and not observation_only:
            at_max = (s == STABLE) & (interval[idx] >= max_interval)
            run = np.where(at_max, stable_run[idx] + 1, 0).astype(np.int16)
            stable_run[idx] = run
            u = rng.uniforms_at(visit_keys[idx], k, 2)
            rule = rules.stable_at_max_interval
            if rule is not None:
                hit = (run >= rule.consecutive_visits) & (
                    u[:, rng.VISIT_STOP_STABLE] < rule.probability
                )
                reason[hit] = REASON_STABLE
            pv = rules.poor_vision
            if pv is not None:
                hit = (seen < pv.threshold_letters) & (u[:, rng.VISIT_STOP_VISION] < pv.probability)
                reason[hit] = REASON_POOR_VISION
            reason[~on] = -1
        stopping = reason >= 0
        inj = wants_injection(cp.protocol.regimen, k, s) & on & ~stopping
        if not observation_only:  # after stopping: follow-up visits at their own interval
            nxt = np.where(on & ~stopping, nxt, follow_up).astype(np.int16)

        day_m[k, idx] = d
        state_m[k, idx] = s
        vision_m[k, idx] = seen
        injected_m[k, idx] = inj
        made_m[k, idx] = True

        stopped_idx = idx[stopping]
        stop_day[stopped_idx] = d[stopping]
        stop_reason[stopped_idx] = reason[stopping]
        on_treatment[stopped_idx] = False
        last_inj[idx[inj]] = d[inj]
        treated_ever[idx[inj]] = True
        was_active[idx] = active
        interval[idx] = np.where(on & ~stopping, nxt, interval[idx])
        prev_day[idx] = d

        # The next visit, unless death, loss to follow-up or the horizon come first.
        upcoming = d + nxt
        alive = upcoming < death_at[idx]
        attends = upcoming < lost_at[idx]
        within = upcoming < horizon
        goes_on = alive & attends & within
        lost_now = alive & within & ~attends & on_treatment[idx]
        stop_day[idx[lost_now]] = upcoming[lost_now]
        stop_reason[idx[lost_now]] = REASON_PREMATURE
        on_treatment[idx[lost_now]] = False
        interval_m[k, idx] = nxt
        day[idx] = upcoming
        following[idx] = goes_on

    return build_chunk(
        index,
        enrol,
        age,
        sex,
        vision0,
        day_m.T,
        state_m.T,
        vision_m.T,
        injected_m.T,
        interval_m.T,
        made_m.T,
        stop_day,
        stop_reason,
        death_day,
    )
