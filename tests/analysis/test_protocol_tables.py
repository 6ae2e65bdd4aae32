"""A protocol as readable tables."""

from __future__ import annotations

import numpy as np
import pytest

from apesim import analysis, api


@pytest.mark.parametrize(
    "key", ["v1_aflibercept_treat_and_extend", "v1_aflibercept_fixed_8_weekly", "v1_prn_monthly"]
)
def test_protocol_tables(key: str) -> None:
    protocol = api.get_protocol(key).protocol
    tables = analysis.protocol_tables(protocol)
    assert list(tables) == [
        "Regimen",
        "Disease transitions per visit (probability)",
        "Treatment effect (multiplier on a transition after an injection)",
        "Vision change per visit (ETDRS letters)",
        "Baseline population",
        "Discontinuation, mortality and population",
    ]
    transitions = tables["Disease transitions per visit (probability)"]
    np.testing.assert_allclose(transitions.sum(axis=1), 1.0)
    regimen = tables["Regimen"]["value"]
    assert regimen["Loading doses"] == str(protocol.regimen.loading_doses)
    assert tables["Vision change per visit (ETDRS letters)"].shape == (4, 4)
