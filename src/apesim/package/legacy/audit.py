"""The earlier audit_log.json converted into APE's hash-chained trail, event by event."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from apesim import audit
from apesim.errors import PackageFormatError
from apesim.package.legacy.format import EARLIER_USER
from apesim.package.legacy.parse import event_time, utc_time


def convert_audit(raw: Any, created: datetime) -> list[audit.AuditEvent]:
    """Each earlier event becomes one of ours, chained: action = its event name, details
    = its content, time = its timestamp (taken as UTC when it has no zone; `created`, the
    package's creation time, when it has none)."""
    if not isinstance(raw, list):
        raise PackageFormatError(
            "audit_log.json: must be a JSON list of events", code="audit.invalid"
        )
    events: list[audit.AuditEvent] = []
    for i, item in enumerate(raw):
        name = item.get("event") if isinstance(item, dict) else None
        if not isinstance(name, str) or not 0 < len(name) <= 200 or not name.isprintable():
            raise PackageFormatError(
                f"audit_log.json: event {i} has no event name", code="audit.invalid"
            )
        details = {k: v for k, v in item.items() if k != "event"}
        when = utc_time(item.get("timestamp"))
        events = audit.append(
            events, name, details, user=EARLIER_USER, time=event_time(when or created)
        )
    return events
