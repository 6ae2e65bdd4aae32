"""Ids and names from an earlier package, which that exporter did not sanitise: refused when
they look like a path, replaced by a derived id when they are not one of ours, and quoted
safely when a message shows them."""

from __future__ import annotations

import hashlib
import re

_PATH_LIKE = re.compile(r"[/\\\x00-\x1f\x7f]|^\.\.?$|^~|^[A-Za-z]:")


def shown(value: object, limit: int = 60) -> str:
    """A value from the package, quoted and shortened, safe to put in a message."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def path_like(value: str) -> bool:
    """True for an id or name that looks like a path: separators, control characters, '.',
    '..', a drive letter or a leading '~' (a doctored package)."""
    return bool(_PATH_LIKE.search(value)) or ".." in value.split("/")


def derived_sim_id(original: str) -> str:
    """A safe, stable simulation id for an earlier id that is not one (see SIM_ID_PATTERN)."""
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", original).strip("-_")[:40].strip("-_")
    digest = hashlib.sha256(original.encode("utf-8", "surrogatepass")).hexdigest()[:10]
    return f"earlier-{slug}-{digest}" if slug else f"earlier-{digest}"
