"""The sampling tables: inverse-CDF sampling by group with `GroupedSampler`."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pytest

from apesim.engine.tables import GroupedSampler, compile_protocol
from apesim.protocol import resolve_protocol
from apesim.protocol.loader import shipped_protocols

SHIPPED = sorted(k for k in shipped_protocols() if k.startswith("v1_"))  # model 1.0
# The largest uniform the streams give ((2**53 - 1) x 2**-53): g + U_MAX rounds up to
# g + 1 for every group g >= 1.
U_MAX = 1 - 2**-53
# Safely below 1 in the key g + u of every group here, and above every cumulative
# probability below 1 (they are rounded to 12 decimals): the value that u -> 1 tends to.
U_NEAR_1 = 1 - 2**-40


def groups(sampler: GroupedSampler) -> npt.NDArray[np.int64]:
    return np.arange(int(sampler.cumulative[-1]), dtype=np.int64)  # group G - 1 ends at G


@pytest.mark.parametrize("name", SHIPPED)
def test_the_largest_uniform_stays_in_its_own_group(name: str) -> None:
    assert U_MAX == (2**53 - 1) * 2.0**-53 and 1.0 + U_MAX == 2.0
    cp = compile_protocol(resolve_protocol(name).protocol)
    for sampler in (cp.transitions, cp.vision_change, cp.baseline_age, cp.baseline_vision):
        g = groups(sampler)
        near = sampler.sample(g, np.full(g.size, U_NEAR_1))
        assert sampler.sample(g, np.full(g.size, U_MAX)).tolist() == near.tolist()


def test_the_largest_uniform_never_gives_a_value_without_probability() -> None:
    sampler = GroupedSampler.from_distributions(
        [
            (np.array([0, 1, 2]), np.array([0.5, 0.5, 0.0])),
            (np.array([10, 11, 12]), np.array([0.25, 0.75, 0.0])),
            (np.array([20, 21]), np.array([0.5, 0.5])),
        ]
    )
    g = np.arange(3)
    assert sampler.sample(g, np.full(3, U_MAX)).tolist() == [1, 11, 21]
    assert sampler.sample(g, np.full(3, U_NEAR_1)).tolist() == [1, 11, 21]
    assert sampler.sample(g, np.zeros(3)).tolist() == [0, 10, 20]


def test_protocols_with_one_life_table_share_one_read_only_death_table() -> None:
    """The day-of-death table (the largest a protocol compiles to) is built once per life
    table and age range: every draw of a sweep that varies other fields reuses it."""
    from apesim.engine.calendar_tables import death_distributions

    base = resolve_protocol("aflibercept_treat_and_extend").protocol
    other = resolve_protocol("prn_monthly").protocol
    first, second = compile_protocol(base), compile_protocol(other)
    assert first.death_day is second.death_day
    assert not first.death_day.cumulative.flags.writeable
    fresh = GroupedSampler.from_distributions(death_distributions(base))
    assert np.array_equal(fresh.cumulative, first.death_day.cumulative)
    table = base.mortality.life_table
    older = base.model_copy(
        update={
            "mortality": base.mortality.model_copy(
                update={"life_table": table.model_copy(update={"male": [0.5] * len(table.male)})}
            )
        }
    )
    assert compile_protocol(older).death_day is not first.death_day
