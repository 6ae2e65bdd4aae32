"""A model-2.0 protocol compiled into lookup tables: every patient-level trait, the day of
death, of loss to follow-up and of quiescence are drawn by inverse CDF over discrete tables
(`GroupedSampler`), and the recovery factors are a table by whole days, so that a run uses
only table look-ups and IEEE arithmetic (+, -, *, /) per patient: the same numbers on
every machine.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

from apesim.engine.tables import GroupedSampler, discretised_normal, truncated_normal_sampler
from apesim.limits import DAYS_PER_YEAR, MAX_YEARS
from apesim.protocol.calendar import CalendarProtocol, LogNormal, Observation
from apesim.protocol.schema import TreatAndExtend

FloatArray = npt.NDArray[np.float64]
_DIGITS = 12
# Days covered by the day tables: the longest run, and one more day for "not within it".
TABLE_DAYS = math.ceil(MAX_YEARS * DAYS_PER_YEAR) + 1
NEVER = np.int32(2**31 - 1)  # a day beyond any horizon


@dataclass(frozen=True)
class Trait:
    """A log-normal trait on a grid: sample an index, read the value."""

    sampler: GroupedSampler
    grid: FloatArray

    def sample(self, u: FloatArray) -> FloatArray:
        return self.grid[self.sampler.sample(np.zeros(u.size, np.int64), u)]


def sample_sorted(
    sampler: GroupedSampler, group: npt.NDArray[np.int64], u: FloatArray
) -> npt.NDArray[np.int64]:
    """`sampler.sample(group, u)`, with the keys searched in sorted order: the same values,
    faster over a large table (neighbouring searches share the cache)."""
    keys = group + u
    order = np.argsort(keys, kind="stable")
    index = np.empty(keys.size, np.int64)
    index[order] = np.searchsorted(sampler.cumulative, keys[order], side="right")
    return sampler.values[np.minimum(index, sampler.ends[group])]


def _trait(spec: LogNormal, step: float) -> Trait:
    lo = math.floor(spec.min / step)
    hi = max(math.ceil(spec.max / step), lo)
    grid = np.arange(lo, hi + 1, dtype=np.float64) * step
    if spec.sd_log == 0:
        probs = np.zeros(grid.size)
        probs[int(np.argmin(np.abs(grid - spec.median)))] = 1.0
    else:
        dist = NormalDist(math.log(spec.median), spec.sd_log)
        edges = [0.0] + [dist.cdf(math.log(g + step / 2)) for g in grid[:-1]] + [1.0]
        probs = np.diff(np.array(edges, dtype=np.float64))
    sampler = GroupedSampler.from_distributions([(np.arange(grid.size, dtype=np.int64), probs)])
    return Trait(sampler, np.round(grid, 6))


def _day_distribution(log_survival_per_day: FloatArray) -> tuple[npt.NDArray[np.int64], FloatArray]:
    """The day (1..TABLE_DAYS, or NEVER) on which an event happens, from the log of the
    probability of surviving each day 1..TABLE_DAYS."""
    survival = np.exp(np.cumsum(log_survival_per_day))
    died = 1.0 - survival
    probs = np.diff(np.concatenate([[0.0], died, [1.0]]))
    probs = np.maximum(probs, 0.0)
    days = np.concatenate([np.arange(1, TABLE_DAYS + 1), [int(NEVER)]]).astype(np.int64)
    return days, probs


def _annual_to_daily_log(annual: float) -> float:
    return math.log1p(-annual) / DAYS_PER_YEAR if annual < 1 else -math.inf


@dataclass(frozen=True)
class CompiledCalendar:
    """The numbers the model-2.0 engine needs, derived once from a protocol."""

    protocol: CalendarProtocol
    baseline_age: GroupedSampler
    baseline_vision: GroupedSampler
    female_share: float
    response: Trait
    durability: Trait  # days
    active_loss: Trait  # letters a year
    atrophy: Trait  # letters a year
    quiescence_day: GroupedSampler  # days after enrolment
    loss_day: GroupedSampler  # days after enrolment; group = age - first age (baseline)
    death_day: GroupedSampler  # group = sex * n_ages + (age - first_age)
    death_first_age: int
    death_ages: int
    noise: GroupedSampler  # whole letters
    recovery: FloatArray  # exp(-d / recovery_days) for d = 0..TABLE_DAYS
    exudation: FloatArray  # exp(-d / exudation_days) for d = 0..TABLE_DAYS
    activity: FloatArray  # days of full-rate activity in the first d days: tau (1 - e^(-d/tau))
    max_interval: int
    min_interval: int

    @property
    def regimen_type(self) -> str:
        return self.protocol.regimen.type


def death_distributions(
    protocol: CalendarProtocol,
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    """The day of death after enrolment (or NEVER) for each sex (F, M) and each whole age
    of the baseline population, from the life table: the distributions the engine samples."""
    table, pop = protocol.mortality.life_table, protocol.baseline.age_years
    return _death_distributions(
        tuple(table.female), tuple(table.male), table.from_age, pop.min, pop.max
    )


def _death_distributions(
    female: tuple[float, ...], male: tuple[float, ...], from_age: int, first: int, last: int
) -> list[tuple[npt.NDArray[np.int64], FloatArray]]:
    day = np.arange(TABLE_DAYS, dtype=np.float64)
    dists = []
    for series in (female, male):  # sex 0 = F, 1 = M (results.schema.SEXES)
        q = np.array(series, dtype=np.float64)
        for age in range(first, last + 1):
            # The age during each day of follow-up, starting at the birthday `age`.
            years = np.minimum(age + np.floor(day / DAYS_PER_YEAR).astype(np.int64), 110)
            qx = q[years - from_age]
            with np.errstate(divide="ignore"):
                daily = np.where(qx < 1, np.log1p(-np.minimum(qx, 1.0)) / DAYS_PER_YEAR, -np.inf)
            dists.append(_day_distribution(daily))
    return dists


def _death_sampler(protocol: CalendarProtocol) -> tuple[GroupedSampler, int, int]:
    table, pop = protocol.mortality.life_table, protocol.baseline.age_years
    sampler = _death_table(tuple(table.female), tuple(table.male), table.from_age, pop.min, pop.max)
    return sampler, pop.min, pop.max - pop.min + 1


@functools.lru_cache(maxsize=4)
def _death_table(
    female: tuple[float, ...], male: tuple[float, ...], from_age: int, first: int, last: int
) -> GroupedSampler:
    """The day-of-death sampler of a life table and an age range: the largest table a
    protocol compiles to (2 sexes x ages x 36,526 days, about 25 ms), the same for every draw
    of a sweep that does not vary them, so it is kept (read-only) and shared."""
    sampler = GroupedSampler.from_distributions(
        _death_distributions(female, male, from_age, first, last)
    )
    for array in (sampler.cumulative, sampler.values, sampler.ends):
        array.flags.writeable = False
    return sampler


def _visit_intervals(protocol: CalendarProtocol) -> list[int]:
    regimen = protocol.regimen
    if isinstance(regimen, Observation):
        return [regimen.interval_days]
    intervals = [regimen.loading_interval_days, regimen.max_interval]
    if isinstance(regimen, TreatAndExtend):
        intervals += [regimen.min_interval_days, regimen.initial_interval_days]
    return [*intervals, protocol.discontinuation.follow_up_interval_days]


def compile_calendar(protocol: CalendarProtocol) -> CompiledCalendar:
    """Turn a validated model-2.0 protocol into sampling tables."""
    pop = protocol.baseline
    disease, vision, stop = protocol.disease, protocol.vision, protocol.discontinuation
    death, first_age, ages = _death_sampler(protocol)

    years = np.floor(np.arange(TABLE_DAYS, dtype=np.float64) / DAYS_PER_YEAR).astype(np.int64)
    annual = np.array(stop.loss_to_follow_up_annual, dtype=np.float64)
    loss_daily = np.log1p(-np.minimum(annual[np.minimum(years, annual.size - 1)], 1 - 1e-15))
    # Proportional hazards by age at enrolment: one day distribution per baseline age.
    loss_by_age = [
        _day_distribution(stop.loss_factor(age) * loss_daily / DAYS_PER_YEAR)
        for age in range(pop.age_years.min, pop.age_years.max + 1)
    ]
    quiet = _annual_to_daily_log(min(disease.quiescence_annual_probability, 1 - 1e-15))
    noise_sd = vision.measurement_sd_letters
    span = math.ceil(6 * noise_sd + 0.5)
    noise = (
        discretised_normal(0.0, noise_sd, -span, span)
        if noise_sd > 0
        else (np.zeros(1, np.int64), np.ones(1))
    )
    intervals = _visit_intervals(protocol)
    return CompiledCalendar(
        protocol=protocol,
        baseline_age=truncated_normal_sampler(pop.age_years),
        baseline_vision=truncated_normal_sampler(pop.vision_letters),
        female_share=pop.female_share,
        response=_trait(vision.gain.response, 0.01),
        durability=_trait(disease.durability_days, 1.0),
        active_loss=_trait(disease.active_loss_letters_per_year, 0.1),
        atrophy=_trait(vision.atrophy_letters_per_year, 0.05),
        quiescence_day=GroupedSampler.from_distributions(
            [_day_distribution(np.full(TABLE_DAYS, quiet))]
        ),
        loss_day=GroupedSampler.from_distributions(loss_by_age),
        death_day=death,
        death_first_age=first_age,
        death_ages=ages,
        noise=GroupedSampler.from_distributions([noise]),
        recovery=np.asarray(
            np.round(np.exp(-np.arange(TABLE_DAYS + 1) / vision.recovery_days), _DIGITS),
            dtype=np.float64,
        ),
        exudation=np.asarray(
            np.round(np.exp(-np.arange(TABLE_DAYS + 1) / vision.exudation_days), _DIGITS),
            dtype=np.float64,
        ),
        activity=np.asarray(
            np.round(
                disease.activity_decay_days
                * -np.expm1(-np.arange(TABLE_DAYS + 1) / disease.activity_decay_days),
                _DIGITS,
            ),
            dtype=np.float64,
        ),
        max_interval=max(intervals),
        min_interval=min(intervals),
    )
