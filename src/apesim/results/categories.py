"""The values a category column may hold: imported by the Arrow schemas, the data dictionary
and the checks, and cheap to import (no pyarrow), so the package writer can describe the
tables without loading Arrow."""

from __future__ import annotations

DISCONTINUATION_REASONS: tuple[str, ...] = ("poor_vision", "stable_at_max_interval", "premature")
SEXES: tuple[str, ...] = ("F", "M")
# Values a sex column may hold: "U" (unknown) comes from packages of the earlier APE.
SEX_VALUES: tuple[str, ...] = (*SEXES, "U")
# The disease states of a visit (the protocol schema's `State`; a test holds them equal).
STATES: tuple[str, ...] = ("NAIVE", "STABLE", "ACTIVE", "HIGHLY_ACTIVE")
