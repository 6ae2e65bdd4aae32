"""The analyses as people read them: summary and comparison tables, vision change
categories, outcomes in words, the audit trail."""

from __future__ import annotations

from dataclasses import replace

import pytest

from apesim import analysis, api, audit
from apesim.results.summary import SUMMARY_FIELDS


def test_vision_change_categories_come_from_the_summary(sim: api.SimulationResults) -> None:
    cats = analysis.vision_change_categories(sim.summary)
    end = cats[cats["when"] == "At the end"].set_index("category")["share"]
    change = sim.summary["vision_change"]["end"]
    assert end["Gained ≥15 letters"] == change["gain_15_share"]
    assert end["Lost ≥15 letters"] == change["loss_15_share"]
    assert end.sum() == pytest.approx(1.0)


@pytest.mark.parametrize(
    ("value", "fmt", "shown"),
    [
        (1234567, "int", "1,234,567"),
        (0.24348, "pct", "24.3 %"),
        (5.92083, "+1f", "+5.9"),
        (-0.25, "+1f", "-0.2"),
        (7.886, "2f", "7.89"),
        (None, "2f", "–"),
        (float("nan"), "1f", "–"),
    ],
)
def test_format_value(value: object, fmt: str, shown: str) -> None:
    assert analysis.format_value(value, fmt) == shown


def test_summary_table(sim: api.SimulationResults) -> None:
    table = analysis.summary_table(sim.summary).set_index("statistic")["value"]
    assert table["Patients"] == f"{sim.record.patients:,}"
    assert table["Gaining ≥15 letters at end"] == (
        f"{100 * sim.summary['vision_change']['end']['gain_15_share']:.1f} %"
    )
    reasons = [s for s in table.index if s.startswith("Discontinued: ")]
    assert len(reasons) == len(sim.summary["discontinuation"]["by_reason"])
    assert (
        analysis.summary_value(sim.summary, "vision.end.mean")
        == (sim.summary["vision"]["end"]["mean"])
    )
    assert analysis.summary_value(sim.summary, "vision.nowhere") is None


def test_comparison_table(sim: api.SimulationResults) -> None:
    other = {**sim.summary, "patients": 5}
    table = analysis.comparison_table(
        [("first", sim.summary), ("second", other)], header={"Protocol": ["A 1", "B 2"]}
    )
    assert list(table.columns) == ["first", "second"]
    assert table.index[0] == "Protocol"
    assert table.loc["Protocol"].tolist() == ["A 1", "B 2"]
    assert table.loc["Patients"].tolist() == [f"{sim.record.patients:,}", "5"]
    assert len(table) == 1 + len(SUMMARY_FIELDS)
    with pytest.raises(ValueError, match="unique"):
        analysis.comparison_table([("same", sim.summary), ("same", other)])
    with pytest.raises(ValueError, match="header row"):
        analysis.comparison_table([("a", sim.summary)], header={"Protocol": ["x", "y"]})


def test_audit_table() -> None:
    events = audit.append([], "simulation_run", {"sim_id": "sim-1", "b": 2}, user="ana")
    events = audit.append(events, "exported", {"file": "x.zip"}, user="ben")
    events = [replace(events[0], time="2026-01-02T03:04:05.678901Z"), events[1]]
    table = analysis.audit_table(events)
    assert table["action"].tolist() == ["simulation_run", "exported"]
    assert table["user"].tolist() == ["ana", "ben"]
    assert table["#"].tolist() == [1, 2]
    assert table["time (UTC)"].iloc[0] == "2026-01-02 03:04:05"  # seconds, like the others
    assert len(table["time (UTC)"].iloc[1]) == 19
    assert analysis.audit_details(events[0]) == '{\n  "b": 2,\n  "sim_id": "sim-1"\n}'
    odd = audit.append([], "imported", {"name": "a\u202eb"}, user="ana")[0]
    assert "\\u202e" in analysis.audit_details(odd)  # shown as an escape, never raw


def test_patient_outcome() -> None:
    base = {
        "enrol_day": 10,
        "discontinuation_day": None,
        "discontinuation_reason": None,
        "death_day": None,
    }
    assert analysis.patient_outcome(base) == "in follow-up until the end of the simulation"
    died = analysis.patient_outcome({**base, "death_day": 375})
    assert died == "died on day 365 (month 12.0)"
    stopped = {**base, "discontinuation_day": 100, "discontinuation_reason": "poor_vision"}
    assert analysis.patient_outcome(stopped) == (
        "treatment discontinued on day 90 (month 3.0): poor vision (futility)"
    )
