"""The data dictionary of a simulation's tables: what each column means, its unit, its
allowed values and range, and what a null means; the Arrow types are `schema.py`'s.

This is the one place the package's self-description is made from: the README's data
dictionary, `datapackage.json` and the value checks on import (`package/checks.py`) all
read it, so none can drift from the others. It imports no pyarrow (the package writer
describes the tables without loading Arrow); tests/results/test_definitions.py holds each
table's columns to be exactly its schema's, nullable exactly where a null is explained.
"""

from __future__ import annotations

from dataclasses import dataclass

from apesim.results.categories import DISCONTINUATION_REASONS, SEX_VALUES, STATES

DAYS = "days since the start of the simulation (day 0)"
LETTERS = "ETDRS letters"


@dataclass(frozen=True)
class Column:
    """One column: its name, meaning, unit, allowed values and range, and what a null means
    (None for a column that is never null)."""

    name: str
    description: str
    unit: str | None = None
    categories: tuple[str, ...] | None = None
    minimum: int | None = None
    maximum: int | None = None
    null_means: str | None = None


@dataclass(frozen=True)
class Table:
    """One table of the package: its entry name, what a row is, and its columns."""

    name: str  # short name, e.g. "patients"
    row: str  # what its rows are, as a sentence
    columns: tuple[Column, ...]
    primary_key: tuple[str, ...] = ()

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _table(
    name: str,
    row: str,
    docs: dict[str, dict[str, object]],
    primary_key: tuple[str, ...] = (),
) -> Table:
    columns = tuple(Column(c, **doc) for c, doc in docs.items())  # type: ignore[arg-type]
    return Table(name, row, columns, primary_key)


PATIENTS = _table(
    "patients",
    "One row per patient.",
    {
        "patient_id": {
            "description": "The patient's number: 0 to patients - 1, unique.",
            "minimum": 0,
        },
        "enrol_day": {
            "description": "Day of the patient's first visit.",
            "unit": DAYS,
            "minimum": 0,
        },
        "baseline_age": {
            "description": "Age at the first visit, in whole years; -1 means unknown (in "
            "simulations converted from the earlier APE, which recorded no age).",
            "unit": "years",
            "minimum": -1,
            "maximum": 120,
        },
        "sex": {
            "description": "F (female) or M (male); U (unknown) in simulations converted "
            "from the earlier APE.",
            "categories": SEX_VALUES,
        },
        "baseline_vision": {
            "description": "Visual acuity at the first visit.",
            "unit": LETTERS,
            "minimum": 0,
            "maximum": 100,
        },
        "final_vision": {
            "description": "Visual acuity at the last visit (also for patients who stopped "
            "treatment or died).",
            "unit": LETTERS,
            "minimum": 0,
            "maximum": 100,
        },
        "injections": {"description": "Visits at which an injection was given.", "minimum": 0},
        "visits": {"description": "Visits, the first included.", "minimum": 0},
        "discontinuation_day": {
            "description": "Day treatment was stopped.",
            "unit": DAYS,
            "minimum": 0,
            "null_means": "treatment was not stopped",
        },
        "discontinuation_reason": {
            "description": "Why treatment was stopped: poor_vision (futility), "
            "stable_at_max_interval (stable at the longest interval) or premature (lost to "
            "follow-up).",
            "categories": DISCONTINUATION_REASONS,
            "null_means": "treatment was not stopped",
        },
        "death_day": {
            "description": "Day of death, if the patient died during follow-up (before any "
            "discontinuation).",
            "unit": DAYS,
            "minimum": 0,
            "null_means": "the patient did not die during follow-up",
        },
    },
    primary_key=("patient_id",),
)

VISITS = _table(
    "visits",
    "One row per visit, sorted by patient_id, then day.",
    {
        "patient_id": {"description": "The patient (patients.patient_id).", "minimum": 0},
        "day": {"description": "Day of the visit.", "unit": DAYS, "minimum": 0},
        "visit": {
            "description": "0 for a patient's first visit, then 1, 2, ...",
            "minimum": 0,
        },
        "state": {
            "description": "Disease activity found at the visit: NAIVE (before treatment "
            "took effect), STABLE, ACTIVE or HIGHLY_ACTIVE.",
            "categories": STATES,
        },
        "vision": {
            "description": "Visual acuity measured at the visit.",
            "unit": LETTERS,
            "minimum": 0,
            "maximum": 100,
        },
        "injected": {"description": "Whether an injection was given at the visit."},
        "next_interval": {
            "description": "Days until the next planned visit.",
            "unit": "days",
            "minimum": 1,
            "null_means": "treatment stopped at this visit (no visit is planned)",
        },
    },
    primary_key=("patient_id", "visit"),
)

METADATA = _table(
    "metadata",
    "Exactly one row, describing the simulation.",
    {
        "sim_id": {"description": "The simulation's id."},
        "name": {"description": "Its memorable name."},
        "protocol_name": {"description": "The protocol's name (protocol.yaml)."},
        "protocol_version": {"description": "The protocol's version (protocol.yaml)."},
        "protocol_fingerprint": {
            "description": "SHA-256 of the protocol's canonical JSON: the same protocol "
            "gives the same fingerprint whatever its YAML layout.",
        },
        "engine_version": {"description": "The engine that ran the simulation."},
        "patients": {"description": "Patients simulated.", "minimum": 0},
        "years": {"description": "Years simulated (the horizon).", "unit": "years"},
        "seed": {"description": "The random seed.", "minimum": 0},
        "created_utc": {"description": "When the simulation was run (UTC)."},
        "runtime_seconds": {"description": "How long it took.", "unit": "seconds"},
    },
)

TABLES: tuple[Table, ...] = (PATIENTS, VISITS, METADATA)


def kind(arrow_type: str) -> str:
    """An Arrow type (as `str(pyarrow.DataType)`) in words, with the type where it says more."""
    if arrow_type.startswith("dictionary"):
        return "text, one of a few values"
    if arrow_type.startswith(("int", "uint")):
        return f"whole number, {arrow_type}"
    if arrow_type == "bool":
        return "true or false"
    if arrow_type in ("double", "float", "halffloat"):
        return "number"
    if arrow_type.startswith("timestamp"):
        return "date and time, UTC"
    return "text"
