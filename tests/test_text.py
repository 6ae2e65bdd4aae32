"""Text from outside APE is shown escaped: in a terminal, in JSON and in Markdown."""

from __future__ import annotations

import json

import pytest
from markdown_it import MarkdownIt

from apesim.text import first_control, json_safe, markdown_literal, printable

HOSTILE = {
    "esc": ("a\x1b[2Jb", "a\\x1b[2Jb"),
    "c1_csi": ("a\x9b31mb", "a\\x9b31mb"),
    "del": ("a\x7fb", "a\\x7fb"),
    "nul": ("a\x00b", "a\\x00b"),
    "newline": ("a\nb", "a\\nb"),
    "carriage_return": ("a\rb", "a\\rb"),
    "tab": ("a\tb", "a\\tb"),
    "rtl_override": ("a\u202eb", "a\\u202eb"),
    "lrm_embedding": ("a\u202ab", "a\\u202ab"),
    "isolate": ("a\u2066b\u2069", "a\\u2066b\\u2069"),
    "line_separator": ("a\u2028b", "a\\u2028b"),
    "paragraph_separator": ("a\u2029b", "a\\u2029b"),
    "zero_width_space": ("a\u200bb", "a\\u200bb"),
    "tag_character": ("a\U000e0041b", "a\\U000e0041b"),
    "lone_surrogate": ("a\ud800b", "a\\ud800b"),
}


@pytest.mark.parametrize("kind", HOSTILE)
def test_printable_escapes_every_control_format_and_separator_character(kind: str) -> None:
    raw, shown = HOSTILE[kind]
    assert printable(raw) == shown
    assert first_control(raw) is not None


@pytest.mark.parametrize(
    "text", ["plain", "café – naïve ≥ 15 letters", "日本語", "emoji 👍", "C:\\Users\\x", ""]
)
def test_printable_leaves_ordinary_text_alone(text: str) -> None:
    assert printable(text) == text
    assert first_control(text) is None


def test_printable_keeps_newlines_only_when_asked() -> None:
    assert printable("line 1\nline\x1b 2\t.", newlines=True) == "line 1\nline\\x1b 2\t."
    assert printable("line 1\nline 2") == "line 1\\nline 2"


def test_printable_is_idempotent() -> None:
    once = printable("a\x1b\u202e\nb")
    assert printable(once) == once


def test_json_safe_escapes_in_json_and_keeps_the_value() -> None:
    value = {"name": "a\x1b[31m\x9b\u202e\u2028\U000e0041b", "ok": "café\n"}
    text = json_safe(json.dumps(value, indent=2, ensure_ascii=False))
    assert first_control(text.replace("\n", "")) is None
    assert "café" in text
    assert json.loads(text) == value


@pytest.mark.parametrize(
    "text",
    [
        "![x](http://evil/x.png) [link](http://evil)",
        "**bold** _italic_ `code` ~~struck~~",
        "<img src=x onerror=alert(1)> <b>html</b>",
        "# heading",
        "1. a list",
        "- a list",
        "> a quote",
        "| a | table |",
        "$x^2$ :red[coloured] :material/home:",
        "<http://evil> www.evil.example user@evil.example",
        "back\\slash \\*",
    ],
)
def test_markdown_literal_renders_as_written(text: str) -> None:
    html = (
        MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown_literal(text))
    )
    assert html.startswith("<p>") and html.count("<") == 2, html  # one paragraph, no markup
    shown = html.removeprefix("<p>").removesuffix("</p>\n")
    assert shown == text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def test_markdown_literal_escapes_controls_too() -> None:
    assert markdown_literal("a\x1bb") == "a\\\\x1bb"  # the backslash of \x1b, escaped
