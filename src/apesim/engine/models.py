"""The models APE can run, by the name and version a protocol declares, and the engine
version each records in a simulation's metadata. Model 1.0 stays here unchanged so that
every simulation made with it reproduces bit for bit; new protocols use model 2.0.
"""

from __future__ import annotations

from dataclasses import dataclass

from apesim.protocol.calendar import CALENDAR_MODEL, CALENDAR_VERSION, AnyProtocol
from apesim.protocol.schema import MARKOV_MODEL, MARKOV_VERSION, model_of


@dataclass(frozen=True)
class Model:
    """A model: its name and version (in the protocol) and its engine version (recorded)."""

    name: str
    version: str
    engine_version: str
    summary: str

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


MODELS: dict[tuple[str, str], Model] = {
    (MARKOV_MODEL, MARKOV_VERSION): Model(
        MARKOV_MODEL, MARKOV_VERSION, "1.0.0", "visit-driven Markov model (APE 1.x)"
    ),
    (CALENDAR_MODEL, CALENDAR_VERSION): Model(
        CALENDAR_MODEL, CALENDAR_VERSION, "2.0.0", "calendar-time disease and vision model"
    ),
}
DEFAULT_MODEL = MODELS[(CALENDAR_MODEL, CALENDAR_VERSION)]


def model_for(protocol: AnyProtocol) -> Model:
    """The model a protocol is written for."""
    return MODELS[model_of(protocol)]


def engine_major(engine_version: str) -> str | None:
    """The major part of a recorded engine version ("1" of "1.0.0"), None if not ours."""
    head = engine_version.split(".", 1)[0]
    return head if head.isdigit() else None
