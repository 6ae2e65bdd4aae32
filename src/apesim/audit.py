"""The audit trail: append-only events, each carrying the SHA-256 of the event before it.

On disk (`audit_log.json`) it is a JSON array with one event per line in canonical form, so
appending an event leaves every earlier event's bytes untouched, and any edit, deletion or
reordering breaks the hash chain.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from apesim.errors import ParameterError
from apesim.safeload import load_json
from apesim.text import escape_char, first_control, printable

GENESIS = "0" * 64


class BrokenChainError(ValueError):
    """An event's `prev_sha256` is not the hash of the event before it."""


EVENT_KEYS = ("action", "details", "prev_sha256", "time", "user")


@dataclass(frozen=True)
class AuditEvent:
    """One event: what happened, when (UTC), by whom, and the hash of the previous event."""

    time: str
    user: str
    action: str
    details: dict[str, Any]
    prev_sha256: str

    def canonical(self) -> str:
        return json.dumps(
            {
                "action": self.action,
                "details": self.details,
                "prev_sha256": self.prev_sha256,
                "time": self.time,
                "user": self.user,
            },
            sort_keys=True,
            separators=(",", ":"),
            ensure_ascii=False,
            allow_nan=False,
        )

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical().encode("utf-8")).hexdigest()


def current_user() -> str:
    """Who is acting: APE_USER if set, else the login name. It goes into audit trails and
    packages, whose readers refuse control characters: such a name is refused here."""
    source = "APE_USER" if os.environ.get("APE_USER") else "the login name"
    try:
        user = os.environ.get("APE_USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"
    bad = first_control(user)
    if bad is not None:
        raise ParameterError(
            f"{source} {printable(user)!r} holds the control character {escape_char(bad)}; "
            "set APE_USER to a plain name"
        )
    return user


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def append(
    events: list[AuditEvent],
    action: str,
    details: dict[str, Any],
    *,
    user: str | None = None,
    time: str | None = None,
) -> list[AuditEvent]:
    """A new list with one event appended, chained to the last one."""
    prev = events[-1].sha256 if events else GENESIS
    event = AuditEvent(
        time=time or utc_now(),
        user=user or current_user(),
        action=action,
        details=details,
        prev_sha256=prev,
    )
    return [*events, event]


def serialise(events: list[AuditEvent]) -> bytes:
    """The bytes of audit_log.json."""
    if not events:
        return b"[]\n"
    return ("[\n" + ",\n".join(e.canonical() for e in events) + "\n]\n").encode("utf-8")


def verify_chain(events: list[AuditEvent]) -> int | None:
    """Index of the first event whose `prev_sha256` does not match, or None if intact."""
    prev = GENESIS
    for i, event in enumerate(events):
        if event.prev_sha256 != prev:
            return i
        prev = event.sha256
    return None


def _event(item: Any, where: str) -> AuditEvent:
    """One well-formed event from parsed JSON; raise ValueError naming `where` if not."""
    if not isinstance(item, dict) or tuple(sorted(item)) != EVENT_KEYS:
        raise ValueError(f"{where}: expected exactly the keys {', '.join(EVENT_KEYS)}")
    if not all(isinstance(item[k], str) for k in ("time", "user", "action", "prev_sha256")):
        raise ValueError(f"{where}: time, user, action and prev_sha256 must be strings")
    if not isinstance(item["details"], dict):
        raise ValueError(f"{where}: details must be an object")
    return AuditEvent(**item)


def parse_event(text: str) -> AuditEvent:
    """One event from its canonical JSON (as the registry keeps the last event, so that an
    append interrupted before the file was replaced can be completed); raise ValueError if
    it is not a well-formed event in canonical form."""
    event = _event(load_json(text), "event")
    if event.canonical() != text:
        raise ValueError("event: not in canonical form")
    return event


def parse(data: bytes) -> list[AuditEvent]:
    """Read audit_log.json; raise ValueError if it is not a list of well-formed events."""
    raw = load_json(data)
    if not isinstance(raw, list):
        raise ValueError("the audit trail must be a JSON list of events")
    events = [_event(item, f"event {i}") for i, item in enumerate(raw)]
    broken = verify_chain(events)
    if broken is not None:
        raise BrokenChainError(f"event {broken}: hash chain broken (the trail was altered)")
    return events
