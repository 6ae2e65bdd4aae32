"""The protocol schema's rules, each checked by one edit of a shipped protocol's YAML text.

Every refusal must be a `ProtocolError` whose message is one line that starts with the file
and names the field, so the tests assert on the file name and the field path.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apesim.errors import ProtocolError
from apesim.protocol import STATES, load_protocol, parse_protocol
from apesim.protocol.loader import shipped_protocols
from apesim.protocol.schema import PROBABILITY_TOLERANCE

TE = "v1_aflibercept_treat_and_extend"
FIXED = "v1_aflibercept_fixed_8_weekly"
PRN = "v1_prn_monthly"


def edited(name: str, old: str, new: str) -> str:
    """A shipped protocol's text with exactly one occurrence of `old` replaced by `new`."""
    text = shipped_protocols()[name]
    assert text.count(old) == 1, f"{old!r} must occur exactly once in {name}.yaml"
    return text.replace(old, new)


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "edited_protocol.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def refusal(tmp_path: Path, text: str) -> tuple[str, Path]:
    """Load `text` from a file, expect a ProtocolError, and return its message and the file."""
    path = write(tmp_path, text)
    with pytest.raises(ProtocolError) as info:
        load_protocol(path)
    message = str(info.value)
    assert "\n" not in message, "the error must be one line"
    assert message.startswith(f"{path}: "), "the error must start with the file name"
    assert info.value.code == "PROTOCOL"
    return message, path


def assert_names_field(tmp_path: Path, text: str, field: str) -> str:
    message, path = refusal(tmp_path, text)
    assert message.startswith(f"{path}: {field}: "), message
    return message


@pytest.mark.parametrize("name", [TE, FIXED, PRN])
def test_the_unedited_shipped_text_is_valid(tmp_path: Path, name: str) -> None:
    # The control for every test below: without the one edit, the file loads.
    loaded = load_protocol(write(tmp_path, shipped_protocols()[name]))
    assert loaded.protocol.regimen.type in {"treat_and_extend", "fixed", "prn"}


# -- missing fields --------------------------------------------------------------------


def test_rejects_missing_top_level_field(tmp_path: Path) -> None:
    text = edited(TE, "name: Aflibercept treat-and-extend\n", "")
    message = assert_names_field(tmp_path, text, "name")
    assert "missing field" in message


def test_rejects_missing_nested_field(tmp_path: Path) -> None:
    text = edited(
        TE,
        "  STABLE:        {treated: {mean: 0.2, sd: 2.0},  untreated: {mean: 0.0, sd: 1.5}}\n",
        "",
    )
    message = assert_names_field(tmp_path, text, "vision.STABLE")
    assert "missing field" in message


def test_rejects_missing_leaf_field(tmp_path: Path) -> None:
    text = edited(TE, "untreated: {mean: 0.0, sd: 1.5}", "untreated: {mean: 0.0}")
    message = assert_names_field(tmp_path, text, "vision.STABLE.untreated.sd")
    assert "missing field" in message


def test_rejects_missing_transition_row(tmp_path: Path) -> None:
    text = edited(TE, "  STABLE:        {STABLE: 0.83, ACTIVE: 0.12, HIGHLY_ACTIVE: 0.05}\n", "")
    message = assert_names_field(tmp_path, text, "disease_transitions.STABLE")
    assert "missing" in message


def test_rejects_missing_regimen_type(tmp_path: Path) -> None:
    text = edited(TE, "  type: treat_and_extend\n", "")
    message = assert_names_field(tmp_path, text, "regimen.type")
    assert "missing field" in message


# -- wrong types -----------------------------------------------------------------------


def test_rejects_text_where_an_integer_is_expected(tmp_path: Path) -> None:
    text = edited(TE, "loading_doses: 3", "loading_doses: three")
    message = assert_names_field(tmp_path, text, "regimen.loading_doses")
    assert "'three'" in message


def test_rejects_boolean_where_an_integer_is_expected(tmp_path: Path) -> None:
    text = edited(TE, "loading_doses: 3", "loading_doses: true")
    message = assert_names_field(tmp_path, text, "regimen.loading_doses")
    assert "bool" in message


def test_rejects_fraction_where_an_integer_is_expected(tmp_path: Path) -> None:
    text = edited(TE, "extend_days: 14", "extend_days: 14.5")
    assert_names_field(tmp_path, text, "regimen.extend_days")


def test_rejects_number_where_text_is_expected(tmp_path: Path) -> None:
    # An unquoted 1.0 is a float, and "1.0" and "1" must not become the same version.
    text = edited(TE, 'version: "1.0"', "version: 1.0")
    message = assert_names_field(tmp_path, text, "version")
    assert "float" in message


def test_rejects_mapping_where_a_number_is_expected(tmp_path: Path) -> None:
    text = edited(TE, "annual_probability: 0.04", "annual_probability: {per_year: 0.04}")
    assert_names_field(tmp_path, text, "mortality.annual_probability")


def test_rejects_list_where_a_mapping_is_expected(tmp_path: Path) -> None:
    text = edited(TE, "  female_share: 0.6", "  female_share: [0.6]")
    assert_names_field(tmp_path, text, "baseline.female_share")


@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_rejects_non_finite_number(tmp_path: Path, value: str) -> None:
    text = edited(TE, "mean: 77", f"mean: {value}")
    assert_names_field(tmp_path, text, "baseline.age_years.mean")


def test_rejects_unknown_field(tmp_path: Path) -> None:
    text = edited(TE, "extend_days: 14", "extend_weeks: 2")
    message = assert_names_field(tmp_path, text, "regimen.extend_weeks")
    assert "unknown field" in message


def test_rejects_unknown_disease_state(tmp_path: Path) -> None:
    text = edited(TE, "{STABLE: 0.83,", "{STABLE: 0.83, DRY: 0.0,")
    message, _ = refusal(tmp_path, text)
    assert "disease_transitions.STABLE.DRY" in message


# -- transition probabilities ----------------------------------------------------------

# For each state, a probability in its transition row that can move by +-0.05.
ROW_ENTRY = {
    "NAIVE": ("{NAIVE: 0.50,", "{{NAIVE: {},", 0.50),
    "STABLE": ("{STABLE: 0.83,", "{{STABLE: {},", 0.83),
    "ACTIVE": ("ACTIVE: 0.60,", "ACTIVE: {},", 0.60),
    "HIGHLY_ACTIVE": ("HIGHLY_ACTIVE: 0.50}", "HIGHLY_ACTIVE: {}}}", 0.50),
}


def row_changed(name: str, state: str, delta: float) -> str:
    old, template, value = ROW_ENTRY[state]
    return edited(name, old, template.format(repr(value + delta)))


def test_rejects_transition_row_not_summing_to_one(tmp_path: Path) -> None:
    message = assert_names_field(
        tmp_path, row_changed(TE, "STABLE", 0.01), "disease_transitions.STABLE"
    )
    assert "sum to 1.01" in message


def test_rejects_negative_transition_probability(tmp_path: Path) -> None:
    text = edited(TE, "HIGHLY_ACTIVE: 0.05}\n  ACTIVE:", "HIGHLY_ACTIVE: -0.05}\n  ACTIVE:")
    assert_names_field(tmp_path, text, "disease_transitions.STABLE.HIGHLY_ACTIVE")


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    name=st.sampled_from([TE, FIXED, PRN]),
    state=st.sampled_from(STATES),
    delta=st.floats(min_value=2 * PROBABILITY_TOLERANCE, max_value=0.05),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_rejects_any_row_off_by_more_than_the_tolerance(
    tmp_path: Path, name: str, state: str, delta: float, sign: float
) -> None:
    assert_names_field(
        tmp_path, row_changed(name, state, sign * delta), f"disease_transitions.{state}"
    )


@settings(max_examples=40, deadline=None)
@given(
    state=st.sampled_from(STATES),
    delta=st.floats(min_value=0.0, max_value=PROBABILITY_TOLERANCE / 2),
    sign=st.sampled_from([-1.0, 1.0]),
)
def test_accepts_any_row_within_the_tolerance(state: str, delta: float, sign: float) -> None:
    loaded = parse_protocol(row_changed(TE, state, sign * delta), "within.yaml")
    assert abs(sum(loaded.protocol.disease_transitions[state].values()) - 1) <= 1e-9


def test_rejects_treatment_effect_that_leaves_no_transition(tmp_path: Path) -> None:
    text = edited(
        TE, "  STABLE:        {STABLE: 1.2}", "  STABLE: {STABLE: 0, ACTIVE: 0, HIGHLY_ACTIVE: 0}"
    )
    message = assert_names_field(tmp_path, text, "treatment_effect.STABLE")
    assert "no possible transition" in message


def test_rejects_negative_treatment_effect(tmp_path: Path) -> None:
    text = edited(TE, "{NAIVE: 1.3}", "{NAIVE: -1.3}")
    assert_names_field(tmp_path, text, "treatment_effect.NAIVE.NAIVE")


# -- intervals -------------------------------------------------------------------------

INTERVAL_FIELDS = [
    (TE, "loading_interval_days", 28),
    (TE, "initial_interval_days", 56),
    (TE, "min_interval_days", 28),
    (TE, "max_interval_days", 112),
    (TE, "extend_days", 14),
    (TE, "shorten_days", 14),
    (FIXED, "interval_days", 56),
    (FIXED, "loading_interval_days", 28),
    (PRN, "monitoring_interval_days", 28),
    (PRN, "loading_interval_days", 28),
]


@pytest.mark.parametrize(("name", "field", "value"), INTERVAL_FIELDS)
def test_rejects_negative_interval(tmp_path: Path, name: str, field: str, value: int) -> None:
    text = edited(name, f"  {field}: {value}\n", f"  {field}: -{value}\n")
    message = assert_names_field(tmp_path, text, f"regimen.{field}")
    assert "greater than or equal to 1" in message


@pytest.mark.parametrize(("name", "field", "value"), INTERVAL_FIELDS)
def test_rejects_zero_interval(tmp_path: Path, name: str, field: str, value: int) -> None:
    text = edited(name, f"  {field}: {value}\n", f"  {field}: 0\n")
    assert_names_field(tmp_path, text, f"regimen.{field}")


def test_rejects_negative_loading_doses(tmp_path: Path) -> None:
    text = edited(FIXED, "loading_doses: 3", "loading_doses: -1")
    assert_names_field(tmp_path, text, "regimen.loading_doses")


def test_rejects_min_interval_greater_than_max(tmp_path: Path) -> None:
    text = edited(TE, "min_interval_days: 28", "min_interval_days: 120")
    message = assert_names_field(tmp_path, text, "regimen")
    assert "min_interval_days (120) is greater than max_interval_days (112)" in message


def test_accepts_min_interval_equal_to_max(tmp_path: Path) -> None:
    text = edited(
        TE,
        "min_interval_days: 28\n  max_interval_days: 112",
        "min_interval_days: 56\n  max_interval_days: 56",
    )
    regimen = load_protocol(write(tmp_path, text)).protocol.regimen
    assert (regimen.min_interval_days, regimen.max_interval_days) == (56, 56)


def test_rejects_initial_interval_outside_bounds(tmp_path: Path) -> None:
    text = edited(TE, "initial_interval_days: 56", "initial_interval_days: 140")
    message = assert_names_field(tmp_path, text, "regimen")
    assert "initial_interval_days" in message


def test_rejects_baseline_min_greater_than_max(tmp_path: Path) -> None:
    text = edited(TE, "min: 50, max: 100", "min: 100, max: 50")
    message = assert_names_field(tmp_path, text, "baseline.age_years")
    assert "min (100) is greater than max (50)" in message


def test_rejects_baseline_vision_beyond_100_letters(tmp_path: Path) -> None:
    text = edited(TE, "min: 25, max: 85", "min: 25, max: 120")
    message = assert_names_field(tmp_path, text, "baseline")
    assert "vision_letters" in message


# -- regimens and probabilities --------------------------------------------------------


def test_rejects_unknown_regimen(tmp_path: Path) -> None:
    text = edited(TE, "type: treat_and_extend", "type: monthly_magic")
    message = assert_names_field(tmp_path, text, "regimen.type")
    assert "unknown regimen 'monthly_magic'" in message


def test_rejects_field_of_another_regimen(tmp_path: Path) -> None:
    # interval_days belongs to the fixed regimen, not to treat-and-extend.
    text = edited(TE, "  extend_days: 14\n", "  interval_days: 14\n")
    assert_names_field(tmp_path, text, "regimen.interval_days")


@pytest.mark.parametrize(
    ("old", "new", "field"),
    [
        ("female_share: 0.6", "female_share: 1.5", "baseline.female_share"),
        ("annual_probability: 0.04", "annual_probability: -0.04", "mortality.annual_probability"),
        (
            "{consecutive_visits: 3, probability: 0.2}",
            "{consecutive_visits: 3, probability: 2}",
            "discontinuation.stable_at_max_interval.probability",
        ),
    ],
)
def test_rejects_probability_outside_0_to_1(tmp_path: Path, old: str, new: str, field: str) -> None:
    assert_names_field(tmp_path, edited(TE, old, new), field)


def test_rejects_non_positive_standard_deviation(tmp_path: Path) -> None:
    text = edited(TE, "{mean: 5.5, sd: 3.0}", "{mean: 5.5, sd: 0}")
    assert_names_field(tmp_path, text, "vision.NAIVE.treated.sd")


def test_counts_the_further_problems_in_the_one_line(tmp_path: Path) -> None:
    text = edited(TE, "loading_doses: 3", "loading_doses: three").replace(
        "female_share: 0.6", "female_share: 1.5"
    )
    message, _ = refusal(tmp_path, text)
    assert message.endswith("(and 1 more problem)")


@pytest.mark.parametrize("field", ["name", "version"])
@pytest.mark.parametrize(
    "escaped", ["\\e[31mred", "\\x9b31m", "a\\u202eb", "two\\nlines", "a\\u2028b", "tab\\tbed"]
)
def test_name_and_version_refuse_control_characters(
    tmp_path: Path, field: str, escaped: str
) -> None:
    # A protocol's name and version are printed into terminals and pages, and stored in the
    # metadata of every simulation run with it (which a package may not hold either).
    old = {"name": "name: PRN with monthly monitoring", "version": 'version: "1.0"'}[field]
    message = assert_names_field(tmp_path, edited(PRN, old, f'{field}: "{escaped}"'), field)
    assert "control characters" in message
