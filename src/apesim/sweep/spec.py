"""The sweep file (YAML): its schema, and one-line errors naming the file and the field."""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from apesim.errors import ApeError
from apesim.limits import MAX_PATIENTS, MAX_YEARS
from apesim.safeload import load_yaml

MAX_DRAWS = 10_000  # every draw's protocol is built and checked before anything runs
MAX_SWEEP_BYTES = 1_000_000
DISTRIBUTIONS = ("beta", "gamma", "normal", "uniform")


class SweepError(ApeError, ValueError):
    """A sweep file is unreadable, invalid, or varies what its protocol does not have."""

    code = "sweep.invalid"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class Beta(_Strict):
    """Beta(alpha, beta): for probabilities and shares."""

    distribution: Literal["beta"]
    alpha: float = Field(gt=0)
    beta: float = Field(gt=0)


class Gamma(_Strict):
    """Gamma(shape, scale): for positive quantities (mean shape x scale)."""

    distribution: Literal["gamma"]
    shape: float = Field(gt=0)
    scale: float = Field(gt=0)


class Normal(_Strict):
    distribution: Literal["normal"]
    mean: float
    sd: float = Field(gt=0)


class Uniform(_Strict):
    distribution: Literal["uniform"]
    low: float
    high: float

    @model_validator(mode="after")
    def _ordered(self) -> Uniform:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low:g}) must be less than high ({self.high:g})")
        if not math.isfinite(self.high - self.low):
            raise ValueError(f"high - low ({self.high:g} - {self.low:g}) is beyond a float")
        return self


Distribution = Annotated[Beta | Gamma | Normal | Uniform, Field(discriminator="distribution")]
ParameterPath = Annotated[
    str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9_]+(\.[A-Za-z0-9_]+)*$")
]


class Sweep(_Strict):
    """A sweep: a base protocol, what to vary (distributions over `draws` draws, or a grid),
    and the population, duration and master seed every draw shares."""

    name: Annotated[str, Field(max_length=80)] = ""
    protocol: Annotated[str, Field(min_length=1, max_length=1000)]
    patients: Annotated[int, Field(ge=1, le=MAX_PATIENTS)]
    years: Annotated[float, Field(gt=0, le=MAX_YEARS)]
    seed: Annotated[int, Field(ge=0, lt=2**63)]
    recruitment_months: Annotated[float, Field(ge=0)] = 0.0
    draws: Annotated[int, Field(ge=1, le=MAX_DRAWS)] | None = None
    parameters: dict[ParameterPath, Distribution] | None = None
    grid: (
        dict[ParameterPath, Annotated[list[float], Field(min_length=1, max_length=1000)]] | None
    ) = None

    @model_validator(mode="after")
    def _one_design(self) -> Sweep:
        if (self.parameters is None) == (self.grid is None):
            raise ValueError("give either parameters (with draws) or grid, not both")
        if self.parameters is not None:
            if not self.parameters:
                raise ValueError("parameters: name at least one parameter to vary")
            if self.draws is None:
                raise ValueError("draws: missing field (how many draws of the parameters)")
        if self.grid is not None:
            if not self.grid:
                raise ValueError("grid: name at least one parameter and its values")
            if self.draws is not None:
                raise ValueError("draws: not used with a grid (every combination is a draw)")
            if math.prod(len(v) for v in self.grid.values()) > MAX_DRAWS:
                raise ValueError(f"grid: more than {MAX_DRAWS:,} combinations")
        if self.recruitment_months > 12 * self.years:
            raise ValueError("recruitment_months: must lie between 0 and the duration")
        return self

    @property
    def varied(self) -> list[str]:
        """The parameters' paths, in the file's order."""
        return list(self.parameters or self.grid or {})

    @property
    def size(self) -> int:
        """How many draws (simulations) the sweep has."""
        if self.grid is not None:
            return math.prod(len(v) for v in self.grid.values())
        assert self.draws is not None
        return self.draws


def _field(loc: tuple[Any, ...]) -> str:
    """`parameters[mortality.annual_probability].alpha`: a parameter's path in brackets."""
    out = ""
    for i, part in enumerate(loc):
        tag = i == 2 and loc[0] == "parameters" and part in DISTRIBUTIONS
        if tag or isinstance(part, int) or part == "[key]":
            continue
        if i == 1 and loc[0] in ("parameters", "grid"):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out


def _describe(error: dict[str, Any]) -> str:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    field = _field(loc)
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        return (
            f"{field}.distribution: unknown distribution {tag!r}"
            f" (expected one of {', '.join(DISTRIBUTIONS)})"
        )
    if kind == "union_tag_not_found":
        return f"{field}.distribution: missing field (one of {', '.join(DISTRIBUTIONS)})"
    if kind == "missing":
        return f"{field}: missing field"
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    msg = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if kind == "string_pattern_mismatch":
        msg = "not a parameter path (names joined by dots, e.g. mortality.annual_probability)"
    if not field:
        return msg
    return f"{field}: {msg[0].lower()}{msg[1:]}"


def parse_sweep(text: str, source: str = "<sweep>") -> Sweep:
    """Validate sweep YAML text; raise `SweepError` naming `source` and the first field
    at fault (and how many more problems there are)."""
    if len(text.encode("utf-8")) > MAX_SWEEP_BYTES:
        raise SweepError(f"{source}: sweep file is larger than {MAX_SWEEP_BYTES} bytes")
    try:
        data = load_yaml(text)
    except ValueError as exc:
        raise SweepError(f"{source}: {exc}") from None
    if not isinstance(data, dict):
        raise SweepError(f"{source}: a sweep file must be a YAML mapping of fields")
    try:
        return Sweep.model_validate(data)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_describe(dict(e)) for e in exc.errors()))
        n = len(problems) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""
        raise SweepError(f"{source}: {problems[0]}{more}") from None
