"""The earlier APE's package format 1.0 in code: its file names, the fixed names its files
take in an imported simulation's folder, and how its values map to APE's (see
docs/package-format.md, "Packages of the earlier APE")."""

from __future__ import annotations

from apesim.results.schema import SEXES
from apesim.workspace import layout

LABEL = "earlier APE 1.0"
IMPORT_NOTE = "converted from earlier APE format"
PACKAGE_TYPE = "ape_simulation"
EARLIER_VERSION = "1.0"
EARLIER_USER = "unknown"  # the earlier audit trail does not say who acted

MANIFEST = "manifest.json"
PATIENTS = "data/patients.parquet"
VISITS = "data/visits.parquet"
METADATA = "data/metadata.parquet"
PATIENT_INDEX = "data/patient_index.parquet"
SUMMARY = "data/summary_stats.json"
PROTOCOL = "protocol.yaml"
PARAMETERS = "parameters.json"
AUDIT = "audit_log.json"
README = "README.txt"

# The earlier format's files. The exporter checksums all but the manifest and README.txt.
CHECKSUMMED = (PATIENTS, VISITS, METADATA, PATIENT_INDEX, SUMMARY, PROTOCOL, PARAMETERS, AUDIT)
KNOWN_FILES = (MANIFEST, *CHECKSUMMED, README)
PARQUET_FILES = (PATIENTS, VISITS, METADATA, PATIENT_INDEX)
# Where each original file is kept in the imported simulation's folder: APE's names.
SOURCE_FILES = {name: f"{layout.SOURCE_DIR}/{name}" for name in KNOWN_FILES}

# The quantities of the earlier summary_stats.json, each a number or null.
SUMMARY_KEYS = (
    "total_patients",
    "patient_count",
    "total_visits",
    "total_injections",
    "mean_visits_per_patient",
    "mean_final_vision",
    "std_final_vision",
    "discontinuation_rate",
)
REL_TOL = 1e-9  # "within floating-point rounding" for the statistics both APEs define

SEX_UNKNOWN = "U"  # the earlier APE recorded neither sex nor age
AGE_UNKNOWN = -1
SEX_VALUES = (*SEXES, SEX_UNKNOWN)
# Earlier discontinuation types (and reasons) -> APE's reasons; any other type is premature.
REASON_OF_TYPE = {
    "planned": "stable_at_max_interval",
    "stable_max_interval": "stable_at_max_interval",
    "stable_at_max_interval": "stable_at_max_interval",
    "treatment_decision_stable": "stable_at_max_interval",
    "poor_vision": "poor_vision",
    "poor_response": "poor_vision",
    "ineffective": "poor_vision",
    "deterioration": "poor_vision",
    "treatment_decision_no_improvement": "poor_vision",
    "premature": "premature",
    "adverse": "premature",
    "attrition": "premature",
    "administrative": "premature",
    "random_administrative": "premature",
}
DEATH_TYPES = {"death", "died", "mortality"}
