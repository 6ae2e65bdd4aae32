"""The audit trail: a hash chain that detects edits, deletions and reordering, and whose
file only ever grows at the end."""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim import api, audit
from apesim.audit import GENESIS, AuditEvent
from apesim.engine.simulate import SimulationParameters
from apesim.errors import ParameterError
from apesim.package import export_package
from apesim.workspace import Workspace

T0 = "2026-01-02T03:04:05.000000Z"


def trail(n: int) -> list[audit.AuditEvent]:
    events: list[audit.AuditEvent] = []
    for i in range(n):
        events = audit.append(
            events, f"action_{i}", {"step": i, "note": "é ✓"}, user="ana", time=T0
        )
    return events


def lines(events: list[AuditEvent]) -> list[str]:
    """The event lines of audit_log.json, without the brackets and separating commas."""
    return [e.canonical() for e in events]


def file_of(event_lines: list[str]) -> bytes:
    return ("[\n" + ",\n".join(event_lines) + "\n]\n").encode("utf-8")


def test_first_event_chains_to_the_genesis_hash() -> None:
    assert trail(1)[0].prev_sha256 == GENESIS == "0" * 64


def test_each_event_carries_the_sha256_of_the_previous_one() -> None:
    events = trail(4)
    for before, after in itertools.pairwise(events):
        assert after.prev_sha256 == before.sha256
        assert re.fullmatch(r"[0-9a-f]{64}", before.sha256)


def test_serialised_trail_is_one_canonical_event_per_line() -> None:
    events = trail(3)
    data = audit.serialise(events)
    assert data == file_of(lines(events))
    assert json.loads(data) == [json.loads(e.canonical()) for e in events]
    assert audit.serialise([]) == b"[]\n"


def test_round_trip() -> None:
    events = trail(5)
    assert audit.parse(audit.serialise(events)) == events
    assert audit.parse(b"[]\n") == []


def test_default_user_and_time() -> None:
    # conftest sets APE_USER; times are UTC with a Z.
    event = audit.append([], "run", {})[0]
    assert event.user == "tester@example.org"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", event.time)


# -- tampering -------------------------------------------------------------------------


def test_detects_an_edited_event() -> None:
    events = trail(3)
    edited = lines(events)
    edited[0] = edited[0].replace('"step":0', '"step":7')
    with pytest.raises(ValueError, match="event 1: hash chain broken"):
        audit.parse(file_of(edited))


def test_detects_an_edited_user() -> None:
    events = trail(3)
    edited = lines(events)
    edited[1] = edited[1].replace('"user":"ana"', '"user":"bob"')
    with pytest.raises(ValueError, match="event 2: hash chain broken"):
        audit.parse(file_of(edited))


def test_detects_a_deleted_first_event() -> None:
    with pytest.raises(ValueError, match="event 0: hash chain broken"):
        audit.parse(file_of(lines(trail(3))[1:]))


def test_detects_a_deleted_middle_event() -> None:
    kept = lines(trail(3))
    del kept[1]
    with pytest.raises(ValueError, match="event 1: hash chain broken"):
        audit.parse(file_of(kept))


def test_detects_reordered_events() -> None:
    swapped = lines(trail(3))
    swapped[1], swapped[2] = swapped[2], swapped[1]
    with pytest.raises(ValueError, match="hash chain broken"):
        audit.parse(file_of(swapped))


def test_detects_a_rewritten_previous_hash() -> None:
    edited = lines(trail(2))
    edited[1] = re.sub(
        r'"prev_sha256":"[0-9a-f]{64}"', '"prev_sha256":"' + "f" * 64 + '"', edited[1]
    )
    with pytest.raises(ValueError, match="event 1: hash chain broken"):
        audit.parse(file_of(edited))


json_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**12), max_value=10**12),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
)
details = st.dictionaries(st.text(max_size=8), json_values, max_size=4)
event_specs = st.lists(
    st.tuples(st.text(min_size=1, max_size=12), st.text(max_size=8), details),
    min_size=2,
    max_size=6,
)


def built(specs: list[tuple[str, str, dict[str, Any]]]) -> list[AuditEvent]:
    events: list[AuditEvent] = []
    for action, user, info in specs:
        events = audit.append(events, action, info, user=user or "someone", time=T0)
    return events


@settings(max_examples=60, deadline=None)
@given(specs=event_specs)
def test_any_trail_round_trips(specs: list[tuple[str, str, dict[str, Any]]]) -> None:
    events = built(specs)
    assert audit.parse(audit.serialise(events)) == events


@settings(max_examples=60, deadline=None)
@given(specs=event_specs, data=st.data())
def test_any_change_to_an_event_before_the_last_is_detected(
    specs: list[tuple[str, str, dict[str, Any]]], data: st.DataObject
) -> None:
    events = built(specs)
    i = data.draw(st.integers(min_value=0, max_value=len(events) - 2))
    kind = data.draw(st.sampled_from(["action", "user", "time", "details"]))
    original = events[i]
    if kind == "details":
        changed = replace(original, details={**original.details, "tampered!": True})
    else:
        changed = replace(original, **{kind: getattr(original, kind) + "!"})
    tampered = [*events[:i], changed, *events[i + 1 :]]
    with pytest.raises(ValueError, match=f"event {i + 1}: hash chain broken"):
        audit.parse(audit.serialise(tampered))


@settings(max_examples=60, deadline=None)
@given(specs=event_specs, data=st.data())
def test_any_deletion_before_the_last_event_is_detected(
    specs: list[tuple[str, str, dict[str, Any]]], data: st.DataObject
) -> None:
    events = built(specs)
    i = data.draw(st.integers(min_value=0, max_value=len(events) - 2))
    with pytest.raises(ValueError, match="hash chain broken"):
        audit.parse(audit.serialise(events[:i] + events[i + 1 :]))


@settings(max_examples=60, deadline=None)
@given(specs=event_specs, data=st.data())
def test_any_reordering_is_detected(
    specs: list[tuple[str, str, dict[str, Any]]], data: st.DataObject
) -> None:
    events = built(specs)
    order = data.draw(st.permutations(range(len(events))))
    if list(order) == list(range(len(events))):
        return  # not a reordering
    with pytest.raises(ValueError, match="hash chain broken"):
        audit.parse(audit.serialise([events[j] for j in order]))


# -- append-only -----------------------------------------------------------------------


@settings(max_examples=40, deadline=None)
@given(specs=event_specs, extra=st.tuples(st.text(min_size=1, max_size=12), details))
def test_appending_keeps_the_earlier_bytes_as_a_prefix(
    specs: list[tuple[str, str, dict[str, Any]]], extra: tuple[str, dict[str, Any]]
) -> None:
    events = built(specs)
    before = audit.serialise(events)
    after = audit.serialise(audit.append(events, extra[0], extra[1], user="ana", time=T0))
    # Only the closing "\n]\n" of the old file is replaced: every earlier event keeps its bytes.
    assert after.startswith(before.removesuffix(b"\n]\n") + b",\n")
    assert after.endswith(b"\n]\n")


def test_appending_to_an_empty_trail() -> None:
    assert audit.serialise(trail(1)).startswith(b"[\n{")


# -- malformed files -------------------------------------------------------------------


def valid_event() -> dict[str, Any]:
    return json.loads(trail(1)[0].canonical())


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'{"events": []}', "must be a JSON list"),
        (json.dumps([{**valid_event(), "extra": 1}]).encode(), "expected exactly the keys"),
        (
            json.dumps([{k: v for k, v in valid_event().items() if k != "user"}]).encode(),
            "expected exactly the keys",
        ),
        (json.dumps([{**valid_event(), "user": 5}]).encode(), "must be strings"),
        (json.dumps([{**valid_event(), "details": [1]}]).encode(), "details must be an object"),
        (json.dumps(["not an event"]).encode(), "expected exactly the keys"),
        (b'[{"action": "a", "action": "b"}]', "duplicate JSON key"),
        (b'[{"details": {"x": NaN}}]', "NaN is not allowed"),
        (b"[\n", "invalid JSON"),
    ],
)
def test_rejects_malformed_trail(data: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        audit.parse(data)


def test_a_user_name_with_a_control_character_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """It would go into every trail and package, which readers refuse: say so at once."""
    monkeypatch.setenv("APE_USER", "mallory\x1b[2J")
    with pytest.raises(ParameterError) as caught:
        audit.current_user()
    assert "APE_USER" in str(caught.value) and "\\x1b" in str(caught.value)
    assert "\x1b" not in str(caught.value)


def test_export_with_a_control_character_in_the_user_leaves_no_package(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    record = api.run_simulation(
        ws, "v1_aflibercept_treat_and_extend", SimulationParameters(50, 1.0, 3), name="u"
    )
    monkeypatch.setenv("APE_USER", "eve\u202e")
    with pytest.raises(ParameterError):
        export_package(ws, record.sim_id, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
