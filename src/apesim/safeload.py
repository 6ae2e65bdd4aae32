"""Strict parsers for untrusted text: YAML without anchors, aliases or duplicate keys, JSON
without duplicate keys or non-finite numbers, both with a nesting-depth limit.

They raise a subclass of `UnsafeTextError` (a `ValueError`) with a short reason and a
`kind` naming the rule; callers wrap it in the error of their domain (`ProtocolError`,
`PackageFormatError`) together with the file name.
"""

from __future__ import annotations

import functools
import json
import math
import os
from typing import Any

MAX_DEPTH = 32


class UnsafeTextError(ValueError):
    """Text that a strict parser refuses; `kind` says which rule it broke."""

    kind = "invalid"


class InvalidSyntaxError(UnsafeTextError):
    kind = "invalid"


class TooDeepError(UnsafeTextError):
    kind = "depth"


class DuplicateKeyError(UnsafeTextError):
    kind = "duplicate_key"


class NonFiniteNumberError(UnsafeTextError):
    kind = "nonfinite"


class AliasError(UnsafeTextError):
    kind = "alias"


@functools.cache
def _no_alias_loader() -> type[Any]:
    """The loader class, made on first use: PyYAML loads only for the commands that read
    YAML (a protocol, a sweep file), not for every one that reads JSON."""
    import yaml

    class _NoAliasSafeLoader(yaml.SafeLoader):
        """PyYAML's safe loader, refusing anchors and aliases (no billion-laughs expansion)."""

        def compose_node(self, parent: Any, index: Any) -> Any:
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                raise AliasError(f"YAML aliases are not allowed (line {event.start_mark.line + 1})")
            event = self.peek_event()
            if getattr(event, "anchor", None):
                raise AliasError(f"YAML anchors are not allowed (line {event.start_mark.line + 1})")
            return super().compose_node(parent, index)

        def construct_mapping(self, node: Any, deep: bool = False) -> Any:
            # PyYAML keeps the last of two equal keys silently; refuse them instead.
            seen: set[Any] = set()
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    key = self.construct_object(key_node, deep=deep)
                    if key in seen:
                        line = key_node.start_mark.line + 1
                        raise DuplicateKeyError(f"duplicate YAML key {key!r} (line {line})")
                    seen.add(key)
            return super().construct_mapping(node, deep=deep)

    return _NoAliasSafeLoader


def _check_depth(value: Any, max_depth: int) -> None:
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > max_depth:
            raise TooDeepError(f"nested more than {max_depth} levels deep")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)


def read_at_most(path: str | os.PathLike[str], limit: int) -> bytes:
    """The bytes of the file at `path`, at most `limit + 1` of them: more than `limit` and
    the caller refuses it. A size from `stat` is not enough: a device or a pipe
    (/dev/zero) has none, and reading it whole never ends."""
    with open(path, "rb") as fh:
        return fh.read(limit + 1)


def load_yaml(text: str | bytes, *, max_depth: int = MAX_DEPTH) -> Any:
    """Parse YAML with the safe loader; refuse anchors, aliases and deep nesting."""
    import yaml

    try:
        loader = _no_alias_loader()(text)
        try:
            data = loader.get_single_data()
        finally:
            loader.dispose()
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InvalidSyntaxError(f"invalid YAML{where}: {problem}") from None
    except RecursionError:
        raise TooDeepError(f"nested more than {max_depth} levels deep") from None
    _check_depth(data, max_depth)
    return data


def _refuse_constant(name: str) -> Any:
    raise NonFiniteNumberError(f"JSON number {name} is not allowed")


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise DuplicateKeyError(f"duplicate JSON key {key!r}")
        out[key] = value
    return out


def load_json(
    text: str | bytes, *, max_depth: int = MAX_DEPTH, nonfinite_as_null: bool = False
) -> Any:
    """Parse JSON refusing duplicate keys, NaN/Infinity (or reading them as None when
    `nonfinite_as_null`) and nesting deeper than `max_depth`."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise InvalidSyntaxError("not UTF-8 text") from None
    # Depth is bounded before parsing so that a deeply nested document cannot exhaust the stack.
    depth = peak = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            peak = max(peak, depth)
            if peak > max_depth:
                raise TooDeepError(f"nested more than {max_depth} levels deep")
        elif ch in "]}":
            depth -= 1
    try:
        value = json.loads(
            text,
            object_pairs_hook=_no_duplicates,
            parse_constant=(lambda _: None) if nonfinite_as_null else _refuse_constant,
            parse_float=_null_float if nonfinite_as_null else _finite_float,
        )
    except json.JSONDecodeError as exc:
        raise InvalidSyntaxError(f"invalid JSON at line {exc.lineno}: {exc.msg}") from None
    except UnsafeTextError:
        raise
    except ValueError as exc:  # e.g. an integer beyond Python's 4,300-digit conversion limit
        raise InvalidSyntaxError(f"invalid JSON: {exc}") from None
    _check_strings(value)
    return value


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):  # 1e999 overflows to infinity without being "Infinity"
        raise NonFiniteNumberError(f"JSON number {text[:40]} is not finite")
    return value


def _null_float(text: str) -> float | None:
    value = float(text)
    return value if math.isfinite(value) else None


def _check_strings(value: Any) -> None:
    """Refuse lone surrogates (escaped as \\ud800 in JSON): they are not Unicode text and
    cannot be written back as UTF-8."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                raise InvalidSyntaxError("JSON string holds a lone surrogate") from None
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def dump_json(value: Any) -> str:
    """Stable, human-readable JSON (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False, allow_nan=False) + "\n"
