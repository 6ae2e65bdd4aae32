"""The files of one simulation folder in the workspace."""

PATIENTS = "patients.parquet"
VISITS = "visits.parquet"
METADATA = "metadata.parquet"
PROTOCOL = "protocol.yaml"
PARAMETERS = "parameters.json"
SUMMARY = "summary_stats.json"
AUDIT = "audit_log.json"
SOURCE_DIR = "source"  # an imported earlier-APE package's original files, byte for byte
EXTRA_PATIENTS = "patients_extra.parquet"  # columns of a converted package with no place in ours
EXTRA_VISITS = "visits_extra.parquet"

REQUIRED = (PATIENTS, VISITS, METADATA, PROTOCOL, PARAMETERS, SUMMARY, AUDIT)
