"""The protocol schema of model 2.0 (`ape-calendar`): disease and vision that run on the
calendar between visits. Every number's source is cited in the shipped protocols and in
docs/model.md; this module says only what is valid.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from apesim.protocol.schema import (
    PRN,
    BaselinePopulation,
    Days,
    Fixed,
    OneLine,
    PoorVision,
    Probability,
    Protocol,
    StableAtMaxInterval,
    TreatAndExtend,
    _Strict,
)

CALENDAR_MODEL = "ape-calendar"
CALENDAR_VERSION = "2.0"
# The life table must reach far enough that nobody outlives it within the longest run.
LIFE_TABLE_LAST_AGE = 110


class ModelRef(_Strict):
    """Which model a protocol is written for (a protocol without it is model 1.0)."""

    name: Literal["ape-calendar"]
    version: Literal["2.0"]


class Observation(_Strict):
    """No treatment: the patient is seen every `interval_days` (natural history)."""

    type: Literal["observation"]
    interval_days: Days = 28

    @property
    def loading_doses(self) -> int:
        return 0

    @property
    def loading_interval_days(self) -> int:
        return self.interval_days

    @property
    def max_interval(self) -> int:
        return self.interval_days


CalendarRegimen = Annotated[TreatAndExtend | Fixed | PRN | Observation, Field(discriminator="type")]
CALENDAR_REGIMEN_TYPES = ("treat_and_extend", "fixed", "prn", "observation")


class LogNormal(_Strict):
    """A patient-level trait: log-normal around `median`, truncated to min..max and drawn on
    a grid of `step` (so sampling is a table look-up)."""

    median: float = Field(gt=0)
    sd_log: float = Field(ge=0, le=3)
    min: float = Field(ge=0)
    max: float = Field(gt=0)

    @model_validator(mode="after")
    def _bounds(self) -> LogNormal:
        if not self.min <= self.median <= self.max:
            raise ValueError(f"median ({self.median}) must lie between min and max")
        return self


class Disease(_Strict):
    """Disease activity in calendar time: active unless suppressed by a recent injection or
    burnt out (quiescent for good)."""

    durability_days: LogNormal  # days one injection keeps the lesion dry
    non_responder_share: Probability  # patients whose lesion an injection does not dry
    quiescence_annual_probability: Probability  # the lesion burns out for good
    active_loss_letters_per_year: LogNormal  # vision lost while active, at enrolment
    # The lesion's aggressiveness wanes with time since enrolment (scarring): the loss rate
    # while active is multiplied by exp(-t / activity_decay_days).
    activity_decay_days: Annotated[int, Field(ge=1, le=100_000)]


class VisionGain(_Strict):
    """The gain a dry macula can recover to, by baseline vision (less room above, less gain)."""

    at_reference: float = Field(ge=0, le=40)  # mean gain at `reference_letters`
    reference_letters: Annotated[int, Field(ge=0, le=100)] = 55
    per_letter_below: float = Field(ge=0, le=2)  # extra gain per letter below the reference
    response: LogNormal  # patient-level multiplier on the gain


class CalendarVision(_Strict):
    gain: VisionGain
    ceiling_letters: Annotated[int, Field(ge=1, le=100)]
    recovery_days: Annotated[int, Field(ge=1, le=365)]  # time constant of recovery when dry
    # When the lesion becomes active again in a treated eye, fluid drags V towards this many
    # letters below P, with this time constant (reversible when dry again).
    exudation_letters: float = Field(ge=0, le=50)
    exudation_days: Annotated[int, Field(ge=1, le=365)]
    irreversible_fraction: Probability  # share of the loss while active that stays
    atrophy_letters_per_year: LogNormal  # slow irreversible loss, active or not
    measurement_sd_letters: float = Field(ge=0, le=15)  # test-retest noise of one reading


class AgeFactor(_Strict):
    """A hazard ratio for patients enrolled at `from_age` or older (until the next band)."""

    from_age: Annotated[int, Field(ge=0, le=120)]
    factor: float = Field(ge=0, le=100)


class CalendarDiscontinuation(_Strict):
    stable_at_max_interval: StableAtMaxInterval | None = None
    poor_vision: PoorVision | None = None
    # Loss to follow-up by year since enrolment (the last value applies after), for the
    # youngest patients; older ones by the hazard ratio of their age band at enrolment.
    loss_to_follow_up_annual: list[Probability] = Field(min_length=1, max_length=20)
    loss_to_follow_up_age_factors: list[AgeFactor] = Field(default=[], max_length=20)
    follow_up_interval_days: Annotated[int, Field(ge=7, le=3650)] = 84

    @model_validator(mode="after")
    def _bands(self) -> CalendarDiscontinuation:
        ages = [band.from_age for band in self.loss_to_follow_up_age_factors]
        if ages != sorted(set(ages)):
            raise ValueError("loss_to_follow_up_age_factors: from_age must increase")
        return self

    def loss_factor(self, age: int) -> float:
        """The hazard ratio of loss to follow-up for a patient enrolled at `age`."""
        factor = 1.0
        for band in self.loss_to_follow_up_age_factors:
            if age >= band.from_age:
                factor = band.factor
        return factor


class LifeTable(_Strict):
    """Annual probability of death q(x) by age x from `from_age` to 110, per sex."""

    source: Annotated[str, Field(min_length=1, max_length=500), OneLine]
    from_age: Annotated[int, Field(ge=0, le=100)]
    female: list[Probability] = Field(min_length=1, max_length=121)
    male: list[Probability] = Field(min_length=1, max_length=121)

    @model_validator(mode="after")
    def _length(self) -> LifeTable:
        want = LIFE_TABLE_LAST_AGE - self.from_age + 1
        for sex in ("female", "male"):
            if len(getattr(self, sex)) != want:
                raise ValueError(
                    f"{sex}: {len(getattr(self, sex))} values, expected {want} "
                    f"(ages {self.from_age} to {LIFE_TABLE_LAST_AGE})"
                )
        return self


class CalendarMortality(_Strict):
    life_table: LifeTable


class CalendarProtocol(_Strict):
    """A protocol of model 2.0: regimen, calendar-time disease and vision, population,
    discontinuation and follow-up, mortality from a life table."""

    model: ModelRef
    name: Annotated[str, Field(min_length=1, max_length=200), OneLine]
    version: Annotated[str, Field(min_length=1, max_length=50), OneLine]
    description: Annotated[str, Field(max_length=5000)] = ""
    regimen: CalendarRegimen
    disease: Disease
    vision: CalendarVision
    baseline: BaselinePopulation
    discontinuation: CalendarDiscontinuation
    mortality: CalendarMortality

    @model_validator(mode="after")
    def _ages(self) -> CalendarProtocol:
        table = self.mortality.life_table
        if self.baseline.age_years.min < table.from_age:
            raise ValueError(
                f"baseline.age_years.min ({self.baseline.age_years.min}) is below the life "
                f"table's first age ({table.from_age})"
            )
        return self


AnyProtocol = Protocol | CalendarProtocol  # a protocol of either model
