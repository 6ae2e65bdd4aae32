"""Strict parsing of the earlier package's untrusted text: its JSON, its protocol YAML and
its times, with the allowances that exporter needs (NaN in JSON, times without a zone)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from apesim.errors import PackageFormatError, PackageLimitError, PackageSecurityError
from apesim.package import format as fmt
from apesim.package.current import strict_json
from apesim.safeload import load_yaml


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise ValueError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def earlier_json(name: str, data: memoryview, limits: fmt.ReadLimits) -> Any:
    """Strict JSON (no duplicate keys, bounded depth), except that NaN and ±Infinity, which
    the earlier exporter's Python `json.dump` writes for an undefined number, are read as
    null instead of refusing an archive that exporter wrote."""
    try:
        return strict_json(name, data, limits)
    except PackageFormatError as exc:
        if exc.code != "json.nonfinite":
            raise
    # Depth and UTF-8 were checked before the non-finite number was met.
    try:
        return json.loads(
            bytes(data).decode("utf-8"),
            object_pairs_hook=_no_duplicates,
            parse_constant=lambda _name: None,
        )
    except ValueError as exc:
        code = "json.duplicate_key" if "duplicate" in str(exc) else "json.invalid"
        raise PackageFormatError(f"{name}: {exc}", code=code) from None


def earlier_yaml(text: str, limits: fmt.ReadLimits) -> Any:
    """Safe YAML of protocol.yaml: no anchors or aliases, bounded depth."""
    try:
        return load_yaml(text, max_depth=limits.max_depth)
    except ValueError as exc:
        message = str(exc)
        code = (
            "yaml.alias"
            if "alias" in message or "anchor" in message
            else "limit.depth"
            if "nested" in message
            else "yaml.invalid"
        )
        cls = PackageFormatError if code == "yaml.invalid" else PackageSecurityError
        if code == "limit.depth":
            cls = PackageLimitError
        raise cls(f"protocol.yaml: {message}", code=code) from None


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
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def event_time(moment: datetime) -> str:
    """A time as APE's audit trail writes it (UTC, microseconds, `Z`)."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
