"""Strict parsing of the earlier package's untrusted text: its JSON, its protocol YAML and
its times, with the allowances that exporter needs (NaN in JSON, times without a zone)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from apesim.package import format as fmt
from apesim.package.content import safe_yaml, strict_json
from apesim.package.legacy.format import PROTOCOL


def earlier_json(name: str, data: memoryview, limits: fmt.ReadLimits) -> Any:
    """Strict JSON (no duplicate keys, bounded depth), except that NaN and ±Infinity, which
    the earlier exporter's Python `json.dump` writes for an undefined number, are read as
    null instead of refusing an archive that exporter wrote."""
    return strict_json(name, data, limits, nonfinite_as_null=True)


def earlier_yaml(text: str, limits: fmt.ReadLimits) -> Any:
    """Safe YAML of protocol.yaml: no anchors or aliases, bounded depth."""
    return safe_yaml(PROTOCOL, text, limits)


def utc_time(value: object) -> datetime | None:
    """An ISO 8601 time; one without a zone is taken as UTC (the earlier APE wrote local
    time without a zone)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str) and len(value) <= 64:
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            return None
    else:
        return None
    try:
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except OverflowError:  # e.g. 0001-01-01T00:00:00+01:00 lies before year 1 in UTC
        return None


def event_time(moment: datetime) -> str:
    """A time as APE's audit trail writes it (UTC, microseconds, `Z`)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
