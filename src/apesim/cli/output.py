"""What the CLI prints: the two consoles, JSON, tables and progress bars.

Names, ids, versions, messages and file names may come from a package or a stranger's file:
everything printed passes through `apesim.text` (`printable`, `json_safe`) and Rich markup
is escaped or avoided (`Text`), so no such text reaches the terminal raw.
"""

from __future__ import annotations

import json
import os
import re
import sys
from typing import TYPE_CHECKING, Any, cast

from apesim import api
from apesim.text import json_safe, printable

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table

# What may make Rich treat a stream as a terminal, or not, whatever isatty says.
_RICH_ENV = ("FORCE_COLOR", "NO_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "JUPYTER_COLUMNS")


class _LazyConsole:
    """A Rich console made on first use: a command that writes a few lines to a file or a
    pipe (`ape export`, in scripts) loads no Rich, about 70 ms of its start."""

    def __init__(self, *, stderr: bool = False) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            # Piped output is not cut to 80 columns: ids and names must survive intact.
            width = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
            self._console = (
                Console(stderr=True, highlight=False, soft_wrap=True)
                if self._stderr
                else Console(highlight=False, soft_wrap=True, width=width)
            )
        return self._console

    @property
    def is_terminal(self) -> bool:
        if self._console is None and not any(name in os.environ for name in _RICH_ENV):
            return (sys.stderr if self._stderr else sys.stdout).isatty()
        return bool(self.console.is_terminal)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.console, name)


out = _LazyConsole()
err = _LazyConsole(stderr=True)


def line(text: str, *, ok: bool = False) -> None:
    """A line on stdout (made printable), after a check mark if `ok`: through Rich on a
    terminal (the mark green), written as it is to a file or a pipe."""
    text = ("✓ " if ok else "") + printable(text)
    if out.is_terminal:
        from rich.text import Text

        shown = Text(text)
        if ok:
            shown.stylize("green", 0, 1)
        out.print(shown)
    else:
        sys.stdout.write(text + "\n")


# What `rich.markup.escape` escapes: a tag's opening bracket (and the backslashes before it).
_MARKUP_TAG = re.compile(r"(\\*)(\[[a-z#/@][^[]*?])")


def escape_markup(text: str) -> str:
    """`rich.markup.escape` without importing Rich (every command's help builds its
    examples when its module loads); tests/test_cli.py keeps the two equal."""
    text = _MARKUP_TAG.sub(lambda m: f"{m.group(1)}{m.group(1)}\\{m.group(2)}", text)
    return text + "\\" if text.endswith("\\") and not text.endswith("\\\\") else text


def examples(*lines: str) -> str:
    """A command's examples, shown at the end of its --help (one command a line)."""
    return "Examples:\n\n" + "\n".join(f"  {escape_markup(line)}" for line in lines)


class QuietBar:
    """The progress bar of a command whose stderr is no terminal: it shows nothing, so
    Rich's progress module is not even loaded."""

    def __enter__(self) -> QuietBar:
        return self

    def __exit__(self, *_: object) -> None:
        return None

    def add_task(self, description: str, total: float | None = None) -> TaskID:
        return cast("TaskID", 0)

    def update(self, task: TaskID, **_: Any) -> None:
        return None


def progress_bar(what: str, unit: str | None = None) -> Progress | QuietBar:
    """A transient progress bar on stderr, shown only on a terminal (no stray output in a
    file or a pipe): done of total `unit` when given, else a percentage."""
    if not err.is_terminal:
        return QuietBar()
    from rich.progress import (  # only commands that show progress load it
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    class _Progress(Progress):
        """rich 13 prints a blank line when even a disabled bar stops: not here."""

        def stop(self) -> None:
            if not self.disable:
                super().stop()

    counts = (
        (MofNCompleteColumn(), TextColumn(unit))
        if unit is not None
        else (TextColumn("{task.percentage:>3.0f}%"),)
    )
    return _Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        *counts,
        TimeElapsedColumn(),
        console=err.console,
        transient=True,
        disable=not err.is_terminal,
    )


def print_json(value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write(json_safe(text) + "\n")


def escaped(value: Any) -> str:
    """A value for Rich markup: printable, markup escaped."""
    from rich.markup import escape

    return escape(printable(value))


def write_text(text: str) -> None:
    """A file's text (YAML) on stdout: as is into a file or a pipe, escaped on a terminal
    (newlines and tabs kept)."""
    if sys.stdout.isatty():
        text = printable(text, newlines=True)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def fmt_value(value: Any) -> str:
    """A metadata value: numbers with thousands separators, text printable."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return printable(value)


def size_text(n: int) -> str:
    """Bytes as people read them (SI units, as the app writes them: 91.5 kB)."""
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n_units = n / 1000 ** ("kMGT".index(unit[0]) + 1)
        if n_units < 1000 or unit == "TB":
            return f"{n_units:.1f} {unit}"
    raise AssertionError("unreachable")


def summary_table(summary: api.Summary) -> Table:
    """The summary statistics as the app shows them (`api.summary_rows`)."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title="Summary statistics", show_header=False, title_justify="left")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for label, value in api.summary_rows(summary):
        table.add_row(Text(printable(label)), Text(printable(value)))
    return table


def record_table(rec: dict[str, Any]) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(f"Simulation {printable(rec['sim_id'])}"),
        show_header=False,
        title_justify="left",
    )
    table.add_column("field")
    table.add_column("value")
    for key, value in rec.items():
        if value is not None:
            table.add_row(Text(printable(key)), Text(fmt_value(value)))
    return table


def report_table(report: api.PackageReport) -> Table:
    from rich.table import Table
    from rich.text import Text

    table = Table(
        title=Text(f"Validation of {printable(report.source_name)}"), title_justify="left"
    )
    table.add_column("", width=2)
    table.add_column("check")
    table.add_column("result")
    for c in report.checks:
        mark = "[green]✓[/]" if c.passed else "[red]✗[/]" if c.passed is False else "[dim]·[/]"
        result = c.message if c.passed is False else ("passed" if c.passed else "not run")
        table.add_row(mark, Text(printable(c.label)), Text(printable(result)))
    return table


def show_verdict(report: api.PackageReport) -> None:
    """The signature verdict: trusted on stdout, unknown as a warning with the way to trust
    it, unsigned as a note on stderr."""
    verdict = report.verdict
    if verdict is None:
        return
    if verdict.status == "trusted":
        line(verdict.summary(), ok=True)
    elif verdict.status == "unknown":
        sys.stderr.write(f"ape: warning: {printable(verdict.summary())}\n")
        sys.stderr.write(f"ape: {printable(verdict.hint())}\n")
    else:
        sys.stderr.write("ape: note: the package is not signed\n")
