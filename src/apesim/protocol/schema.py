"""The protocol schema (pydantic): what a protocol YAML file must say, and its rules."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from apesim.text import escape_char, first_control

State = Literal["NAIVE", "STABLE", "ACTIVE", "HIGHLY_ACTIVE"]
STATES: tuple[State, ...] = ("NAIVE", "STABLE", "ACTIVE", "HIGHLY_ACTIVE")
PROBABILITY_TOLERANCE = 1e-9

Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Days = Annotated[int, Field(ge=1, le=3650)]


def _one_line(value: str) -> str:
    """A name or version: no control, format or separator character (a newline, ESC, C1 or
    bidirectional override would be printed into terminals and pages)."""
    found = first_control(value)
    if found is not None:
        raise ValueError(
            f"must not contain control characters (found {escape_char(found)}); "
            "use letters, digits, spaces and punctuation"
        )
    return value


OneLine = AfterValidator(_one_line)


class _Strict(BaseModel):
    # NaN and infinity are refused: they would poison the sampling tables and cannot be
    # written as canonical JSON (the fingerprint).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class _LoadingMixin(_Strict):
    loading_doses: Annotated[int, Field(ge=0, le=12)] = 3
    loading_interval_days: Days = 28


class TreatAndExtend(_LoadingMixin):
    """Inject at every visit; extend the interval when stable, shorten when active."""

    type: Literal["treat_and_extend"]
    initial_interval_days: Days = 56
    min_interval_days: Days = 28
    max_interval_days: Days = 112
    extend_days: Days = 14
    shorten_days: Days = 14

    @model_validator(mode="after")
    def _bounds(self) -> TreatAndExtend:
        if self.min_interval_days > self.max_interval_days:
            raise ValueError(
                f"min_interval_days ({self.min_interval_days}) is greater than "
                f"max_interval_days ({self.max_interval_days})"
            )
        if not self.min_interval_days <= self.initial_interval_days <= self.max_interval_days:
            raise ValueError("initial_interval_days must lie between min and max interval")
        return self

    @property
    def max_interval(self) -> int:
        return self.max_interval_days


class Fixed(_LoadingMixin):
    """Inject at every visit at a fixed interval after the loading doses."""

    type: Literal["fixed"]
    interval_days: Days = 56

    @property
    def max_interval(self) -> int:
        return self.interval_days


class PRN(_LoadingMixin):
    """Monitor at a fixed interval; inject only when the disease is active (pro re nata)."""

    type: Literal["prn"]
    monitoring_interval_days: Days = 28

    @property
    def max_interval(self) -> int:
        return self.monitoring_interval_days


Regimen = Annotated[TreatAndExtend | Fixed | PRN, Field(discriminator="type")]
REGIMEN_TYPES = ("treat_and_extend", "fixed", "prn")


class ChangeDistribution(_Strict):
    """Vision change per visit in ETDRS letters: a normal distribution, drawn in whole letters."""

    mean: float = Field(ge=-30, le=30)
    sd: float = Field(gt=0, le=30)


class VisionByTreatment(_Strict):
    treated: ChangeDistribution
    untreated: ChangeDistribution


class VisionModel(_Strict):
    NAIVE: VisionByTreatment
    STABLE: VisionByTreatment
    ACTIVE: VisionByTreatment
    HIGHLY_ACTIVE: VisionByTreatment


class TruncatedNormal(_Strict):
    mean: float
    sd: float = Field(gt=0)
    min: int
    max: int

    @model_validator(mode="after")
    def _bounds(self) -> TruncatedNormal:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) is greater than max ({self.max})")
        return self


class BaselinePopulation(_Strict):
    age_years: TruncatedNormal
    vision_letters: TruncatedNormal
    female_share: Probability = 0.6

    @model_validator(mode="after")
    def _vision_range(self) -> BaselinePopulation:
        if self.vision_letters.min < 0 or self.vision_letters.max > 100:
            raise ValueError("vision_letters must lie within 0..100 ETDRS letters")
        if self.age_years.min < 0 or self.age_years.max > 120:
            raise ValueError("age_years must lie within 0..120")
        return self


class StableAtMaxInterval(_Strict):
    """Stop treatment after this many consecutive stable visits at the longest interval."""

    consecutive_visits: Annotated[int, Field(ge=1, le=100)] = 3
    probability: Probability = 0.2


class PoorVision(_Strict):
    """Stop treatment when vision falls below a threshold (futility)."""

    threshold_letters: Annotated[int, Field(ge=0, le=100)] = 35
    probability: Probability = 0.5


class Discontinuation(_Strict):
    stable_at_max_interval: StableAtMaxInterval | None = None
    poor_vision: PoorVision | None = None
    premature_annual_probability: Probability = 0.0


class Mortality(_Strict):
    annual_probability: Probability = 0.04


TransitionRow = dict[State, Probability]


class Protocol(_Strict):
    """A complete protocol: regimen, disease model, vision model, population and stopping."""

    name: Annotated[str, Field(min_length=1, max_length=200), OneLine]
    version: Annotated[str, Field(min_length=1, max_length=50), OneLine]
    description: Annotated[str, Field(max_length=5000)] = ""
    regimen: Regimen
    disease_transitions: dict[State, TransitionRow]
    treatment_effect: dict[State, dict[State, Annotated[float, Field(ge=0, le=100)]]] = {}
    vision: VisionModel
    baseline: BaselinePopulation
    discontinuation: Discontinuation = Discontinuation()
    mortality: Mortality = Mortality()

    @model_validator(mode="after")
    def _transitions(self) -> Protocol:
        for state in STATES:
            if state not in self.disease_transitions:
                raise ValueError(f"disease_transitions.{state}: missing row for state {state}")
            row = self.disease_transitions[state]
            total = sum(row.values())
            if abs(total - 1.0) > PROBABILITY_TOLERANCE:
                raise ValueError(
                    f"disease_transitions.{state}: probabilities sum to {total:.12g}, "
                    f"expected 1 (within {PROBABILITY_TOLERANCE:g})"
                )
        for state, row in self.treatment_effect.items():
            base = self.disease_transitions[state]
            if (
                sum(base.get(to, 0.0) * m for to, m in row.items())
                + sum(p for to, p in base.items() if to not in row)
                <= 0
            ):
                raise ValueError(f"treatment_effect.{state}: leaves no possible transition")
        return self


MARKOV_MODEL = "ape-markov"
MARKOV_VERSION = "1.0"


def model_of(protocol: object) -> tuple[str, str]:
    """The (name, version) of the model a protocol is written for."""
    model = getattr(protocol, "model", None)
    if model is None:
        return MARKOV_MODEL, MARKOV_VERSION
    return model.name, model.version
