"""What the CLI prints: the two consoles, JSON, tables and progress bars.

Names, ids, versions, messages and file names may come from a package or a stranger's file:
everything printed passes through `apesim.text` (`printable`, `json_safe`) and Rich markup
is escaped or avoided (`Text`), so no such text reaches the terminal raw.
"""

from __future__ import annotations

import json
import os
import sys
from typing import TYPE_CHECKING, Any, cast

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from apesim import api
from apesim.text import json_safe, printable

if TYPE_CHECKING:
    from rich.progress import Progress, TaskID

# Piped output is not cut to 80 columns: ids and names must survive intact.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def examples(*lines: str) -> str:
    """A command's examples, shown at the end of its --help (one command a line)."""
    return "Examples:\n\n" + "\n".join(f"  {escape(line)}" for line in lines)


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
        console=err,
        transient=True,
        disable=not err.is_terminal,
    )


def print_json(value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write(json_safe(text) + "\n")


def escaped(value: Any) -> str:
    """A value for Rich markup: printable, markup escaped."""
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
    table = Table(title="Summary statistics", show_header=False, title_justify="left")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for label, value in api.summary_rows(summary):
        table.add_row(Text(printable(label)), Text(printable(value)))
    return table


def record_table(rec: dict[str, Any]) -> Table:
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
        out.print(Text(f"✓ {printable(verdict.summary())}"))
    elif verdict.status == "unknown":
        sys.stderr.write(f"ape: warning: {printable(verdict.summary())}\n")
        sys.stderr.write(f"ape: {printable(verdict.hint())}\n")
    else:
        sys.stderr.write("ape: note: the package is not signed\n")
