"""An error message is always one line of printable text, whatever it quotes."""

from __future__ import annotations

import pytest

from apesim.errors import (
    ApeError,
    DuplicateImportError,
    DuplicateSimulationError,
    PackageError,
    PackageFormatError,
    ProtocolError,
    SimulationNotFoundError,
    WorkspaceError,
)

FORGED = "sim \x1b[2J\x1b[31mname\u202e\nape: error: forged\x9b"


@pytest.mark.parametrize(
    "error",
    [
        ApeError(FORGED),
        ProtocolError(FORGED),
        PackageFormatError(f"manifest.json: {FORGED}", code="manifest.schema"),
        SimulationNotFoundError(f"no simulation {FORGED!s}"),
        DuplicateImportError(FORGED, existing_sim_id="sim-1"),
        DuplicateSimulationError(f"{FORGED}: already in the workspace"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_an_error_message_is_one_printable_line(error: ApeError) -> None:
    message = str(error)
    assert "\n" not in message and "\x1b" not in message and "\u202e" not in message
    assert "\x9b" not in message
    assert "\\x1b[2J" in message and "\\n" in message and "\\u202e" in message


def test_an_error_whose_args_are_replaced_is_still_one_line() -> None:
    error = ApeError("fine")
    error.args = ("two\nlines",)
    assert str(error) == "two\\nlines"


def test_an_error_message_without_controls_is_unchanged() -> None:
    message = "protocol.yaml: name: must be 1 to 200 characters (café, ≥ 15)"
    assert str(ApeError(message)) == message


def test_a_duplicate_simulation_is_a_workspace_error_with_a_stable_code() -> None:
    error = DuplicateSimulationError("sim-1: already in the workspace")
    assert isinstance(error, WorkspaceError) and not isinstance(error, PackageError)
    assert error.code == "duplicate"
