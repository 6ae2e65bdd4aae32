"""A protocol compiled into lookup tables for the engine: every distribution is discrete
(whole letters, whole years, states) and sampled by inverse CDF with `searchsorted`, so
that sampling uses only comparisons and the results are identical on every machine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt

from apesim.limits import DAYS_PER_YEAR
from apesim.protocol.calendar import AnyProtocol
from apesim.protocol.schema import STATES, Protocol, TreatAndExtend, TruncatedNormal

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
_DIGITS = 12  # cumulative probabilities are rounded so that libm differences cannot leak in


@dataclass(frozen=True)
class GroupedSampler:
    """Discrete distributions for several groups, sampled in one `searchsorted` call.

    Group g's cumulative probabilities are stored shifted by g, so a uniform u in group g
    becomes the search key g + u. For u close to 1 (1 - 2**-53, a value the streams can
    give) the sum g + u rounds up to g + 1 when g >= 1, which would find the next group's
    first value (or run past the end for the last group); so the index is clamped to
    `ends[g]`, the last value group g can give. Any key below g + 1 already finds an index
    at most `ends[g]`, so the clamp changes nothing else.
    """

    cumulative: FloatArray
    values: IntArray
    ends: IntArray  # per group: the index of the first value whose cumulative reaches 1

    def sample(self, group: npt.NDArray[np.integer], u: FloatArray) -> IntArray:
        index = np.searchsorted(self.cumulative, group + u, side="right")
        return self.values[np.minimum(index, self.ends[group])]

    @classmethod
    def from_distributions(cls, dists: list[tuple[IntArray, FloatArray]]) -> GroupedSampler:
        cums, vals, ends = [], [], []
        start = 0
        for g, (values, probs) in enumerate(dists):
            probs = np.asarray(probs, dtype=np.float64)
            cum = np.round(np.cumsum(probs / probs.sum()), _DIGITS)
            cum[-1] = 1.0
            cums.append(cum + g)
            vals.append(np.asarray(values, dtype=np.int64))
            # What a key just below g + 1 finds: values after it have no probability.
            ends.append(start + int(np.argmax(cum >= 1.0)))
            start += cum.size
        return cls(np.concatenate(cums), np.concatenate(vals), np.array(ends, dtype=np.int64))


def discretised_normal(mean: float, sd: float, lo: int, hi: int) -> tuple[IntArray, FloatArray]:
    """Probabilities of the whole numbers lo..hi under N(mean, sd) rounded, truncated to lo..hi."""
    dist = NormalDist(mean, sd)
    values = np.arange(lo, hi + 1, dtype=np.int64)
    edges = [dist.cdf(v - 0.5) for v in range(lo, hi + 2)]
    probs = np.diff(np.array(edges, dtype=np.float64))
    if probs.sum() <= 0:  # the whole mass lies outside lo..hi: put it on the nearest end
        probs = np.zeros(len(values))
        probs[0 if mean < lo else -1] = 1.0
    return values, probs


def truncated_normal_sampler(spec: TruncatedNormal) -> GroupedSampler:
    """A protocol's truncated normal (whole numbers `min`..`max`) as a one-group sampler: the
    baseline age and vision of both models."""
    return GroupedSampler.from_distributions(
        [discretised_normal(spec.mean, spec.sd, spec.min, spec.max)]
    )


def _change_distribution(mean: float, sd: float) -> tuple[IntArray, FloatArray]:
    span = math.ceil(6 * sd + 0.5)
    lo, hi = math.floor(mean) - span, math.ceil(mean) + span
    return discretised_normal(mean, sd, max(lo, -100), min(hi, 100))


@dataclass(frozen=True)
class CompiledProtocol:
    """The numbers the engine needs, derived once from a protocol."""

    protocol: Protocol
    transitions: GroupedSampler  # group = state * 2 + treated
    vision_change: GroupedSampler  # group = state * 2 + treated
    baseline_age: GroupedSampler
    baseline_vision: GroupedSampler
    female_share: float
    death_by_interval: FloatArray  # P(death within an interval of d days), index d
    premature_by_interval: FloatArray  # P(premature stop at a visit after d days)
    max_interval: int
    min_interval: int

    @property
    def regimen_type(self) -> str:
        return self.protocol.regimen.type


if TYPE_CHECKING:
    from apesim.engine.calendar_tables import CompiledCalendar

# A protocol compiled for its model's engine.
AnyCompiled: TypeAlias = "CompiledProtocol | CompiledCalendar"


def _by_interval(annual: float, max_days: int) -> FloatArray:
    days = np.arange(max_days + 1, dtype=np.float64)
    return np.round(1.0 - (1.0 - annual) ** (days / DAYS_PER_YEAR), _DIGITS)


def compile_protocol(protocol: AnyProtocol) -> AnyCompiled:
    """Turn a validated protocol into the sampling tables of its model's engine."""
    from apesim.engine.calendar_tables import compile_calendar
    from apesim.protocol.calendar import CalendarProtocol

    if isinstance(protocol, CalendarProtocol):
        return compile_calendar(protocol)
    return compile_markov(protocol)


def compile_markov(protocol: Protocol) -> CompiledProtocol:
    """Turn a validated model-1.0 protocol into sampling tables."""
    transitions = []
    changes = []
    for state in STATES:
        base = protocol.disease_transitions[state]
        effect = protocol.treatment_effect.get(state, {})
        for treated in (False, True):
            probs = np.array(
                [base.get(to, 0.0) * (effect.get(to, 1.0) if treated else 1.0) for to in STATES]
            )
            transitions.append((np.arange(len(STATES)), probs))
            dist = getattr(protocol.vision, state)
            change = dist.treated if treated else dist.untreated
            changes.append(_change_distribution(change.mean, change.sd))
    pop = protocol.baseline
    regimen = protocol.regimen
    intervals = [regimen.loading_interval_days, regimen.max_interval]
    if isinstance(regimen, TreatAndExtend):
        intervals += [regimen.min_interval_days, regimen.initial_interval_days]
    max_interval = max(intervals)
    return CompiledProtocol(
        protocol=protocol,
        transitions=GroupedSampler.from_distributions(transitions),
        vision_change=GroupedSampler.from_distributions(changes),
        baseline_age=truncated_normal_sampler(pop.age_years),
        baseline_vision=truncated_normal_sampler(pop.vision_letters),
        female_share=pop.female_share,
        death_by_interval=_by_interval(protocol.mortality.annual_probability, max_interval),
        premature_by_interval=_by_interval(
            protocol.discontinuation.premature_annual_probability, max_interval
        ),
        max_interval=max_interval,
        min_interval=min(intervals),
    )
