"""The workspace's signature policy: the keys it trusts (`trusted_keys.json`) and its
settings (`settings.json`: whether imports require a trusted signature, and the key the app
signs with). Both are small JSON files replaced atomically; a trust file given with
`--trust FILE` has the same shape as `trusted_keys.json`.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from apesim.errors import KeyringError
from apesim.safeload import UnsafeTextError, load_json
from apesim.text import first_control

TRUST_FILE = "trusted_keys.json"
SETTINGS_FILE = "settings.json"
_MAX_BYTES = 1024 * 1024


@dataclass(frozen=True)
class TrustedKey:
    name: str
    key_id: str
    public_key: str
    added: str


@dataclass(frozen=True)
class Settings:
    require_signature: bool = False
    signing_key: str | None = None  # a keyring name: the app signs its downloads with it


def _read_json(path: Path) -> Any:
    try:
        if path.stat().st_size > _MAX_BYTES:
            raise KeyringError(f"{path}: larger than {_MAX_BYTES:,} bytes", code="trust.invalid")
        return load_json(path.read_bytes(), max_depth=4)
    except FileNotFoundError:
        return None
    except (OSError, UnsafeTextError) as exc:
        raise KeyringError(f"{path}: cannot be read ({exc})", code="trust.invalid") from None


def _write_json(path: Path, value: Any) -> None:
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(value, indent=2, sort_keys=True) + "\n")
        os.replace(name, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise


def load_trust(path: Path) -> list[TrustedKey]:
    """The keys a trust file lists (none when it does not exist); every entry checked."""
    from apesim.package.signature import key_id, parse_public_key

    raw = _read_json(path)
    if raw is None:
        return []
    entries = raw.get("keys") if isinstance(raw, dict) else None
    if not isinstance(entries, list):
        raise KeyringError(f'{path}: expected {{"keys": [...]}}', code="trust.invalid")
    keys = []
    for i, entry in enumerate(entries):
        try:
            name, public = entry["name"], entry["public_key"]
            if not isinstance(name, str) or first_control(name) is not None or not name:
                raise ValueError("name: plain text expected")
            kid = key_id(parse_public_key(public))
        except (KeyError, TypeError, ValueError) as exc:
            raise KeyringError(f"{path}: keys[{i}]: {exc}", code="trust.invalid") from None
        keys.append(TrustedKey(name[:200], kid, public, str(entry.get("added", ""))[:40]))
    return keys


def trust_map(keys: list[TrustedKey]) -> dict[str, str]:
    """Key id -> the name it is trusted under."""
    return {k.key_id: k.name for k in keys}


def trust_key(root: Path, public_key: str, name: str) -> TrustedKey:
    """Add a key to the workspace's trust list (again under a new name: renamed)."""
    from apesim.package.signature import key_id, parse_public_key

    try:
        kid = key_id(parse_public_key(public_key))
    except ValueError as exc:
        raise KeyringError(f"{public_key[:80]!r}: {exc}", code="trust.invalid") from None
    if not name or first_control(name) is not None or len(name) > 200:
        shown = repr(name[:80]) + ("..." if len(name) > 80 else "")  # one line, not a page
        raise KeyringError(f"{shown}: a name is 1 to 200 printable characters", code="keys.name")
    path = root / TRUST_FILE
    keys = [k for k in load_trust(path) if k.key_id != kid]
    added = TrustedKey(name, kid, public_key, datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"))
    keys.append(added)
    _write_json(path, {"keys": [asdict(k) for k in keys]})
    return added


def untrust_key(root: Path, ref: str) -> TrustedKey:
    """Remove the trusted key named `ref`, or whose key id starts with `ref` (8+ digits)."""
    path = root / TRUST_FILE
    keys = load_trust(path)
    found = [k for k in keys if k.name == ref or (len(ref) >= 8 and k.key_id.startswith(ref))]
    if len(found) != 1:
        raise KeyringError(
            f"{ref!r}: {'no' if not found else 'more than one'} trusted key of that name or "
            "key id (`ape keys list` shows them)",
            code="trust.missing",
        )
    _write_json(path, {"keys": [asdict(k) for k in keys if k != found[0]]})
    return found[0]


def load_settings(root: Path) -> Settings:
    raw = _read_json(root / SETTINGS_FILE)
    if not isinstance(raw, dict):
        return Settings()
    key = raw.get("signing_key")
    return Settings(
        require_signature=raw.get("require_signature") is True,
        signing_key=key if isinstance(key, str) and key else None,
    )


def save_settings(root: Path, settings: Settings) -> None:
    """Write the signature settings, keeping the file's other settings (retention and
    limits: `workspace/settings.py`)."""
    raw = _read_json(root / SETTINGS_FILE)
    others = raw if isinstance(raw, dict) else {}
    _write_json(root / SETTINGS_FILE, {**others, **asdict(settings)})
