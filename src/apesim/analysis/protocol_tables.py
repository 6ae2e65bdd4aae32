"""A protocol as readable tables: regimen, disease transitions, treatment effect, vision
change, baseline population, discontinuation and mortality."""

from __future__ import annotations

import pandas as pd

from apesim.protocol.calendar import AnyProtocol, CalendarProtocol, LogNormal, Observation
from apesim.protocol.schema import PRN, STATES, Fixed, Protocol, TreatAndExtend


def _days(value: int) -> str:
    return f"{value} days ({value / 7:g} weeks)"


def protocol_tables(protocol: AnyProtocol) -> dict[str, pd.DataFrame]:
    """A protocol as readable tables, by title: regimen, disease transitions, treatment
    effect, vision change, baseline population, discontinuation and mortality (model 2.0:
    regimen, disease and vision in calendar time, population, follow-up and mortality)."""
    if isinstance(protocol, CalendarProtocol):
        return _calendar_tables(protocol)
    return _markov_tables(protocol)


def _regimen_rows(protocol: AnyProtocol) -> list[tuple[str, str]]:
    regimen = protocol.regimen
    if isinstance(regimen, Observation):
        return [
            ("Regimen", "No treatment (observation)"),
            ("Visits every", _days(regimen.interval_days)),
        ]
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
    return rows


def _trait(spec: LogNormal, unit: str) -> str:
    spread = f"log-normal, sd {spec.sd_log:g}; {spec.min:g} to {spec.max:g}"
    return f"median {spec.median:g} {unit} ({spread})"


def _population(protocol: AnyProtocol) -> pd.DataFrame:
    base = protocol.baseline
    return pd.DataFrame(
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


def _calendar_tables(protocol: CalendarProtocol) -> dict[str, pd.DataFrame]:
    disease, vision, stop = protocol.disease, protocol.vision, protocol.discontinuation
    gain = vision.gain
    model = [
        ("Model", f"{protocol.model.name} {protocol.model.version} (calendar time)"),
        ("Drug effect lasts", _trait(disease.durability_days, "days")),
        ("Lesion burns out (per year)", f"{disease.quiescence_annual_probability:g}"),
        ("Loss while active", _trait(disease.active_loss_letters_per_year, "letters/year")),
        ("Gain at reference vision", f"{gain.at_reference:g} letters at {gain.reference_letters}"),
        ("More gain per letter below", f"{gain.per_letter_below:g}"),
        ("Response multiplier", _trait(gain.response, "")),
        ("Vision ceiling", f"{vision.ceiling_letters} letters"),
        ("Recovery time constant", _days(vision.recovery_days)),
        ("Irreversible share of active loss", f"{vision.irreversible_fraction:g}"),
        ("Atrophy", _trait(vision.atrophy_letters_per_year, "letters/year")),
        ("Measurement noise (sd)", f"{vision.measurement_sd_letters:g} letters"),
    ]
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
            ("Poor vision", f"below {pv.threshold_letters} letters, probability {pv.probability:g}")
        )
    stopping += [
        (
            "Loss to follow-up (per year)",
            ", ".join(f"{p:g}" for p in stop.loss_to_follow_up_annual),
        ),
        ("Follow-up after stopping", _days(stop.follow_up_interval_days)),
        ("Mortality", protocol.mortality.life_table.source),
        ("Female share of patients", f"{protocol.baseline.female_share:g}"),
    ]
    return {
        "Regimen": pd.DataFrame(_regimen_rows(protocol), columns=["parameter", "value"]).set_index(
            "parameter"
        ),
        "Disease and vision (calendar time)": pd.DataFrame(
            model, columns=["parameter", "value"]
        ).set_index("parameter"),
        "Baseline population": _population(protocol),
        "Discontinuation, follow-up and mortality": pd.DataFrame(
            stopping, columns=["rule", "value"]
        ).set_index("rule"),
    }


def _markov_tables(protocol: Protocol) -> dict[str, pd.DataFrame]:
    rows = _regimen_rows(protocol)
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
