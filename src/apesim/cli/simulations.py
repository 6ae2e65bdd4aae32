"""Commands on the workspace's simulations: run, list, show, rerun, reproduce, audit,
compare, gc, and the workspace itself."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from apesim import api
from apesim.cli.lazy import commands
from apesim.cli.options import (
    JsonOpt,
    SchedulerOpt,
    SimRefArg,
    WorkersOpt,
    WorkspaceOpt,
)
from apesim.cli.output import (
    escaped,
    examples,
    out,
    print_json,
    progress_bar,
    record_table,
    size_text,
    summary_table,
)
from apesim.cli.resolve import (
    open_workspace,
    stored_workspace,
)
from apesim.text import printable

app = commands()


@app.command(
    epilog=examples(
        "ape run -p aflibercept_treat_and_extend -n 10000 -y 5 --seed 42",
        'ape run -p my_protocol.yaml -n 2000 -y 3 --name "my trial" --json',
        "ape run -p prn_monthly -n 5000 -y 2 --recruitment-months 12",
        "ape run -p prn_monthly -n 1000000 -y 5 --workers 2",
        "ape run -p prn_monthly -n 1000000 -y 5 --scheduler tcp://10.0.0.5:8786",
    )
)
def run(
    protocol: Annotated[str, typer.Option("--protocol", "-p", help="Shipped name or YAML file.")],
    patients: Annotated[int, typer.Option("--patients", "-n", help="Number of patients.")],
    years: Annotated[float, typer.Option("--years", "-y", help="Duration in years.")],
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed.")] = 42,
    name: Annotated[str | None, typer.Option("--name", help="A name to remember it by.")] = None,
    recruitment_months: Annotated[
        float, typer.Option("--recruitment-months", help="Recruit uniformly over this period.")
    ] = 0.0,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    workers: WorkersOpt = None,
    scheduler: SchedulerOpt = None,
    block_size: Annotated[
        int | None,
        typer.Option(
            "--block-size",
            help=f"Patients per block on the cluster [default: {api.DEFAULT_BLOCK:,}].",
        ),
    ] = None,
) -> None:
    """Run a protocol and store the results in the workspace; with --workers or --scheduler
    on a Dask cluster (the same files, byte for byte)."""
    params = api.SimulationParameters(
        patients=patients, years=years, seed=seed, recruitment_months=recruitment_months
    )
    cluster = api.ClusterOptions.chosen(workers, scheduler, block_size)
    ws = open_workspace(workspace)
    lp = api.get_protocol(protocol, ws)
    with progress_bar("Simulating", "patients") as bar:
        task = bar.add_task("run", total=patients)
        record = api.run_simulation(
            ws,
            lp,
            params,
            name=name,
            progress=lambda done, total: bar.update(task, completed=done),
            cluster=cluster,
        )
    shown = api.show_simulation(ws, record.sim_id)
    if as_json:
        print_json(shown)
        return
    out.print(
        f"[green]✓[/] {record.sim_id} ({escaped(record.name)}): {patients:,} patients × {years:g} "
        f"years in {record.runtime_seconds:.2f} s"
    )
    out.print(summary_table(shown["summary"]))


@app.command("list", epilog=examples("ape list", "ape list --json", "ape list -w ~/ape-trial"))
def list_(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List the simulations in the workspace (when there are none, its path on stderr)."""
    location = api.workspace_location(workspace)
    # Listing creates nothing: a mistyped --workspace is reported, not made.
    exists = api.workspace_exists(location.path)
    records = api.Workspace(location.path).list() if exists else []
    if not records:
        what = "has no simulations" if exists else "does not exist yet"
        sys.stderr.write(
            f"ape: workspace {printable(location.describe())} {what}; run one with "
            "`ape run -p aflibercept_treat_and_extend -n 1000 -y 2`\n"
        )
    if as_json:
        print_json([r.to_json() for r in records])
        return
    if not records:
        return
    table = Table("id", "name", "protocol", "patients", "years", "created (UTC)", "origin")
    for r in records:
        values = (
            r.sim_id,
            r.name,
            r.protocol_name,
            f"{r.patients:,}",
            f"{r.years:g}",
            r.created_utc,
            r.origin,
        )
        table.add_row(*(Text(printable(v)) for v in values))
    out.print(table)


@app.command(
    "workspace",
    epilog=examples(
        "ape workspace",
        "ape workspace --json",
        "ape workspace --set imported_retention_days=90",
        "ape workspace --set max_unpacked_gib=8 -w ~/ape-trial",
    ),
)
def workspace_(
    workspace: WorkspaceOpt = None,
    settings: Annotated[
        list[str] | None,
        typer.Option(
            "--set",
            help="Change a setting, KEY=VALUE: imported_retention_days (none: keep), "
            "max_unpacked_gib, max_entries, max_ratio, max_text_mib.",
        ),
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Show the active workspace: its path, where the path came from (--workspace,
    APE_WORKSPACE or the default), its simulations, size, retention policy and package
    limits. Creates nothing, unless --set changes a setting."""
    if settings:
        api.set_workspace_settings(open_workspace(workspace), settings)
    info = api.workspace_info(workspace)
    if as_json:
        print_json(info.to_json())
        return
    where = {
        "--workspace": "--workspace",
        api.APE_WORKSPACE: "the APE_WORKSPACE environment variable",
        "default": "the default (no --workspace, APE_WORKSPACE unset)",
    }[info.location.source]
    table = Table(title="Workspace", show_header=False, title_justify="left")
    table.add_column("field")
    table.add_column("value")
    table.add_row("path", Text(printable(info.location.path)))
    table.add_row("from", where)
    if info.exists:
        imported = f" ({info.imported:,} imported)" if info.imported else ""
        table.add_row("simulations", f"{info.simulations:,}{imported}")
        table.add_row("protocols", f"{info.protocols:,} of its own")
        table.add_row("size", size_text(info.size_bytes))
        table.add_row("retention", info.retention)
        limits = info.settings
        table.add_row(
            "package limits",
            f"unpacked {limits.max_unpacked_gib:g} GiB, {limits.max_entries:,} entries, "
            f"ratio {limits.max_ratio:g}:1, text files {limits.max_text_mib:g} MiB",
        )
    else:
        table.add_row("simulations", "none: no workspace there yet (the first run creates it)")
    out.print(table)


@app.command(
    epilog=examples(
        "ape gc --imported-older-than 90d",
        "ape gc --imported-older-than 90d --apply",
        "ape gc",
        "ape gc SIM --apply",
    )
)
def gc(
    sim_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Simulations to remove whatever their origin (ids or names)."),
    ] = None,
    older_than: Annotated[
        str | None,
        typer.Option(
            "--imported-older-than",
            help="Imported simulations imported longer ago than this (90d, 12w, 36h). "
            "Default: the workspace's imported_retention_days.",
        ),
    ] = None,
    apply: Annotated[
        bool, typer.Option("--apply", help="Remove them (without it: only show what would go).")
    ] = False,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Remove imported simulations past their retention (a dry run unless --apply). Runs
    of this workspace are never removed unless named. Each removal is recorded in the
    workspace's audit trail (sim id, package SHA-256, time)."""
    age = api.parse_age(older_than) if older_than is not None else None
    ws = stored_workspace(workspace)
    report = api.collect_garbage(ws, older_than=age, names=sim_ids or [], apply=apply)
    if as_json:
        print_json(report.to_json())
        return
    if not report.removals:
        out.print("Nothing to remove.")
        return
    table = Table("id", "name", "origin", "imported (UTC)", "why", title_justify="left")
    table.title = "Removed" if report.applied else "Would remove (dry run: add --apply)"
    for r in report.removals:
        rec = r.record
        origin = "imported" if rec.imported else "run here"
        why = "named" if r.reason == "named" else "past retention"
        table.add_row(
            *(
                Text(printable(v))
                for v in (rec.sim_id, rec.name, origin, rec.imported_utc or "–", why)
            )
        )
    out.print(table)


@app.command(epilog=examples("ape rerun SIM", 'ape rerun SIM --name "second look" --json'))
def rerun(
    sim_id: SimRefArg,
    name: Annotated[str | None, typer.Option("--name", help="Name of the new run.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a simulation's exact protocol and parameters again and check the tables match."""
    ws = stored_workspace(workspace)
    record, identical = api.rerun_simulation(ws, sim_id, name=name)
    if as_json:
        print_json({"simulation": record.to_json(), "identical": identical})
        return
    verdict = "identical tables" if identical else "[yellow]tables differ[/] (engine changed?)"
    out.print(f"[green]✓[/] {escaped(record.sim_id)} ({escaped(record.name)}): {verdict}")


@app.command(
    epilog=examples(
        "ape reproduce SIM",
        "ape reproduce APE_simulation_SIM_20260102.zip --json",
    )
)
def reproduce(
    source: Annotated[str, typer.Argument(help="Simulation id, prefix or name, or a package.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Simulate again from the recorded protocol, parameters, seed and model, and compare.

    Nothing is written: the original (imported or not) is only read, a package is validated
    first. Exit 0 when the tables are identical, 3 when they differ (the first difference:
    table, patient, column), 2 when it cannot be re-simulated."""
    is_package = source.lower().endswith(".zip") and Path(source).is_file()
    ws = None if is_package else stored_workspace(workspace)
    with progress_bar("Re-simulating", "patients") as bar:
        task = bar.add_task("reproduce", total=None)
        result = api.reproduce(
            ws, source, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if as_json:
        print_json(result.to_json())
    elif result.difference is None:
        out.print(
            f"[green]✓[/] {escaped(result.sim_id)}: identical ({result.patients:,} patients, "
            f"{result.visits:,} visits, {escaped(result.model)})"
        )
    else:
        out.print(
            f"[red]✗[/] {escaped(result.sim_id)}: differs at "
            f"{escaped(result.difference.describe())}"
        )
    if result.difference is not None:
        raise typer.Exit(api.EXIT_DIFFERS)


@app.command(epilog=examples("ape show SIM", 'ape show "my trial" --json'))
def show(
    sim_id: SimRefArg,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a simulation's metadata and summary statistics."""
    shown = api.show_simulation(stored_workspace(workspace), sim_id)
    if as_json:
        print_json(shown)
        return
    out.print(record_table(shown["simulation"]))
    out.print(summary_table(shown["summary"]))


@app.command(
    epilog=examples("ape audit SIM", 'ape audit "my trial" --json'),
)
def audit(
    sim_id: SimRefArg,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a simulation's audit trail and check its hash chain: every event carries the
    SHA-256 of the one before, and the registry keeps the last; exit 2 if it was altered."""
    trail = api.audit_trail(stored_workspace(workspace), sim_id)
    if as_json:
        print_json(trail.to_json())
        return
    table = Table(
        "time (UTC)",
        "user",
        "action",
        "details",
        title=Text(f"Audit trail of {printable(trail.record.sim_id)}"),
        title_justify="left",
    )
    for e in trail.events:
        details = json.dumps(e.details, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))
        table.add_row(*(Text(printable(v)) for v in (e.time, e.user, e.action, details)))
    out.print(table)
    out.print(
        f"[green]✓[/] chain intact: {len(trail.events)} events, each chained to the one "
        f"before; head {trail.head} (as the registry keeps it)"
    )


@app.command(
    epilog=examples(
        "ape compare SIM_A SIM_B",
        'ape compare "treat and extend" "PRN monthly" "fixed 8-weekly" --json',
    ),
)
def compare(
    sim_ids: Annotated[
        list[str], typer.Argument(help="Two or more simulations: ids, id prefixes or names.")
    ],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Compare simulations side by side: the app's Compare table (protocol, origin, seed and
    the headline statistics). Runs with one seed are paired: the same virtual patients draw
    the same random numbers in each run (docs/model.md)."""
    comparison = api.compare_simulations(stored_workspace(workspace), sim_ids)
    if as_json:
        print_json(comparison.to_json())
        return
    table = Table("statistic", title="Comparison", title_justify="left")
    for r in comparison.records:
        table.add_column(Text(f"{printable(r.name)}\n{printable(r.sim_id)}"), justify="right")
    for label, values in comparison.rows:
        table.add_row(Text(printable(label)), *(Text(printable(v)) for v in values))
    out.print(table)
    seeds = sorted({r.seed for r in comparison.records})
    if comparison.paired:
        out.print(
            f"Paired design: every run has seed {seeds[0]}, so patient i draws the same random "
            "numbers in each (the same patients when the protocols share their population); "
            "the differences are the protocols', not sampling noise."
        )
    else:
        out.print(
            f"Independent samples: the seeds differ ({', '.join(map(str, seeds))}), so the "
            "differences include sampling noise; rerun with one seed for a paired comparison."
        )
