"""`ape report`: one self-contained HTML report of a simulation or a package."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Annotated

import typer

from apesim import api
from apesim.cli.lazy import commands
from apesim.cli.options import (
    BaseFileOpt,
    TrustOpt,
    WorkspaceOpt,
)
from apesim.cli.output import (
    escaped,
    examples,
    out,
    progress_bar,
)
from apesim.cli.resolve import (
    stored_workspace,
    workspace_if_any,
)
from apesim.errors import ApeError

app = commands()


@app.command(
    epilog=examples(
        "ape report SIM -o report.html",
        "ape report PACKAGE.zip -o report.html",
        "ape report APE_differential_SIM.zip --base BASE.zip -o report.html",
    ),
)
def report(
    source: Annotated[
        str, typer.Argument(help="A simulation (id, id prefix or name) or a package file.")
    ],
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")],
    base: BaseFileOpt = None,
    trust_file: TrustOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Write one self-contained HTML report: headline results, charts, summary statistics,
    protocol, audit trail and checks. It opens in any browser, with no network and no
    Python; a package is validated and read in place, never imported."""
    if source.lower().endswith(".zip") and not Path(source).is_file():
        raise ApeError(f"{source}: no such package file", code="source.missing")
    package = Path(source).is_file()
    with progress_bar("Writing the report") as bar:
        bar.add_task("report", total=None)
        written = api.write_report(
            source,
            output,
            ws=functools.partial(workspace_if_any, workspace)
            if package
            else stored_workspace(workspace),
            base=base,
            trust=api.trust_list(api.workspace_location(workspace).path, trust_file),
        )
    out.print(f"[green]✓[/] {escaped(written)} ({written.stat().st_size:,} bytes)")
