"""The analyses and statistics as people read them: words, formatted values and tables.

The labels of the summary statistics and their formatter are `apesim.results.summary`'s
(one table for the CLI, the app and the package README); this module arranges them into
tables for the app.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from apesim.audit import AuditEvent
from apesim.results.stats import DAYS_PER_YEAR
from apesim.results.summary import (  # the one table of labels and formatter
    REASON_LABELS,
    SUMMARY_FIELDS,
    Summary,
    summary_rows,
)
from apesim.results.summary import format_value as format_value
from apesim.text import json_safe

DAYS_PER_MONTH = DAYS_PER_YEAR / 12

# The headline statistics of the Analysis Overview, the viewer and the report, with their
# shorter titles (formatted by the summary's one table).
HEADLINE_STATISTICS: tuple[tuple[str, str], ...] = (
    ("vision_change.year1.mean", "Vision change at 1 year"),
    ("vision_change.end.mean", "Vision change at end"),
    ("vision_change.end.gain_15_share", "Gaining ≥15 letters"),
    ("injections.year1_mean", "Injections in year 1"),
    ("discontinuation.rate", "Discontinued"),
)


def vision_change_categories(summary: Summary) -> pd.DataFrame:
    """Share of patients gaining ≥15, changing less than 15, or losing ≥15 letters, at one
    year and at the end, from the summary statistics. Columns: when, category, share."""
    rows = []
    changes = summary["vision_change"]
    for change, when in ((changes["year1"], "At 1 year"), (changes["end"], "At the end")):
        gain, loss = change["gain_15_share"], change["loss_15_share"]
        if gain is None or loss is None:
            continue
        rows += [
            (when, "Gained ≥15 letters", gain),
            (when, "Within 15 letters", 1.0 - gain - loss),
            (when, "Lost ≥15 letters", loss),
        ]
    return pd.DataFrame(rows, columns=["when", "category", "share"])


def patient_outcome(record: dict[str, Any]) -> str:
    """How one patient's follow-up ended, in words (from `patient_record`)."""
    enrol = int(record["enrol_day"])
    stop, death = record["discontinuation_day"], record["death_day"]
    if stop is not None:
        reason = REASON_LABELS.get(record["discontinuation_reason"], "unknown reason")
        return (
            f"treatment discontinued on day {stop - enrol} "
            f"(month {(stop - enrol) / DAYS_PER_MONTH:.1f}): {reason.lower()}"
        )
    if death is not None:
        return f"died on day {death - enrol} (month {(death - enrol) / DAYS_PER_MONTH:.1f})"
    return "in follow-up until the end of the simulation"


# -- summaries and comparisons ---------------------------------------------------------------


def summary_value(summary: Summary, path: str) -> Any:
    """A value of the summary by dotted path (None when absent)."""
    value: Any = summary
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def summary_table(summary: Summary) -> pd.DataFrame:
    """The headline statistics as rows of (statistic, value) with formatted values and
    units, followed by one row per discontinuation reason (`results.summary.summary_rows`)."""
    return pd.DataFrame(summary_rows(summary), columns=["statistic", "value"])


def comparison_table(
    summaries: Sequence[tuple[str, Summary]],
    header: Mapping[str, Sequence[str]] | None = None,
) -> pd.DataFrame:
    """The headline statistics of several simulations side by side: one row per statistic,
    one column per (label, summary) pair, in the order given; `header` rows (e.g. the
    protocol of each) come first. Labels must be unique."""
    labels = [label for label, _ in summaries]
    if len(set(labels)) != len(labels):
        raise ValueError("comparison labels must be unique")
    rows = dict(header or {})
    for name, values in rows.items():
        if len(values) != len(labels):
            raise ValueError(f"header row {name!r}: {len(values)} values for {len(labels)} columns")
    statistics = [*rows, *(field.label for field in SUMMARY_FIELDS)]
    frame = pd.DataFrame({"statistic": statistics})
    for i, (label, summary) in enumerate(summaries):
        values = summary_table(summary)["value"].iloc[: len(SUMMARY_FIELDS)].tolist()
        frame[label] = [*(str(v[i]) for v in rows.values()), *values]
    return frame.set_index("statistic")


# -- audit trail ---------------------------------------------------------------------------


def audit_time(time: str) -> str:
    """An audit event's ISO 8601 UTC time for people, to the second: `2026-01-02 03:04:05`
    (events record seconds or microseconds; the exact value is in `audit_details`)."""
    day, _, clock = time.removesuffix("Z").partition("T")
    return f"{day} {clock.split('.')[0]}".strip()


def audit_table(events: Sequence[AuditEvent]) -> pd.DataFrame:
    """The audit trail as a table: number, time (UTC, to the second), user, action; each
    event's details are `audit_details`."""
    return pd.DataFrame(
        {
            "#": list(range(1, len(events) + 1)),
            "time (UTC)": [audit_time(e.time) for e in events],
            "user": [e.user for e in events],
            "action": [e.action for e in events],
        }
    )


def audit_details(event: AuditEvent) -> str:
    """One audit event's details as indented JSON, keys sorted: whole values, one per line.
    Characters that must not be shown raw are JSON escapes (`text.json_safe`)."""
    return json_safe(json.dumps(event.details, indent=2, sort_keys=True, ensure_ascii=False))
