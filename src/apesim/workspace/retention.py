"""Retention: which imported simulations are past their keep-by date, and their removal.

Only imported simulations are ever due; a simulation run in this workspace is removed only
when it is named. Every removal is recorded in the workspace's own audit trail (sim id,
package SHA-256, time), since the simulation's own trail goes with it. The clock is an
argument, so tests can move it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from apesim.errors import ParameterError
from apesim.workspace.store import SimulationRecord, Workspace

REMOVED = "simulation_removed"
_AGE = re.compile(r"^\s*([0-9]{1,6})\s*([dwh]?)\s*$")
_UNITS = {"d": "days", "": "days", "w": "weeks", "h": "hours"}


def parse_age(text: str) -> timedelta:
    """An age as typed: `90d` (days; a bare number is days too), `12w` or `36h`."""
    match = _AGE.match(text.lower())
    if match is None:
        raise ParameterError(f"{text!r}: give an age such as 90d, 12w or 36h")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


def _imported_at(record: SimulationRecord) -> datetime | None:
    if not record.imported_utc:
        return None
    try:
        moment = datetime.fromisoformat(record.imported_utc.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def due(
    records: list[SimulationRecord], older_than: timedelta, now: datetime
) -> list[SimulationRecord]:
    """The imported simulations imported more than `older_than` before `now`."""
    cutoff = now - older_than
    out = []
    for record in records:
        moment = _imported_at(record)
        if record.imported and moment is not None and moment < cutoff:
            out.append(record)
    return out


@dataclass(frozen=True)
class Removal:
    """A simulation gc removed (or, in a dry run, would remove), and why."""

    record: SimulationRecord
    reason: str  # "retention" or "named"

    def to_json(self) -> dict[str, object]:
        return {
            "sim_id": self.record.sim_id,
            "name": self.record.name,
            "imported": self.record.imported,
            "imported_utc": self.record.imported_utc,
            "source_file": self.record.source_file,
            "package_sha256": self.record.source_sha256,
            "reason": self.reason,
        }


def remove(ws: Workspace, removals: list[Removal], now: datetime) -> None:
    """Remove each simulation and record it in the workspace's trail first: a removal
    that is recorded but interrupted is done again by the next gc; one never recorded is
    never done."""
    for removal in removals:
        record = removal.record
        ws.append_workspace_event(
            REMOVED,
            {
                "sim_id": record.sim_id,
                "name": record.name,
                "package_sha256": record.source_sha256,
                "imported_utc": record.imported_utc,
                "reason": removal.reason,
                "removed_utc": now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            },
        )
        ws.delete(record.sim_id)
