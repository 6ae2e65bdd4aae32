"""Analysis of stored simulations, for the app: the analyses (pure functions from the Arrow
tables to small DataFrames) and their presentation (words, formatted values, tables).

The app's pages only draw what these functions return, so every number on a chart is
computed here and tested in tests/analysis/. Inputs are the tables of
`apesim.results.schema` (visits sorted by patient and day); outputs are small pandas
DataFrames, cheap to cache and to send to a browser even for millions of visits.

- `followup`: each patient's follow-up and the visit rows read block by block (shared);
- `vision`: mean vision over time with its confidence band, vision distributions;
- `treatment`: injections and visits per year, intervals, discontinuations over time;
- `outcomes`: all patients and those on treatment, at whole years;
- `patient`: one patient's record and visits;
- `presentation`: words and tables for people (summary, comparison, audit trail, outcomes);
- `protocol_tables`: a protocol as readable tables.
"""

from __future__ import annotations

from apesim.analysis.followup import DAYS_PER_MONTH, follow_up_end
from apesim.analysis.outcomes import outcomes_by_year
from apesim.analysis.patient import patient_ids, patient_record, patient_trajectory
from apesim.analysis.presentation import (
    HEADLINE_STATISTICS,
    audit_details,
    audit_table,
    audit_time,
    comparison_table,
    format_value,
    patient_outcome,
    summary_table,
    summary_value,
    vision_change_categories,
)
from apesim.analysis.protocol_tables import protocol_tables
from apesim.analysis.treatment import (
    TreatmentPatterns,
    discontinuations_over_time,
    injections_per_year,
    mean_injections_per_year,
    treatment_intervals,
    treatment_patterns,
    visits_per_patient,
    visits_per_year,
)
from apesim.analysis.vision import (
    Z_95,
    combine_curves,
    mean_vision_over_time,
    vision_distribution,
)

# The columns of the visits table that the analyses above read (the Patients tab's
# trajectory reads them all, for one patient).
VISIT_COLUMNS: tuple[str, ...] = ("patient_id", "day", "vision", "injected")

__all__ = [
    "DAYS_PER_MONTH",
    "HEADLINE_STATISTICS",
    "VISIT_COLUMNS",
    "Z_95",
    "TreatmentPatterns",
    "audit_details",
    "audit_table",
    "audit_time",
    "combine_curves",
    "comparison_table",
    "discontinuations_over_time",
    "follow_up_end",
    "format_value",
    "injections_per_year",
    "mean_injections_per_year",
    "mean_vision_over_time",
    "outcomes_by_year",
    "patient_ids",
    "patient_outcome",
    "patient_record",
    "patient_trajectory",
    "protocol_tables",
    "summary_table",
    "summary_value",
    "treatment_intervals",
    "treatment_patterns",
    "vision_change_categories",
    "vision_distribution",
    "visits_per_patient",
    "visits_per_year",
]
