"""Analysis of stored simulations: pure functions from the Arrow tables to small DataFrames.

The app's pages only draw what these functions return, so every number on a chart is
computed here and tested in tests/test_analysis.py. Inputs are the tables of
`apesim.results.schema` (visits sorted by patient and day); outputs are small pandas
DataFrames, cheap to cache and to send to a browser even for millions of visits.

Time is counted from each patient's enrolment: a month is 365.25 / 12 days and a year
365.25 days, as in `apesim.results.stats`.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa

from apesim.audit import AuditEvent
from apesim.protocol.schema import PRN, STATES, Fixed, Protocol, TreatAndExtend
from apesim.results.schema import DISCONTINUATION_REASONS
from apesim.results.stats import DAYS_PER_YEAR, horizon_days

DAYS_PER_MONTH = DAYS_PER_YEAR / 12
Z_95 = 1.959963984540054  # two-sided 95 % quantile of the standard normal

REASON_LABELS: dict[str, str] = {
    "poor_vision": "Poor vision (futility)",
    "stable_at_max_interval": "Stable at the longest interval",
    "premature": "Premature (lost to follow-up)",
}

IntArray = npt.NDArray[np.int64]


# -- shared preparation -------------------------------------------------------------------


@dataclass(frozen=True)
class _Prepared:
    """The columns every analysis needs, as int64 arrays, patients sorted by id."""

    pid: IntArray  # patient ids, ascending
    enrol: IntArray
    end: IntArray  # first day no longer in follow-up (exclusive), per patient
    row_patient: IntArray  # index into pid of each visit row
    rel: IntArray  # day of each visit counted from its patient's enrolment
    vision: IntArray
    injected: npt.NDArray[np.bool_]


def _ints(table: pa.Table, column: str, fill: int = -1) -> IntArray:
    col = table.column(column)
    if col.null_count:
        col = col.fill_null(fill)
    return np.asarray(col.to_numpy(), dtype=np.int64)


def follow_up_end(patients: pa.Table, years: float) -> IntArray:
    """Per patient (in table order), the first day after follow-up: the day after a
    discontinuation visit, else the day of death, else the end of the simulated period."""
    horizon = horizon_days(years)
    stop = _ints(patients, "discontinuation_day")
    death = _ints(patients, "death_day")
    return np.where(stop >= 0, stop + 1, np.where(death >= 0, death, horizon))


def _prepare(patients: pa.Table, visits: pa.Table, years: float) -> _Prepared:
    pid = _ints(patients, "patient_id")
    order = np.argsort(pid, kind="stable")
    pid = pid[order]
    enrol = _ints(patients, "enrol_day")[order]
    end = follow_up_end(patients, years)[order]
    v_pid = _ints(visits, "patient_id")
    if pid.size and pid[0] == 0 and pid[-1] == pid.size - 1 and bool(np.all(np.diff(pid) == 1)):
        row_patient = v_pid  # ids are 0..n-1, as the engine writes them
    else:
        row_patient = np.searchsorted(pid, v_pid)
    rel = _ints(visits, "day") - enrol[row_patient]
    injected = np.asarray(visits.column("injected").to_numpy(zero_copy_only=False), dtype=bool)
    return _Prepared(pid, enrol, end, row_patient, rel, _ints(visits, "vision"), injected)


def _months(years: float) -> IntArray:
    """Whole months since enrolment that fall inside the simulated period."""
    last = int((horizon_days(years) - 1) // DAYS_PER_MONTH)
    return np.arange(last + 1, dtype=np.int64)


# -- vision --------------------------------------------------------------------------------


def mean_vision_over_time(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """Mean vision (ETDRS letters) at each month since enrolment, with a 95 % confidence band.

    At month m a patient counts while still in follow-up (not discontinued, alive, inside
    the simulated period), with the vision measured at their last visit on or before that
    day. Columns: month, patients, mean, sd, ci_low, ci_high (the normal-approximation
    interval of the mean; equal to the mean when fewer than two patients remain).
    """
    p = _prepare(patients, visits, years)
    months = _months(years)
    size = months.size
    if p.rel.size == 0:
        return _vision_frame([])
    # Each visit's vision holds from the first month on or after it until the month of the
    # patient's next visit (or the end of follow-up): add it over that range of months.
    first = _months_before(p.rel, size)
    stop = _months_before((p.end - p.enrol)[p.row_patient], size)
    last_of_patient = np.r_[p.row_patient[1:] != p.row_patient[:-1], True]
    following = _months_before(np.r_[p.rel[1:], 0], size)
    stop = np.where(last_of_patient, stop, np.minimum(following, stop))
    keep = first < stop
    first, stop, vision = first[keep], stop[keep], p.vision[keep].astype(np.float64)

    def spread(weights: npt.NDArray[np.float64] | None) -> npt.NDArray[np.float64]:
        on = np.bincount(first, weights, minlength=size + 1)
        off = np.bincount(stop, weights, minlength=size + 1)
        return np.rint(np.cumsum(on - off)[:size])

    count, s1, s2 = spread(None), spread(vision), spread(vision * vision)
    rows: list[tuple[int, int, float, float, float, float]] = []
    for month in range(size):
        n = int(count[month])
        if n == 0:
            continue
        mean = s1[month] / n
        if n > 1:
            var = (n * int(s2[month]) - int(s1[month]) ** 2) / (n * (n - 1))
            sd = math.sqrt(max(var, 0.0))
            half = Z_95 * sd / math.sqrt(n)
        else:
            sd, half = float("nan"), 0.0
        rows.append((month, n, float(mean), sd, mean - half, mean + half))
    return _vision_frame(rows)


def _months_before(days: IntArray, size: int) -> IntArray:
    """How many of the months 0..size-1 start before each day: the first month whose
    first day, floor(m * DAYS_PER_MONTH), is on or after `days`. (DAYS_PER_MONTH is
    30.4375, exact in binary, so the division is exact enough for whole days.)"""
    return np.clip(np.ceil(days / DAYS_PER_MONTH), 0, size).astype(np.int64)


def _vision_frame(rows: list[tuple[int, int, float, float, float, float]]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["month", "patients", "mean", "sd", "ci_low", "ci_high"])
    return frame.astype({"month": "int64", "patients": "int64", "mean": "float64", "sd": "float64"})


def vision_distribution(patients: pa.Table, bin_width: int = 5) -> pd.DataFrame:
    """Counts of patients by vision at baseline and at the end, in bins of `bin_width`
    letters. Long format: letters (bin start), measure ("Baseline" / "Final"), patients,
    share (of all patients)."""
    n = patients.num_rows
    edges = np.arange(0, 100 + bin_width, bin_width)
    frames = []
    for column, label in (("baseline_vision", "Baseline"), ("final_vision", "Final")):
        values = _ints(patients, column)
        counts = np.bincount(
            np.minimum(values // bin_width, len(edges) - 2), minlength=len(edges) - 1
        )
        frames.append(
            pd.DataFrame(
                {
                    "letters": edges[:-1],
                    "measure": label,
                    "patients": counts[: len(edges) - 1].astype(np.int64),
                    "share": counts[: len(edges) - 1] / n if n else 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def vision_change_categories(summary: dict[str, Any]) -> pd.DataFrame:
    """Share of patients gaining ≥15, changing less than 15, or losing ≥15 letters, at one
    year and at the end, from the summary statistics. Columns: when, category, share."""
    rows = []
    for key, when in (("year1", "At 1 year"), ("end", "At the end")):
        change = summary["vision_change"][key]
        gain, loss = change["gain_15_share"], change["loss_15_share"]
        if gain is None or loss is None:
            continue
        rows += [
            (when, "Gained ≥15 letters", gain),
            (when, "Within 15 letters", 1.0 - gain - loss),
            (when, "Lost ≥15 letters", loss),
        ]
    return pd.DataFrame(rows, columns=["when", "category", "share"])


# -- treatment patterns --------------------------------------------------------------------


def injections_per_year(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """How many injections each patient had in each year of treatment.

    Year k counts the patients still in follow-up at its start and their injections
    during it. Long format: year (1, 2, ...), injections, patients (with that many).
    """
    p = _prepare(patients, visits, years)
    n_years = max(1, math.ceil(horizon_days(years) / DAYS_PER_YEAR - 1e-9))
    year_of = np.floor(p.rel / DAYS_PER_YEAR).astype(np.int64)
    frames = []
    for k in range(n_years):
        start = round(k * DAYS_PER_YEAR)
        present = p.enrol + start < p.end
        if not present.any():
            continue
        hits = p.injected & (year_of == k)
        per_patient = np.bincount(p.row_patient[hits], minlength=p.pid.size)[present]
        counts = np.bincount(per_patient)
        frames.append(
            pd.DataFrame(
                {
                    "year": k + 1,
                    "injections": np.arange(counts.size, dtype=np.int64),
                    "patients": counts.astype(np.int64),
                }
            )
        )
    if not frames:
        return pd.DataFrame({"year": [], "injections": [], "patients": []}, dtype="int64")
    out = pd.concat(frames, ignore_index=True)
    return out[out["patients"] > 0].reset_index(drop=True)


def mean_injections_per_year(distribution: pd.DataFrame) -> pd.DataFrame:
    """From `injections_per_year`: per year, patients and mean injections per patient."""
    if distribution.empty:
        return pd.DataFrame({"year": [], "patients": [], "mean": []})
    weighted = distribution.assign(total=distribution["injections"] * distribution["patients"])
    out = weighted.groupby("year", as_index=False)[["patients", "total"]].sum()
    out["mean"] = out["total"] / out["patients"]
    return out[["year", "patients", "mean"]]


def treatment_intervals(visits: pa.Table) -> pd.DataFrame:
    """Distribution of the time between consecutive injections of the same patient, in
    whole weeks. Columns: weeks, intervals, share."""
    pid = _ints(visits, "patient_id")
    day = _ints(visits, "day")
    injected = np.asarray(visits.column("injected").to_numpy(zero_copy_only=False), dtype=bool)
    rows = np.flatnonzero(injected)
    same = pid[rows][1:] == pid[rows][:-1]
    gaps = np.diff(day[rows])[same]
    if gaps.size == 0:
        return pd.DataFrame({"weeks": [], "intervals": [], "share": []})
    weeks = np.rint(gaps / 7).astype(np.int64)
    counts = np.bincount(weeks)
    keep = np.flatnonzero(counts)
    return pd.DataFrame(
        {"weeks": keep, "intervals": counts[keep], "share": counts[keep] / gaps.size}
    )


def visits_per_patient(patients: pa.Table) -> pd.DataFrame:
    """Number of patients by their number of visits. Columns: visits, patients."""
    values = _ints(patients, "visits")
    counts = np.bincount(values) if values.size else np.zeros(0, np.int64)
    keep = np.flatnonzero(counts)
    return pd.DataFrame({"visits": keep, "patients": counts[keep].astype(np.int64)})


def visits_per_year(patients: pa.Table, visits: pa.Table, years: float) -> pd.DataFrame:
    """Mean visits per patient in each year of treatment, split into injection visits and
    monitoring-only visits. Year k counts the patients still in follow-up at its start.
    Long format: year, kind ("Injection" / "Monitoring only"), visits, patients, per_patient.
    """
    p = _prepare(patients, visits, years)
    n_years = max(1, math.ceil(horizon_days(years) / DAYS_PER_YEAR - 1e-9))
    year_of = np.floor(p.rel / DAYS_PER_YEAR).astype(np.int64)
    rows = []
    for k in range(n_years):
        present = int((p.enrol + round(k * DAYS_PER_YEAR) < p.end).sum())
        if not present:
            continue
        in_year = year_of == k
        for kind, mask in (("Injection", p.injected), ("Monitoring only", ~p.injected)):
            count = int((in_year & mask).sum())
            rows.append((k + 1, kind, count, present, count / present))
    return pd.DataFrame(rows, columns=["year", "kind", "visits", "patients", "per_patient"])


def discontinuations_over_time(patients: pa.Table, years: float) -> pd.DataFrame:
    """Cumulative discontinuations by reason at each month since enrolment.

    Long format: month, reason (code), label (words), patients (discontinued by the end of
    that month), share (of all patients).
    """
    n = patients.num_rows
    months = _months(years)
    stop = _ints(patients, "discontinuation_day")
    enrol = _ints(patients, "enrol_day")
    reasons = patients.column("discontinuation_reason").to_pylist()
    month_of = np.floor((stop - enrol) / DAYS_PER_MONTH).astype(np.int64)
    frames = []
    for reason in DISCONTINUATION_REASONS:
        mask = np.array([r == reason for r in reasons], dtype=bool) & (stop >= 0)
        counts = np.bincount(np.clip(month_of[mask], 0, months[-1]), minlength=months.size)
        cumulative = np.cumsum(counts[: months.size])
        frames.append(
            pd.DataFrame(
                {
                    "month": months,
                    "reason": reason,
                    "label": REASON_LABELS.get(reason, reason),
                    "patients": cumulative.astype(np.int64),
                    "share": cumulative / n if n else 0.0,
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


# -- one patient ---------------------------------------------------------------------------


def patient_ids(patients: pa.Table) -> tuple[int, int]:
    """The smallest and largest patient id (for a picker)."""
    ids = _ints(patients, "patient_id")
    return int(ids.min()), int(ids.max())


def patient_trajectory(patients: pa.Table, visits: pa.Table, patient_id: int) -> pd.DataFrame:
    """One patient's visits: day, month (since enrolment), visit, state, vision, injected,
    next_interval (days; empty after the last visit or at discontinuation)."""
    pid = _ints(visits, "patient_id")
    lo, hi = np.searchsorted(pid, [patient_id, patient_id + 1])
    rows = visits.slice(int(lo), int(hi - lo))
    enrol = patient_record(patients, patient_id)["enrol_day"]
    frame = rows.select(
        ["day", "visit", "state", "vision", "injected", "next_interval"]
    ).to_pandas()
    frame["state"] = frame["state"].astype(str)
    frame["month"] = (frame["day"] - enrol) / DAYS_PER_MONTH
    next_interval = frame["next_interval"]
    frame["next_interval"] = next_interval.where(next_interval >= 0).astype("Int64")
    return frame[["day", "month", "visit", "state", "vision", "injected", "next_interval"]]


def patient_record(patients: pa.Table, patient_id: int) -> dict[str, Any]:
    """One row of the patients table as a dict (raises KeyError if there is no such id)."""
    ids = _ints(patients, "patient_id")
    hits = np.flatnonzero(ids == patient_id)
    if hits.size == 0:
        raise KeyError(f"patient {patient_id}: not in this simulation")
    row: dict[str, Any] = patients.slice(int(hits[0]), 1).to_pylist()[0]
    return row


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

# (path in summary_stats.json, label, format): the headline statistics, in display order.
SUMMARY_FIELDS: tuple[tuple[str, str, str], ...] = (
    ("patients", "Patients", "int"),
    ("visits", "Visits", "int"),
    ("injections.total", "Injections", "int"),
    ("injections.per_patient_year", "Injections per patient-year", "2f"),
    ("injections.year1_mean", "Injections in year 1 (mean)", "2f"),
    ("vision.baseline.mean", "Baseline vision, mean (letters)", "1f"),
    ("vision.year1.mean", "Vision at 1 year, mean (letters)", "1f"),
    ("vision.end.mean", "Final vision, mean (letters)", "1f"),
    ("vision_change.year1.mean", "Vision change at 1 year (letters)", "+1f"),
    ("vision_change.end.mean", "Vision change at end (letters)", "+1f"),
    ("vision_change.end.gain_15_share", "Gaining ≥15 letters at end", "pct"),
    ("vision_change.end.loss_15_share", "Losing ≥15 letters at end", "pct"),
    ("discontinuation.rate", "Discontinued", "pct"),
    ("deaths", "Deaths", "int"),
    ("mean_treatment_interval_days", "Mean interval between injections (days)", "1f"),
)


def summary_value(summary: dict[str, Any], path: str) -> Any:
    """A value of the summary by dotted path (None when absent)."""
    value: Any = summary
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    return value


def format_value(value: Any, fmt: str) -> str:
    """A statistic as shown in the app: thousands separators, fixed decimals, percents."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if fmt == "int":
        return f"{int(value):,}"
    if fmt == "pct":
        return f"{100 * value:.1f} %"
    if fmt.startswith("+"):
        return f"{value:+,.{fmt[1]}f}"
    return f"{value:,.{fmt[0]}f}"


def summary_table(summary: dict[str, Any]) -> pd.DataFrame:
    """The headline statistics as rows of (statistic, value) with formatted values,
    followed by one row per discontinuation reason."""
    rows = [
        (label, format_value(summary_value(summary, path), fmt))
        for path, label, fmt in SUMMARY_FIELDS
    ]
    by_reason = summary_value(summary, "discontinuation.by_reason") or {}
    for reason, count in by_reason.items():
        rows.append((f"Discontinued: {REASON_LABELS.get(reason, reason)}", f"{count:,}"))
    return pd.DataFrame(rows, columns=["statistic", "value"])


def comparison_table(
    summaries: Sequence[tuple[str, dict[str, Any]]],
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
    statistics = [*rows, *(label for _, label, _ in SUMMARY_FIELDS)]
    frame = pd.DataFrame({"statistic": statistics})
    for i, (label, summary) in enumerate(summaries):
        values = summary_table(summary)["value"].iloc[: len(SUMMARY_FIELDS)].tolist()
        frame[label] = [*(str(v[i]) for v in rows.values()), *values]
    return frame.set_index("statistic")


def combine_curves(curves: Iterable[tuple[str, pd.DataFrame]]) -> pd.DataFrame:
    """Several `mean_vision_over_time` frames stacked, with a `simulation` column."""
    frames = [frame.assign(simulation=label) for label, frame in curves]
    if not frames:
        return _vision_frame([]).assign(simulation=pd.Series(dtype=str))
    return pd.concat(frames, ignore_index=True)


# -- audit trail ---------------------------------------------------------------------------


def audit_table(events: Sequence[AuditEvent]) -> pd.DataFrame:
    """The audit trail as a table: time, user, action, details (compact JSON)."""
    return pd.DataFrame(
        {
            "time": [e.time for e in events],
            "user": [e.user for e in events],
            "action": [e.action for e in events],
            "details": [
                json.dumps(e.details, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
                for e in events
            ],
        }
    )


# -- protocols -----------------------------------------------------------------------------


def _days(value: int) -> str:
    return f"{value} days ({value / 7:g} weeks)"


def protocol_tables(protocol: Protocol) -> dict[str, pd.DataFrame]:
    """A protocol as readable tables, by title: regimen, disease transitions, treatment
    effect, vision change, baseline population, discontinuation and mortality."""
    regimen = protocol.regimen
    rows: list[tuple[str, str]] = [
        (
            "Regimen",
            {
                "treat_and_extend": "Treat and extend",
                "fixed": "Fixed interval",
                "prn": "PRN (as needed)",
            }[regimen.type],
        ),
        ("Loading doses", str(regimen.loading_doses)),
        ("Loading interval", _days(regimen.loading_interval_days)),
    ]
    if isinstance(regimen, TreatAndExtend):
        rows += [
            ("Initial interval", _days(regimen.initial_interval_days)),
            ("Shortest interval", _days(regimen.min_interval_days)),
            ("Longest interval", _days(regimen.max_interval_days)),
            ("Extend by", _days(regimen.extend_days)),
            ("Shorten by", _days(regimen.shorten_days)),
        ]
    elif isinstance(regimen, Fixed):
        rows.append(("Interval", _days(regimen.interval_days)))
    elif isinstance(regimen, PRN):
        rows.append(("Monitoring interval", _days(regimen.monitoring_interval_days)))

    rates: dict[str, dict[str, float]] = {
        str(s): {str(t): p for t, p in row.items()}
        for s, row in protocol.disease_transitions.items()
    }
    effects: dict[str, dict[str, float]] = {
        str(s): {str(t): m for t, m in row.items()} for s, row in protocol.treatment_effect.items()
    }
    transitions = pd.DataFrame(
        [[rates[s].get(t, 0.0) for t in STATES] for s in STATES],
        index=pd.Index(STATES, name="from \\ to"),
        columns=list(STATES),
    )
    effect = pd.DataFrame(
        [[effects.get(s, {}).get(t, 1.0) for t in STATES] for s in STATES],
        index=pd.Index(STATES, name="from \\ to"),
        columns=list(STATES),
    )
    vision = pd.DataFrame(
        [
            (
                s,
                getattr(protocol.vision, s).treated.mean,
                getattr(protocol.vision, s).treated.sd,
                getattr(protocol.vision, s).untreated.mean,
                getattr(protocol.vision, s).untreated.sd,
            )
            for s in STATES
        ],
        columns=["state", "treated mean", "treated sd", "untreated mean", "untreated sd"],
    ).set_index("state")
    base = protocol.baseline
    baseline = pd.DataFrame(
        [
            (
                "Age (years)",
                base.age_years.mean,
                base.age_years.sd,
                base.age_years.min,
                base.age_years.max,
            ),
            (
                "Vision (ETDRS letters)",
                base.vision_letters.mean,
                base.vision_letters.sd,
                base.vision_letters.min,
                base.vision_letters.max,
            ),
        ],
        columns=["", "mean", "sd", "min", "max"],
    ).set_index("")
    stop = protocol.discontinuation
    stopping: list[tuple[str, str]] = []
    if stop.stable_at_max_interval is not None:
        rule = stop.stable_at_max_interval
        stopping.append(
            (
                "Stable at the longest interval",
                f"after {rule.consecutive_visits} stable visits, probability {rule.probability:g}",
            )
        )
    if stop.poor_vision is not None:
        pv = stop.poor_vision
        stopping.append(
            (
                "Poor vision",
                f"below {pv.threshold_letters} letters, probability {pv.probability:g}",
            )
        )
    stopping += [
        ("Premature (per year)", f"{stop.premature_annual_probability:g}"),
        ("Mortality (per year)", f"{protocol.mortality.annual_probability:g}"),
        ("Female share of patients", f"{base.female_share:g}"),
    ]
    return {
        "Regimen": pd.DataFrame(rows, columns=["parameter", "value"]).set_index("parameter"),
        "Disease transitions per visit (probability)": transitions,
        "Treatment effect (multiplier on a transition after an injection)": effect,
        "Vision change per visit (ETDRS letters)": vision,
        "Baseline population": baseline,
        "Discontinuation, mortality and population": pd.DataFrame(
            stopping, columns=["rule", "value"]
        ).set_index("rule"),
    }
