"""What a sweep found: per outcome, the mean and 95% interval across its draws, and how
strongly each varied parameter moves each outcome (Spearman's rank correlation, ranked).
Pure: from the plan's draws and each completed draw's summary statistics."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

# Outcomes of a draw, from its summary statistics: (key, label, path in summary_stats.json).
OUTCOMES: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    (
        "vision_change_year1",
        "Vision change at 1 year (letters)",
        ("vision_change", "year1", "mean"),
    ),
    ("vision_change_end", "Vision change at the end (letters)", ("vision_change", "end", "mean")),
    ("injections_per_year", "Injections per patient-year", ("injections", "per_patient_year")),
    ("discontinuation", "Discontinued (share of patients)", ("discontinuation", "rate")),
)
INTERVAL = (2.5, 97.5)  # percentiles of the 95% interval across draws


def outcome_values(summary: Any) -> dict[str, float | None]:
    """A draw's outcomes (None where its summary has no value, e.g. no one reached year 1)."""
    out: dict[str, float | None] = {}
    for key, _, path in OUTCOMES:
        value = summary
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        out[key] = float(value) if isinstance(value, int | float) else None
    return out


@dataclass(frozen=True)
class OutcomeStats:
    key: str
    label: str
    n: int
    mean: float | None
    low: float | None
    high: float | None

    def to_json(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "label": self.label,
            "n": self.n,
            "mean": self.mean,
            "interval_95": [self.low, self.high],
        }


@dataclass(frozen=True)
class Sensitivity:
    """How an outcome moves with a parameter across draws: Spearman's rho (None when either
    does not vary)."""

    outcome: str
    parameter: str
    spearman: float | None

    def to_json(self) -> dict[str, Any]:
        return {"outcome": self.outcome, "parameter": self.parameter, "spearman": self.spearman}


@dataclass(frozen=True)
class SweepReport:
    """A sweep's report: its draws (values and outcomes), outcome statistics, sensitivity."""

    sweep_id: str
    name: str
    protocol_name: str
    planned: int
    varied: list[str]
    rows: list[dict[str, Any]]  # per completed draw: index, sim_id, seed, values, outcomes
    outcomes: list[OutcomeStats]
    sensitivity: list[Sensitivity]  # per outcome, strongest |rho| first

    @property
    def complete(self) -> int:
        return len(self.rows)

    def ranking(self, outcome: str) -> list[Sensitivity]:
        return [s for s in self.sensitivity if s.outcome == outcome]

    def to_json(self) -> dict[str, Any]:
        return {
            "sweep_id": self.sweep_id,
            "name": self.name,
            "protocol_name": self.protocol_name,
            "draws_planned": self.planned,
            "draws_complete": self.complete,
            "varied": self.varied,
            "outcomes": [o.to_json() for o in self.outcomes],
            "sensitivity": {
                o.key: [s.to_json() for s in self.ranking(o.key)] for o in self.outcomes
            },
            "draws": self.rows,
        }


def _ranks(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """Ranks 1..n, ties sharing their mean rank."""
    order = np.argsort(x, kind="stable")
    ranks = np.empty(len(x), np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(x: list[float], y: list[float]) -> float | None:
    """Spearman's rank correlation (Pearson's of the ranks); None if either is constant or
    fewer than three pairs."""
    if len(x) < 3:
        return None
    rx, ry = _ranks(np.asarray(x, np.float64)), _ranks(np.asarray(y, np.float64))
    dx, dy = rx - rx.mean(), ry - ry.mean()
    denom = float(np.sqrt((dx * dx).sum() * (dy * dy).sum()))
    return float((dx * dy).sum() / denom) if denom > 0 else None


def build_report(
    plan: dict[str, Any], done: dict[int, str], summaries: dict[int, Any]
) -> SweepReport:
    """The report of a saved plan, given the sim id and summary of each completed draw."""
    varied = list(plan["varied"])
    rows = []
    for draw in plan["draws"]:
        index = draw["index"]
        if index in done:
            rows.append(
                {
                    "index": index,
                    "sim_id": done[index],
                    "seed": draw["seed"],
                    "values": draw["values"],
                    "outcomes": outcome_values(summaries[index]),
                }
            )
    stats, sens = [], []
    for key, label, _ in OUTCOMES:
        pairs = [(r["values"], r["outcomes"][key]) for r in rows if r["outcomes"][key] is not None]
        ys = [y for _, y in pairs]
        if ys:
            arr = np.asarray(ys, np.float64)
            low, high = (float(v) for v in np.percentile(arr, INTERVAL))
            stats.append(OutcomeStats(key, label, len(ys), float(arr.mean()), low, high))
        else:
            stats.append(OutcomeStats(key, label, 0, None, None, None))
        found = [Sensitivity(key, p, spearman([v[p] for v, _ in pairs], ys)) for p in varied]
        found.sort(key=lambda s: -abs(s.spearman) if s.spearman is not None else 1.0)
        sens.extend(found)
    return SweepReport(
        sweep_id=plan["sweep_id"],
        name=plan["name"],
        protocol_name=plan["protocol"]["name"],
        planned=len(plan["draws"]),
        varied=varied,
        rows=rows,
        outcomes=stats,
        sensitivity=sens,
    )
