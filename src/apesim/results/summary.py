"""The summary statistics' type (summary_stats.json), and how people see them.

One type (`Summary`), one table of labels (`SUMMARY_FIELDS`, `REASON_LABELS`) and one
formatter (`format_value`) serve the CLI, the app and the package README. The statistics are
computed by `apesim.results.stats`; this module imports no numpy, so the CLI stays quick.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, TypedDict

SUMMARY_SCHEMA = "ape.summary/1"


class Description(TypedDict):
    """Vision (ETDRS letters) at one time: count, mean, standard deviation, median."""

    n: int
    mean: float | None
    sd: float | None
    median: float | None


class Change(TypedDict):
    """Vision change from baseline at one time, and the shares gaining or losing ≥15."""

    n: int
    mean: float | None
    gain_15_share: float | None
    loss_15_share: float | None


class Injections(TypedDict):
    total: int
    per_patient_year: float | None
    year1_mean: float | None
    year1_patients: int


class Vision(TypedDict):
    baseline: Description
    year1: Description
    end: Description


class VisionChange(TypedDict):
    year1: Change
    end: Change


class Discontinuation(TypedDict):
    total: int
    rate: float | None
    by_reason: dict[str, int]


class Summary(TypedDict):
    """summary_stats.json (schema `ape.summary/1`; docs/model.md defines each statistic)."""

    schema: str
    patients: int
    visits: int
    years: float
    patient_years: float
    injections: Injections
    vision: Vision
    vision_change: VisionChange
    discontinuation: Discontinuation
    deaths: int
    mean_treatment_interval_days: float | None


Format = Literal["int", "pct", "1f", "2f", "+1f"]


@dataclass(frozen=True)
class Statistic:
    """One headline statistic: where it is in summary_stats.json (a dotted path), its label,
    how it is formatted and its unit (appended to the value)."""

    key: str
    label: str
    fmt: Format
    get: Callable[[Summary], float | int | None]
    unit: str = ""

    def shown(self, summary: Summary) -> str:
        """The statistic's value of `summary` as people read it, with its unit."""
        value = self.get(summary)
        return format_value(value, self.fmt) + (self.unit if _present(value) else "")


LETTERS = " letters"

# The headline statistics, in display order.
SUMMARY_FIELDS: tuple[Statistic, ...] = (
    Statistic("patients", "Patients", "int", lambda s: s["patients"]),
    Statistic("visits", "Visits", "int", lambda s: s["visits"]),
    Statistic("injections.total", "Injections", "int", lambda s: s["injections"]["total"]),
    Statistic(
        "injections.per_patient_year",
        "Injections per patient-year",
        "2f",
        lambda s: s["injections"]["per_patient_year"],
    ),
    Statistic(
        "injections.year1_mean",
        "Injections in year 1 (mean)",
        "2f",
        lambda s: s["injections"]["year1_mean"],
    ),
    Statistic(
        "vision.baseline.mean",
        "Baseline vision, mean",
        "1f",
        lambda s: s["vision"]["baseline"]["mean"],
        LETTERS,
    ),
    Statistic(
        "vision.year1.mean",
        "Vision at 1 year, mean",
        "1f",
        lambda s: s["vision"]["year1"]["mean"],
        LETTERS,
    ),
    Statistic(
        "vision.end.mean", "Final vision, mean", "1f", lambda s: s["vision"]["end"]["mean"], LETTERS
    ),
    Statistic(
        "vision_change.year1.mean",
        "Vision change at 1 year",
        "+1f",
        lambda s: s["vision_change"]["year1"]["mean"],
        LETTERS,
    ),
    Statistic(
        "vision_change.end.mean",
        "Vision change at end",
        "+1f",
        lambda s: s["vision_change"]["end"]["mean"],
        LETTERS,
    ),
    Statistic(
        "vision_change.end.gain_15_share",
        "Gaining ≥15 letters at end",
        "pct",
        lambda s: s["vision_change"]["end"]["gain_15_share"],
    ),
    Statistic(
        "vision_change.end.loss_15_share",
        "Losing ≥15 letters at end",
        "pct",
        lambda s: s["vision_change"]["end"]["loss_15_share"],
    ),
    Statistic(
        "discontinuation.rate", "Discontinued", "pct", lambda s: s["discontinuation"]["rate"]
    ),
    Statistic("deaths", "Deaths", "int", lambda s: s["deaths"]),
    Statistic(
        "mean_treatment_interval_days",
        "Mean interval between injections",
        "1f",
        lambda s: s["mean_treatment_interval_days"],
        " days",
    ),
)
STATISTICS: dict[str, Statistic] = {s.key: s for s in SUMMARY_FIELDS}

REASON_LABELS: dict[str, str] = {
    "poor_vision": "Poor vision (futility)",
    "stable_at_max_interval": "Stable at the longest interval",
    "premature": "Premature (lost to follow-up)",
}


def _present(value: object) -> bool:
    return value is not None and not (isinstance(value, float) and math.isnan(value))


def format_value(value: float | int | None, fmt: Format, *, missing: str = "–") -> str:
    """A statistic as people read it: thousands separators, fixed decimals, a sign for
    changes ("+1f"), percents ("pct": 0.228 is "22.8 %"); `missing` for None or NaN."""
    if value is None or not _present(value):
        return missing
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "pct":
        return f"{100 * value:.1f} %"
    if fmt == "+1f":
        return f"{value:+,.1f}"
    return f"{value:,.{fmt[0]}f}"


def summary_rows(summary: Summary) -> list[tuple[str, str]]:
    """The headline statistics as (label, value with unit), then one row per
    discontinuation reason (its count)."""
    rows = [(s.label, s.shown(summary)) for s in SUMMARY_FIELDS]
    for reason, count in summary["discontinuation"]["by_reason"].items():
        rows.append((f"Discontinued: {REASON_LABELS.get(reason, reason)}", f"{count:,}"))
    return rows
