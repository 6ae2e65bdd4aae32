"""The treatment rules both models share: by regimen, how long until a patient's next visit
and whether a visit injects (docs/model.md, "Regimens"). Pure functions of the visit number
and each patient's disease state, over numpy arrays of patients."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from apesim.protocol.calendar import CalendarRegimen, Observation
from apesim.protocol.schema import PRN, Fixed, TreatAndExtend

# The disease states as codes, in the order of protocol.schema.STATES.
NAIVE, STABLE, ACTIVE, HIGHLY_ACTIVE = range(4)

States = npt.NDArray[np.int8]
Intervals = npt.NDArray[np.int16]


def next_interval(
    regimen: CalendarRegimen,
    k: int,
    state: States,
    previous: Intervals,
    *,
    naive_keeps_interval: bool,
) -> Intervals:
    """Days from visit `k` to the next, per patient: loading visits at their interval;
    treat-and-extend extends a stable patient, shortens an active one and drops a highly
    active one to the shortest interval (model 1.0 keeps a naive patient's interval:
    `naive_keeps_interval`); fixed and as-needed regimens and observation keep theirs."""
    if isinstance(regimen, Observation):
        return np.full(state.shape, regimen.interval_days, np.int16)
    if k < regimen.loading_doses - 1:
        return np.full(state.shape, regimen.loading_interval_days, np.int16)
    if isinstance(regimen, TreatAndExtend):
        if k == max(regimen.loading_doses, 1) - 1:  # the last loading visit, or visit 0
            return np.full(state.shape, regimen.initial_interval_days, np.int16)
        extended = np.minimum(previous + regimen.extend_days, regimen.max_interval_days)
        shortened = np.maximum(previous - regimen.shorten_days, regimen.min_interval_days)
        out = np.where(state == STABLE, extended, shortened)
        if naive_keeps_interval:  # still responding: keep the interval
            out = np.where(state == NAIVE, previous, out)
        out = np.where(state == HIGHLY_ACTIVE, regimen.min_interval_days, out)
        return out.astype(np.int16)
    if isinstance(regimen, Fixed):
        return np.full(state.shape, regimen.interval_days, np.int16)
    assert isinstance(regimen, PRN)
    return np.full(state.shape, regimen.monitoring_interval_days, np.int16)


def wants_injection(regimen: CalendarRegimen, k: int, state: States) -> npt.NDArray[np.bool_]:
    """Whether visit `k` injects, per patient: never under observation; at every loading
    visit; as needed (PRN), unless the disease is stable; else at every visit."""
    if isinstance(regimen, Observation):
        return np.zeros(state.shape, bool)
    if k < regimen.loading_doses or not isinstance(regimen, PRN):
        return np.ones(state.shape, bool)
    return state != STABLE


__all__ = [
    "ACTIVE",
    "HIGHLY_ACTIVE",
    "NAIVE",
    "STABLE",
    "next_interval",
    "wants_injection",
]
