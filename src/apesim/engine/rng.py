"""Counter-based random streams: one stream per (seed, patient), indexed by (visit, slot).

Each uniform is SplitMix64 of a key derived from the seed and the patient index plus a
counter, so a patient's draws never depend on which other patients share its chunk. Only
integer arithmetic is used, so the numbers are the same on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_MASK64 = (1 << 64) - 1
_TO_UNIT = 2.0**-53

SLOTS_PER_VISIT = 8
# Slots used at each visit.
TRANSITION, VISION, DEATH, DEATH_DAY, STOP_STABLE, STOP_VISION, STOP_PREMATURE = range(7)
# Baseline draws live at visit index -1.
BASE_AGE, BASE_VISION, BASE_SEX, BASE_ENROL = range(4)

U64Array = npt.NDArray[np.uint64]


def _mix(z: U64Array) -> U64Array:
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def patient_keys(seed: int, patient_index: npt.NDArray[np.int64]) -> U64Array:
    """The stream key of each patient, from the run's seed and the patient's index."""
    seed_key = _mix(np.array([seed & _MASK64], dtype=np.uint64))[0]
    return _mix(_mix(patient_index.astype(np.uint64) * _GOLDEN + _GOLDEN) ^ seed_key)


def uniforms(keys: U64Array, visit: int, nslots: int = SLOTS_PER_VISIT) -> npt.NDArray[np.float64]:
    """Uniforms in [0, 1), shape (len(keys), nslots), for the given visit index (-1: baseline)."""
    base = ((visit + 1) * SLOTS_PER_VISIT) & _MASK64
    counters = (np.arange(base, base + nslots, dtype=np.uint64) + np.uint64(1)) * _GOLDEN
    bits = _mix(keys[:, None] + counters[None, :])
    return (bits >> np.uint64(11)).astype(np.float64) * _TO_UNIT


# Model 2.0 streams: the same patient key, salted per purpose, indexed by an explicit
# counter (a calendar day, a visit number, or a trait's slot), so a draw addressed by the
# day is the same whichever visits a protocol makes.
TRAITS, VISITS, DAYS = (np.uint64(0x5EED0001), np.uint64(0x5EED0002), np.uint64(0x5EED0003))
(
    TRAIT_RESPONSE,
    TRAIT_DURABILITY,
    TRAIT_ACTIVE_LOSS,
    TRAIT_ATROPHY,
    TRAIT_QUIESCENCE,
    TRAIT_DEATH,
    TRAIT_LOSS_TO_FOLLOW_UP,
    TRAIT_NON_RESPONSE,
) = range(8)
TRAIT_SLOTS = 8
VISIT_STOP_STABLE, VISIT_STOP_VISION = range(2)


def salted(keys: U64Array, salt: np.uint64) -> U64Array:
    """Keys of a separate stream per purpose (traits, visits, days) for the same patients."""
    return _mix(keys ^ _mix(np.array([salt], dtype=np.uint64))[0])


def uniforms_at(
    keys: U64Array, counter: npt.NDArray[np.int64] | int, nslots: int = 1
) -> npt.NDArray[np.float64]:
    """Uniforms in [0, 1), shape (len(keys), nslots): slot j of each key's `counter`."""
    c = np.asarray(counter, dtype=np.int64).astype(np.uint64) * np.uint64(SLOTS_PER_VISIT)
    slots = np.arange(1, nslots + 1, dtype=np.uint64)
    bits = _mix(keys[:, None] + ((c[..., None] if c.ndim else c) + slots) * _GOLDEN)
    return (bits >> np.uint64(11)).astype(np.float64) * _TO_UNIT


class _Sampler(Protocol):
    def sample(
        self, groups: npt.NDArray[np.int64], u: npt.NDArray[np.float64]
    ) -> npt.NDArray[np.int64]: ...


class _Population(Protocol):
    """What a compiled protocol of either model says about its baseline population."""

    @property
    def baseline_age(self) -> _Sampler: ...
    @property
    def baseline_vision(self) -> _Sampler: ...
    @property
    def female_share(self) -> float: ...


@dataclass(frozen=True)
class Patients:
    """Patients start..stop-1 of a run: their stream keys and baseline draws (visit -1)."""

    index: npt.NDArray[np.int64]
    keys: U64Array
    age: npt.NDArray[np.int16]
    vision: npt.NDArray[np.int16]
    sex: npt.NDArray[np.int8]  # 0 = F, 1 = M
    enrol: npt.NDArray[np.int32]


def patients(cp: _Population, seed: int, recruitment_days: int, start: int, stop: int) -> Patients:
    """The per-patient streams and the population of patients start..stop-1, the same for
    both models: the same seed gives the same patients whatever the protocol's model."""
    index = np.arange(start, stop, dtype=np.int64)
    keys = patient_keys(seed, index)
    base = uniforms(keys, -1, 4)
    zeros = np.zeros(index.size, np.int64)
    return Patients(
        index=index,
        keys=keys,
        age=cp.baseline_age.sample(zeros, base[:, BASE_AGE]).astype(np.int16),
        vision=cp.baseline_vision.sample(zeros, base[:, BASE_VISION]).astype(np.int16),
        sex=(base[:, BASE_SEX] >= cp.female_share).astype(np.int8),
        enrol=np.floor(base[:, BASE_ENROL] * recruitment_days).astype(np.int32),
    )
