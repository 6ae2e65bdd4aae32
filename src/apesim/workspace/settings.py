"""A workspace's settings (`settings.json` in its folder): how long imported simulations are
kept, and the limits packages are read under. Absent file, absent key: the default. The
same file holds the signature policy (`workspace/trust.py`); each module keeps the other's
keys when it writes.

`ape workspace` shows them and `ape workspace --set KEY=VALUE` changes one; the command
line's flags (`--max-unpacked-gib`, ...) override them for one command.
"""

from __future__ import annotations

import math
import os
import tempfile
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path
from typing import Any

from apesim.errors import ParameterError, WorkspaceError
from apesim.safeload import UnsafeTextError, dump_json, load_json

SETTINGS = "settings.json"


@dataclass(frozen=True)
class WorkspaceSettings:
    """The policy of one workspace. Limits are in the units people give them."""

    # Imported simulations older than this many days are what `ape gc` removes (None: no
    # policy; `ape gc --imported-older-than` still works). Own runs are never due.
    imported_retention_days: int | None = None
    # The reader's limits (docs/package-format.md, "Limits" justifies the defaults).
    max_unpacked_gib: float = 2.0
    max_entries: int = 64
    max_ratio: float = 200.0
    max_text_mib: float = 16.0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


_RANGES: dict[str, tuple[float, float]] = {
    "imported_retention_days": (1, 36_500),
    "max_unpacked_gib": (1e-6, 1024),
    "max_entries": (10, 65_535),
    "max_ratio": (1, 10_000),
    "max_text_mib": (1, 1024),
}
KEYS = tuple(f.name for f in fields(WorkspaceSettings))
# The signature policy's keys, in the same file (`workspace/trust.py` reads and checks them).
OTHER_KEYS = ("require_signature", "signing_key")


def check_value(key: str, value: Any) -> Any:
    """`value` for the setting `key`, checked (a `ParameterError` naming the key if not)."""
    if key not in KEYS:
        raise ParameterError(f"{key}: not a workspace setting (settings: {', '.join(KEYS)})")
    if value is None and key == "imported_retention_days":
        return None
    integer = key in ("imported_retention_days", "max_entries")
    ok = isinstance(value, int) if integer else isinstance(value, (int, float))
    if not ok or isinstance(value, bool) or not math.isfinite(value):
        raise ParameterError(f"{key}: expected a{' whole' if integer else ''} number")
    low, high = _RANGES[key]
    if not low <= value <= high:
        raise ParameterError(f"{key}: must lie between {low:g} and {high:g}")
    return value


def parse_setting(assignment: str) -> tuple[str, Any]:
    """`KEY=VALUE` as typed: VALUE a number, or `none` for no retention policy."""
    key, sep, text = assignment.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key:
        raise ParameterError(
            f"--set {assignment!r}: give KEY=VALUE, e.g. imported_retention_days=90"
        )
    value: Any
    if text.lower() in ("none", "off", ""):
        value = None
    else:
        try:
            value = int(text) if text.lstrip("-").isdigit() else float(text)
        except ValueError:
            raise ParameterError(f"{key}: {text!r} is not a number") from None
    return key, check_value(key, value)


def load_settings(root: Path) -> WorkspaceSettings:
    """The settings of the workspace at `root` (defaults where the file says nothing)."""
    path = root / SETTINGS
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return WorkspaceSettings()
    except OSError as exc:
        raise WorkspaceError(f"{path}: cannot read the settings ({exc.strerror})") from None
    try:
        data = load_json(raw.decode("utf-8"))
    except (UnicodeDecodeError, UnsafeTextError, ValueError) as exc:
        raise WorkspaceError(f"{path}: not valid JSON ({exc})", code="settings.invalid") from None
    if not isinstance(data, dict):
        raise WorkspaceError(f"{path}: must be a JSON object", code="settings.invalid")
    try:
        checked = {
            key: check_value(key, value) for key, value in data.items() if key not in OTHER_KEYS
        }
    except ParameterError as exc:
        raise WorkspaceError(f"{path}: {exc}", code="settings.invalid") from None
    return WorkspaceSettings(**checked)


def save_settings(root: Path, changes: dict[str, Any]) -> WorkspaceSettings:
    """Apply `changes` (already checked) to the workspace's settings and write them
    atomically; returns the new settings."""
    settings = replace(load_settings(root), **changes)
    try:
        kept = load_json((root / SETTINGS).read_bytes().decode("utf-8"))
    except FileNotFoundError:
        kept = {}
    others = {k: v for k, v in kept.items() if k in OTHER_KEYS}
    fd, name = tempfile.mkstemp(prefix=".settings.", suffix=".tmp", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(dump_json({**others, **settings.to_json()}))
        os.replace(name, root / SETTINGS)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return settings
