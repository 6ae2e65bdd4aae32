"""The limits and defaults of a run that the API, the CLI and the app share with the engine,
in a module that imports nothing (the engine's own module loads numpy and pyarrow)."""

from __future__ import annotations

MAX_PATIENTS = 10_000_000
MAX_YEARS = 20.0
DEFAULT_CHUNK = 50_000  # patients simulated at a time (results do not depend on it)
DAYS_PER_YEAR = 365.25  # the one year of the engine, the statistics and the analyses
MAX_PROTOCOL_BYTES = 1_000_000  # a protocol file, in the workspace or a package
