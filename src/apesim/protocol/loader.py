"""Load protocols from YAML safely, report errors in one line, and fingerprint them."""

from __future__ import annotations

import difflib
import hashlib
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from apesim.errors import ProtocolError
from apesim.limits import MAX_PROTOCOL_BYTES
from apesim.protocol.calendar import CALENDAR_REGIMEN_TYPES, AnyProtocol, CalendarProtocol
from apesim.protocol.schema import REGIMEN_TYPES, Protocol
from apesim.safeload import load_yaml, read_at_most


@dataclass(frozen=True)
class LoadedProtocol:
    """A validated protocol together with the exact text it was read from."""

    protocol: AnyProtocol
    text: str
    source: str

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.protocol)


def canonical_json(protocol: AnyProtocol) -> str:
    """The canonical serialisation: compact JSON of every field, defaults included, keys sorted."""
    return json.dumps(
        protocol.model_dump(mode="json"), sort_keys=True, separators=(",", ":"), allow_nan=False
    )


def fingerprint(protocol: AnyProtocol) -> str:
    """SHA-256 of the canonical serialisation: equal for protocols that mean the same."""
    return hashlib.sha256(canonical_json(protocol).encode("utf-8")).hexdigest()


def _field(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in CALENDAR_REGIMEN_TYPES]
    return ".".join(parts)


def _describe(error: dict[str, Any], data: Any) -> str:
    loc = tuple(error.get("loc", ()))
    kind = error.get("type", "")
    field = _field(loc)
    types = ", ".join(CALENDAR_REGIMEN_TYPES if "model" in data else REGIMEN_TYPES)
    if kind == "union_tag_invalid":
        tag = error.get("ctx", {}).get("tag")
        return f"regimen.type: unknown regimen {tag!r} (expected one of {types})"
    if kind == "union_tag_not_found":
        return f"{field}.type: missing field (one of {types})"
    if kind == "missing":
        return f"{field}: missing field"
    if kind == "extra_forbidden":
        return f"{field}: unknown field"
    msg = str(error.get("msg", "invalid value"))
    msg = msg.removeprefix("Value error, ")
    if not field:
        return msg
    if kind.endswith("_type") or kind in {"literal_error", "enum"}:
        value = error.get("input")
        return f"{field}: {msg[0].lower()}{msg[1:]} (got {type(value).__name__} {value!r})"
    return f"{field}: {msg[0].lower()}{msg[1:]}"


def parse_protocol(text: str, source: str = "<protocol>") -> LoadedProtocol:
    """Validate protocol YAML text; raise `ProtocolError` naming `source` and the field."""
    if len(text.encode("utf-8")) > MAX_PROTOCOL_BYTES:
        raise ProtocolError(f"{source}: protocol is larger than {MAX_PROTOCOL_BYTES} bytes")
    try:
        data = load_yaml(text)
    except ValueError as exc:
        raise ProtocolError(f"{source}: {exc}") from None
    return protocol_from_data(data, text, source)


def protocol_from_data(data: Any, text: str, source: str = "<protocol>") -> LoadedProtocol:
    """Validate already-parsed protocol YAML (for callers that parsed it under their own
    limits); `text` is kept as the protocol's exact text."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: a protocol must be a YAML mapping of fields")
    # A protocol names its model; one that does not is model 1.0 (every protocol written
    # before model 2.0 existed), so that every earlier simulation keeps reproducing.
    schema: type[Protocol] | type[CalendarProtocol] = (
        CalendarProtocol if "model" in data else Protocol
    )
    try:
        protocol = schema.model_validate(data)
    except ValidationError as exc:
        problems = list(
            dict.fromkeys(f"{source}: {_describe(dict(e), data)}" for e in exc.errors())
        )
        n = len(problems) - 1
        more = f" (and {n} more problem{'s' if n > 1 else ''})" if n else ""
        raise ProtocolError(f"{problems[0]}{more}", problems=problems) from None
    return LoadedProtocol(protocol=protocol, text=text, source=source)


def defaulted_fields(model: BaseModel, prefix: str = "") -> dict[str, Any]:
    """The fields a protocol file left out, by dotted path, with the default each falls back
    to (a section left out entirely is one entry)."""
    out: dict[str, Any] = {}
    for name in type(model).model_fields:
        value = getattr(model, name)
        path = f"{prefix}{name}"
        if name not in model.model_fields_set:
            out[path] = value.model_dump(mode="json") if isinstance(value, BaseModel) else value
        elif isinstance(value, BaseModel):
            out.update(defaulted_fields(value, f"{path}."))
    return out


def load_protocol(path: Path | str) -> LoadedProtocol:
    """Read and validate a protocol YAML file."""
    path = Path(path)
    try:
        raw = read_at_most(path, MAX_PROTOCOL_BYTES)  # a device (/dev/zero) has no end
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file") from None
    except OSError as exc:
        raise ProtocolError(f"{path}: cannot read protocol file ({exc.strerror})") from None
    if len(raw) > MAX_PROTOCOL_BYTES:
        raise ProtocolError(f"{path}: protocol is larger than {MAX_PROTOCOL_BYTES} bytes")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError(f"{path}: protocol file is not UTF-8 text") from None
    return parse_protocol(text, str(path))


def shipped_protocols() -> dict[str, str]:
    """Names (file stems) of the protocols shipped with APE, mapped to their YAML text."""
    folder = resources.files("apesim") / "protocols"
    out = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".yaml"):
            out[entry.name.removesuffix(".yaml")] = entry.read_text(encoding="utf-8")
    return out


def resolve_protocol(name_or_path: str, extra_dirs: tuple[Path, ...] = ()) -> LoadedProtocol:
    """A shipped protocol by name, a user protocol in `extra_dirs`, or a YAML file path."""
    shipped = shipped_protocols()
    if name_or_path in shipped:
        return parse_protocol(shipped[name_or_path], f"{name_or_path}.yaml")
    for folder in extra_dirs:
        candidate = folder / f"{name_or_path}.yaml"
        if candidate.is_file():
            return load_protocol(candidate)
    path = Path(name_or_path)
    if path.suffix in {".yaml", ".yml"} or path.exists():
        return load_protocol(path)
    names = ", ".join(sorted(shipped))
    own = sorted({p.stem for folder in extra_dirs for p in folder.glob("*.yaml")})
    mine = f"; in the workspace: {', '.join(own)}" if own else ""
    close = difflib.get_close_matches(name_or_path, [*shipped, *own], n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    raise ProtocolError(
        f"{name_or_path}: no such protocol{hint} (shipped: {names}{mine}; or give a YAML file)"
    )
