"""The draws of a sweep: each draw's parameter values, its own seed derived from the master
seed, and the exact protocol it runs (the base protocol with the values put in at their
paths), every one validated before anything runs. Pure: no workspace, no files."""

from __future__ import annotations

import difflib
import hashlib
import itertools
import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import yaml

from apesim.engine.simulate import SimulationParameters
from apesim.errors import ApeError
from apesim.protocol import LoadedProtocol
from apesim.protocol.loader import protocol_from_data
from apesim.sweep.spec import Beta, Gamma, Normal, Sweep, SweepError, Uniform

Value = int | float


@dataclass(frozen=True)
class Draw:
    """One simulation of a sweep: its index, seed and the values of the varied parameters."""

    index: int
    seed: int
    values: dict[str, Value]

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "seed": self.seed, "values": self.values}


@dataclass(frozen=True)
class SweepPlan:
    """A validated sweep: its id, file, base protocol and every draw with its protocol."""

    sweep_id: str
    spec: Sweep
    text: str  # the sweep file as written
    base: LoadedProtocol
    draws: list[Draw]
    protocols: list[LoadedProtocol]  # the exact protocol of each draw, by index

    @property
    def title(self) -> str:
        return self.spec.name or self.sweep_id

    def parameters(self, draw: Draw) -> SimulationParameters:
        return SimulationParameters(
            patients=self.spec.patients,
            years=self.spec.years,
            seed=draw.seed,
            recruitment_months=self.spec.recruitment_months,
        )

    def draw_name(self, draw: Draw) -> str:
        """The simulation name of a draw: how a resumed sweep finds the draws it has."""
        return draw_name(self.sweep_id, draw.index)


def draw_name(sweep_id: str, index: int) -> str:
    return f"{sweep_id} draw {index:05d}"


def derive_seed(master: int, index: int) -> int:
    """A draw's simulation seed: SHA-256 of the master seed and the draw's index (stable
    across machines and versions), in 0 .. 2**63 - 1."""
    digest = hashlib.sha256(f"apesim-sweep-draw:{master}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def sweep_id(spec: Sweep, base: LoadedProtocol) -> str:
    """The sweep's id: a digest of what it means (its fields, the base protocol's
    fingerprint instead of the name it was found by), so the same sweep run again resumes."""
    meaning = spec.model_dump(mode="json", exclude={"protocol"})
    meaning["protocol_fingerprint"] = base.fingerprint
    text = json.dumps(meaning, sort_keys=True, separators=(",", ":"))
    return f"sweep-{hashlib.sha256(text.encode()).hexdigest()[:12]}"


def numeric_fields(data: Any, prefix: str = "") -> dict[str, Value]:
    """Every number of a protocol's data, by dotted path."""
    out: dict[str, Value] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            out.update(numeric_fields(value, f"{prefix}{key}."))
    elif isinstance(data, int | float) and not isinstance(data, bool):
        out[prefix.rstrip(".")] = data
    return out


def _sample(dist: Beta | Gamma | Normal | Uniform, rng: np.random.Generator) -> float:
    if isinstance(dist, Beta):
        return float(rng.beta(dist.alpha, dist.beta))
    if isinstance(dist, Gamma):
        return float(rng.gamma(dist.shape, dist.scale))
    if isinstance(dist, Normal):
        return float(rng.normal(dist.mean, dist.sd))
    return float(rng.uniform(dist.low, dist.high))


_MAX_WHOLE = 2**53  # beyond it a drawn float is no whole number of days or patients


def _shown(value: Value) -> str:
    """A value for a message: as written, unless it is too long for one (1e300 as an int)."""
    text = repr(value)
    return text if len(text) <= 24 else f"{value:.6g}"


def _typed(value: float, like: Value, path: str, index: int) -> Value:
    """A drawn value in the type of the field: whole numbers (days, counts) rounded; a draw
    beyond a float (a normal with a huge sd) is a `SweepError`, not an overflow."""
    if not math.isfinite(value) or (isinstance(like, int) and abs(value) >= _MAX_WHOLE):
        raise SweepError(
            f"draw {index}: {path} = {_shown(value)} is out of range; narrow its distribution"
        )
    return round(value) if isinstance(like, int) else value


def make_draws(spec: Sweep, fields: dict[str, Value]) -> list[Draw]:
    """The draws: values from each distribution (numpy's PCG64 seeded by the master seed
    and the draw's index), or every combination of the grid in the file's order."""
    if spec.grid is not None:
        paths = list(spec.grid)
        combos = itertools.product(*(spec.grid[p] for p in paths))
        return [
            Draw(
                i,
                derive_seed(spec.seed, i),
                {p: _typed(v, fields[p], p, i) for p, v in zip(paths, combo, strict=True)},
            )
            for i, combo in enumerate(combos)
        ]
    assert spec.parameters is not None and spec.draws is not None
    draws = []
    for i in range(spec.draws):
        rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([spec.seed, i])))
        values = {p: _typed(_sample(d, rng), fields[p], p, i) for p, d in spec.parameters.items()}
        draws.append(Draw(i, derive_seed(spec.seed, i), values))
    return draws


def _put(data: dict[str, Any], path: str, value: Value) -> None:
    *parents, last = path.split(".")
    for key in parents:
        data = data[key]
    data[last] = value


def draw_protocol_data(base: LoadedProtocol, draw: Draw) -> dict[str, Any]:
    """The base protocol's data (every field written out) with the draw's values."""
    data = base.protocol.model_dump(mode="json")
    for path, value in draw.values.items():
        _put(data, path, value)
    return data


def draw_protocol_text(base: LoadedProtocol, sid: str, draw: Draw) -> str:
    """The exact protocol of a draw: its data as YAML (numbers written so that they read
    back exactly), and a comment saying where it came from."""
    data = draw_protocol_data(base, draw)
    values = ", ".join(f"{p} = {v!r}" for p, v in draw.values.items())
    header = (
        f"# Draw {draw.index} of {sid}: {values}\n"
        f"# Base protocol: {base.protocol.name} {base.protocol.version}"
        f" (fingerprint {base.fingerprint[:16]})\n"
    )
    dumper = getattr(yaml, "CSafeDumper", yaml.SafeDumper)
    body = yaml.dump(data, Dumper=dumper, sort_keys=False, allow_unicode=True, width=100)
    return header + body


def plan_sweep(spec: Sweep, text: str, base: LoadedProtocol, source: str) -> SweepPlan:
    """Check the sweep against its base protocol and build every draw's protocol; the first
    problem is a `SweepError` naming the field (or the draw and its values)."""
    fields = numeric_fields(base.protocol.model_dump(mode="json"))
    for path in spec.varied:
        if path not in fields:
            close = difflib.get_close_matches(path, list(fields), n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            section = "parameters" if spec.parameters is not None else "grid"
            raise SweepError(
                f"{source}: {section}[{path}]: no such number in protocol"
                f" {base.protocol.name!r}{hint}"
            )
    try:  # the run's own checks (a horizon of at least a day, ...), before anything runs
        SimulationParameters(spec.patients, spec.years, spec.seed, spec.recruitment_months)
    except ApeError as exc:
        raise SweepError(f"{source}: {exc}") from None
    sid = sweep_id(spec, base)
    try:
        draws = make_draws(spec, fields)
    except SweepError as exc:
        raise SweepError(f"{source}: {exc}") from None
    protocols = []
    for draw in draws:
        try:
            protocols.append(
                protocol_from_data(
                    draw_protocol_data(base, draw),
                    draw_protocol_text(base, sid, draw),
                    f"{sid} draw {draw.index}",
                )
            )
        except ApeError as exc:
            values = ", ".join(f"{p} = {_shown(v)}" for p, v in draw.values.items())
            raise SweepError(
                f"{source}: draw {draw.index} ({values}) gives an invalid protocol: {exc}"
            ) from None
    return SweepPlan(sid, spec, text, base, draws, protocols)
