"""Text from outside APE made safe to show: in a terminal, in JSON, in Markdown.

A package (or a simulation an earlier APE imported, or a file name) can hold any Unicode.
Shown raw, an ESC or C1 sequence drives the terminal, a bidirectional override (U+202E)
reverses what follows, a newline forges a second line, and Markdown becomes images and
links. Every such text passes through one of these functions before it is printed:

- `printable`: control characters (C0, DEL, C1), format characters (bidirectional
  overrides and isolates, zero-width characters, ...), lone surrogates and the line and
  paragraph separators shown as visible escapes (`\\x1b`, `\\u202e`); everything else as is.
- `json_safe`: the same characters as JSON escapes (`\\u001b`), so the JSON means the same.
- `markdown_literal`: `printable`, then every ASCII punctuation character backslash-escaped,
  so that Markdown shows the text as written.

`first_control` finds the first such character, for the rules that refuse them in ids,
versions and names (docs/package-format.md, "Text").
"""

from __future__ import annotations

import re
import unicodedata

# Unicode categories that are never shown as themselves: controls, format characters
# (bidirectional controls, zero-width characters, tags), surrogates, line/paragraph separators.
_CONTROL_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ASCII_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SHORT = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
_MARKDOWN_SPECIAL = re.compile(r"""([!"#$%&'()*+,\-./:;<=>?@\[\\\]^_`{|}~])""")


def is_control(char: str) -> bool:
    """Whether one character must not be shown as itself (see the module's docstring)."""
    code = ord(char)
    if 0x20 <= code < 0x7F:
        return False
    if code < 0xA0:  # C0, DEL and C1
        return True
    return unicodedata.category(char) in _CONTROL_CATEGORIES


def first_control(text: str) -> str | None:
    """The first character of `text` that must not be shown as itself, or None."""
    if text.isascii():
        found = _ASCII_CONTROL.search(text)
        return found.group() if found else None
    return next((c for c in text if is_control(c)), None)


def escape_char(char: str) -> str:
    """One character as a visible escape: `\\n`, `\\x1b`, `\\u202e`, `\\U000e0001`."""
    if char in _SHORT:
        return _SHORT[char]
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def printable(text: object, *, newlines: bool = False) -> str:
    """`str(text)` safe for a terminal or a page: every control, format or separator
    character shown as a visible escape. With `newlines`, "\\n" and "\\t" are kept (for
    multi-line text such as a protocol's description); a single-line field never keeps them."""
    value = str(text)
    if value.isascii() and value.isprintable():
        return value
    keep = "\n\t" if newlines else ""
    return "".join(escape_char(c) if is_control(c) and c not in keep else c for c in value)


def json_safe(text: str) -> str:
    """JSON text with the characters `printable` escapes written as JSON escapes (`\\u202e`,
    surrogate pairs beyond U+FFFF): the same JSON value, nothing raw reaches a terminal.
    Outside strings JSON is ASCII, so only characters inside strings are touched."""
    if text.isascii() and first_control(text) is None:
        return text
    out = []
    for c in text:
        if c not in "\n\t" and is_control(c):  # JSON's own layout keeps its newlines
            code = ord(c)
            if code > 0xFFFF:
                code -= 0x10000
                out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
            else:
                out.append(f"\\u{code:04x}")
        else:
            out.append(c)
    return "".join(out)


def markdown_literal(text: object) -> str:
    """`text` for a Markdown-rendering call (st.title, st.info, st.table, ...), shown as
    written: `printable`, then every ASCII punctuation character backslash-escaped, which
    CommonMark renders as the character itself. No image, link, autolink, emphasis, heading,
    list, table, HTML, LaTeX or colour directive can form."""
    return _MARKDOWN_SPECIAL.sub(r"\\\1", printable(text))


__all__ = [
    "escape_char",
    "first_control",
    "is_control",
    "json_safe",
    "markdown_literal",
    "printable",
]
