"""Simulation ids and memorable names."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from apesim.text import first_control

_ADJECTIVES = (
    "amber",
    "bold",
    "brisk",
    "calm",
    "clear",
    "crisp",
    "eager",
    "fair",
    "gentle",
    "golden",
    "keen",
    "lively",
    "lucid",
    "mellow",
    "nimble",
    "proud",
    "quiet",
    "rapid",
    "serene",
    "sharp",
    "steady",
    "sunny",
    "swift",
    "tidy",
    "vivid",
    "warm",
    "wise",
    "young",
    "zesty",
    "noble",
)
_NOUNS = (
    "falcon",
    "harbor",
    "meadow",
    "lantern",
    "otter",
    "willow",
    "comet",
    "summit",
    "river",
    "heron",
    "maple",
    "canyon",
    "beacon",
    "orchid",
    "pebble",
    "quartz",
    "raven",
    "spruce",
    "tundra",
    "valley",
    "walnut",
    "yarrow",
    "badger",
    "cedar",
    "delta",
    "ember",
    "fjord",
    "glacier",
    "iris",
    "juniper",
)

SIM_ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
NAME_MAX_LENGTH = 200  # the longest name a package may hold
RUN_NAME_MAX_LENGTH = 100  # the longest name a new simulation may be given


def is_valid_sim_name(name: str, max_length: int = NAME_MAX_LENGTH) -> bool:
    """Whether `name` may be a simulation's name: 1 to `max_length` characters, none of them
    a control, format or separator character (tab, newline, ESC, C1, bidirectional
    overrides, ...: `apesim.text.first_control`). Running a simulation and reading a package
    both apply it, so every simulation run can be exported and imported again."""
    return 0 < len(name) <= max_length and first_control(name) is None


def new_sim_id(now: datetime) -> str:
    """`sim-YYYYMMDD-HHMMSS-xxxxxx`: sortable by time, unique by its random tail."""
    return f"sim-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def memorable_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}"
