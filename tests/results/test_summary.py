"""The summary statistics for people: one table of labels, one formatter (CLI, app, README)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apesim.results.summary import (
    REASON_LABELS,
    STATISTICS,
    SUMMARY_FIELDS,
    Summary,
    format_value,
    summary_rows,
)
from apesim.workspace.results import load_simulation
from apesim.workspace.store import SimulationRecord, Workspace


@pytest.fixture
def summary(workspace: Workspace, small_sim: SimulationRecord) -> Summary:
    return load_simulation(workspace, small_sim.sim_id).summary


def by_path(summary: Summary, key: str) -> Any:
    value: Any = summary
    for part in key.split("."):
        value = value[part]
    return value


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (1234567, "int", "1,234,567"),
        (0.228, "pct", "22.8 %"),
        (0.24348, "pct", "24.3 %"),
        (5.92083, "+1f", "+5.9"),
        (-2.5, "+1f", "-2.5"),
        (-0.25, "+1f", "-0.2"),
        (7.886, "2f", "7.89"),
        (1234.56, "1f", "1,234.6"),
        (None, "2f", "–"),
        (float("nan"), "1f", "–"),
    ],
)
def test_format_value(value: float | None, fmt: Any, shown: str) -> None:
    assert format_value(value, fmt) == shown


def test_a_missing_value_says_what_the_caller_asks() -> None:
    assert format_value(None, "+1f", missing="n/a") == "n/a"
    assert format_value(float("nan"), "pct", missing="n/a") == "n/a"


@given(st.floats(min_value=-999.9, max_value=999.9))
def test_the_readme_figures_keep_their_bytes(value: float) -> None:
    # README.txt showed f"{v:+.1f}" and f"{v:.1f}" before it used the one formatter; its
    # figures (vision changes in letters, injections a year) stay far below 1,000.
    assert format_value(value, "+1f", missing="n/a") == f"{value:+.1f}"
    assert format_value(value, "1f", missing="n/a") == f"{value:.1f}"


def test_each_statistic_reads_the_value_at_its_key(summary: Summary) -> None:
    assert len(STATISTICS) == len(SUMMARY_FIELDS)  # keys are unique
    for statistic in SUMMARY_FIELDS:
        assert statistic.get(summary) == by_path(summary, statistic.key), statistic.key


def test_summary_rows_show_units_and_reasons(summary: Summary) -> None:
    rows = summary_rows(summary)
    labels = [label for label, _ in rows]
    assert labels[: len(SUMMARY_FIELDS)] == [s.label for s in SUMMARY_FIELDS]
    shown = dict(rows)
    change = summary["vision_change"]["end"]["mean"]
    assert change is not None
    assert shown["Vision change at end"] == f"{change:+.1f} letters"
    baseline = summary["vision"]["baseline"]["mean"]
    assert baseline is not None
    assert shown["Baseline vision, mean"] == f"{baseline:.1f} letters"
    assert shown["Patients"] == f"{summary['patients']:,}"
    reasons = summary["discontinuation"]["by_reason"]
    assert len(rows) == len(SUMMARY_FIELDS) + len(reasons)
    for reason, count in reasons.items():
        assert shown[f"Discontinued: {REASON_LABELS[reason]}"] == f"{count:,}"


def test_a_missing_statistic_has_no_unit(summary: Summary) -> None:
    empty: Summary = {
        **summary,
        "mean_treatment_interval_days": None,
        "vision_change": {
            **summary["vision_change"],
            "end": {"n": 0, "mean": None, "gain_15_share": None, "loss_15_share": None},
        },
    }
    shown = dict(summary_rows(empty))
    assert shown["Mean interval between injections"] == "–"
    assert shown["Vision change at end"] == "–"
    assert shown["Gaining ≥15 letters at end"] == "–"
