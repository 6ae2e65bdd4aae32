"""Simulation ids and memorable names."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

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


def new_sim_id(now: datetime) -> str:
    """`sim-YYYYMMDD-HHMMSS-xxxxxx`: sortable by time, unique by its random tail."""
    return f"sim-{now:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def memorable_name() -> str:
    return f"{secrets.choice(_ADJECTIVES)}-{secrets.choice(_NOUNS)}"
