"""Protocol specifications: the schema, loading from YAML, and the shipped library."""

from apesim.protocol.loader import (
    LoadedProtocol,
    canonical_json,
    fingerprint,
    load_protocol,
    parse_protocol,
    resolve_protocol,
)
from apesim.protocol.schema import STATES, Protocol

__all__ = [
    "STATES",
    "LoadedProtocol",
    "Protocol",
    "canonical_json",
    "fingerprint",
    "load_protocol",
    "parse_protocol",
    "resolve_protocol",
]
