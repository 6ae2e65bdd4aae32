"""`ape sweep`: run every draw of a sweep file, report, list and export sweeps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup

from apesim import api
from apesim.cli.options import (
    JsonOpt,
    SchedulerOpt,
    SweepIdArg,
    WorkersOpt,
    WorkspaceOpt,
)
from apesim.cli.output import (
    err,
    escaped,
    examples,
    out,
    print_json,
    progress_bar,
)
from apesim.cli.resolve import (
    open_workspace,
    parse_created,
    stored_workspace,
)
from apesim.text import printable


class _SweepGroup(TyperGroup):
    """`ape sweep SWEEP.yaml` is `ape sweep run SWEEP.yaml`: a first word that is no
    subcommand (and no option) is the sweep file."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(
    name="sweep",
    add_completion=False,  # only `ape` itself offers completion
    cls=_SweepGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Scenario sweeps: run every draw of a sweep file, report, export.",
    epilog=examples(
        "ape sweep psa.yaml",
        "ape sweep psa.yaml --workers 2",
        "ape sweep report sweep-0123456789ab --json",
        "ape sweep export sweep-0123456789ab -o exports/",
    ),
)


@sweep_app.command(
    "run",
    epilog=examples(
        "ape sweep psa.yaml",
        "ape sweep run psa.yaml --workers 2 --json",
        "ape sweep psa.yaml --scheduler tcp://10.0.0.5:8786",
    ),
)
def sweep_run(
    sweep_file: Annotated[Path, typer.Argument(help="The sweep file (YAML).")],
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run every draw of a sweep file not yet in the workspace (each an ordinary simulation
    with its own seed and exact protocol); re-running the same file resumes."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    cluster = api.ClusterOptions.chosen(workers, scheduler)
    ws = open_workspace(workspace)
    plan = api.plan_sweep(ws, sweep_file)
    bar = Progress(
        TextColumn(f"[bold]Sweep {plan.sweep_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("draws"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err.console,
        transient=True,
        disable=not err.is_terminal,
    )
    with bar:
        task = bar.add_task("sweep", total=len(plan.draws))
        result = api.run_sweep(
            ws,
            plan,
            cluster=cluster,
            progress=lambda done, total: bar.update(task, completed=done),
        )
    if as_json:
        print_json(result.to_json())
        return
    out.print(
        f"[green]✓[/] {result.sweep_id} ({escaped(plan.title)}): {result.planned} draws, "
        f"{result.ran} run now, {result.skipped} complete already, in {result.seconds:.1f} s"
    )
    out.print(f"Report: ape sweep report {result.sweep_id}")


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


@sweep_app.command(
    "report",
    epilog=examples("ape sweep report sweep-0123456789ab", "ape sweep report SWEEP_ID --json"),
)
def sweep_report(
    sweep_id: SweepIdArg,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per outcome, the mean and 95% interval across the completed draws, and the varied
    parameters ranked by how strongly they move it (Spearman's rank correlation)."""
    report = api.sweep_report(stored_workspace(workspace), sweep_id)
    if as_json:
        print_json(report.to_json())
        return
    out.print(
        f"{report.sweep_id} ({escaped(report.name or report.protocol_name)}): "
        f"{report.complete} of {report.planned} draws complete"
    )
    table = Table("outcome", "mean", "95% interval", "draws")
    for o in report.outcomes:
        interval = f"{_number(o.low)} to {_number(o.high)}" if o.n else "–"
        table.add_row(o.label, _number(o.mean), interval, str(o.n))
    out.print(table)
    ranks = Table("outcome", "most sensitive to (Spearman's rho)")
    for o in report.outcomes:
        ranking = ", ".join(
            f"{printable(s.parameter)} ({_number(s.spearman)})" for s in report.ranking(o.key)
        )
        ranks.add_row(o.label, Text(ranking))
    out.print(ranks)


@sweep_app.command("list", epilog=examples("ape sweep list", "ape sweep list --json"))
def sweep_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List the sweeps in the workspace and how many of their draws are complete."""
    sweeps = api.list_sweeps(stored_workspace(workspace))
    if as_json:
        print_json([s.to_json() for s in sweeps])
        return
    table = Table("sweep", "name", "protocol", "draws complete")
    for s in sweeps:
        table.add_row(
            s.sweep_id,
            Text(printable(s.name)),
            Text(printable(s.protocol_name)),
            f"{s.complete} of {s.draws}",
        )
    out.print(table)


@sweep_app.command(
    "export",
    epilog=examples(
        "ape sweep export sweep-0123456789ab -o exports/",
        "ape sweep export SWEEP_ID -o psa.apebatch",
        "ape sweep export SWEEP_ID -o exports/ --created 2026-01-02",
    ),
)
def sweep_export(
    sweep_id: SweepIdArg,
    output: Annotated[
        Path, typer.Option("--output", "-o", help="A folder, or a NAME.apebatch file.")
    ],
    created: Annotated[
        str | None,
        typer.Option("--created", help="The packages' created date (as for ape export)."),
    ] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Export a whole sweep as one batch: OUTPUT/<sweep id>/ with the sweep file, its base
    protocol, its plan and <sweep id>.apebatch (a package per completed draw), or with
    -o NAME.apebatch the batch alone."""
    moment = parse_created(created) if created is not None else None
    with progress_bar("Exporting", "packages") as bar:
        task = bar.add_task("export", total=None)
        folder = api.export_sweep(
            stored_workspace(workspace),
            sweep_id,
            output,
            created=moment,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(f"[green]✓[/] {escaped(str(folder))}")
