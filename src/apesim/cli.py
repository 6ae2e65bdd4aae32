"""The `ape` command line: a thin shell over `apesim.api`.

Exit codes: 0 success, 2 invalid input (one line on stderr, no traceback), 1 internal error.

Names, ids, versions, messages and file names may come from a package or a stranger's file:
everything printed passes through `apesim.text` (`printable`, `json_safe`) and Rich markup
is escaped or avoided (`Text`), so no such text reaches the terminal raw.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NotRequired, TypedDict

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text
from typer.core import TyperGroup, TyperOption

from apesim import api
from apesim.errors import ApeError, ProtocolError, WorkspaceError
from apesim.text import json_safe, printable

if TYPE_CHECKING:
    from rich.progress import Progress


def _examples(*lines: str) -> str:
    """A command's examples, shown at the end of its --help (one command a line)."""
    return "Examples:\n\n" + "\n".join(f"  {escape(line)}" for line in lines)


def _flag_type(
    display_type_rich: Callable[[Any, Any], str | None],
) -> Callable[[Any, Any], str | None]:
    """Typer shows a flag (--json, --help) with a `<bool>` placeholder as if it took a
    value; a flag takes none, so its help shows no type."""

    def shown(self: Any, ctx: Any) -> str | None:
        return None if getattr(self, "is_flag", False) else display_type_rich(self, ctx)

    return shown


_shown_type = _flag_type(TyperOption.display_type_rich)
TyperOption.display_type_rich = _shown_type  # type: ignore[method-assign,assignment]

app = typer.Typer(
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="APE, the AMD Protocol Explorer: simulate, analyse and share nAMD protocols.",
    epilog=_examples(
        "ape protocols list",
        "ape run -p aflibercept_treat_and_extend -n 10000 -y 5 --seed 42",
        "ape list",
        "ape export SIM -o packages/",
        "ape workspace",
    ),
)
protocols_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="List, show, validate, add and convert protocols.",
    epilog=_examples(
        "ape protocols list",
        "ape protocols validate my_protocol.yaml",
        "ape protocols add my_protocol.yaml",
        "ape protocols show my_protocol",
    ),
)
app.add_typer(protocols_app, name="protocols")
keys_app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Signing keys and age identities (your keyring), the workspace's trusted keys and "
    "its signature policy.",
    epilog=_examples(
        "ape keys generate alice",
        "ape keys list",
        "ape keys trust bob.pub --name Bob",
        "ape keys policy --require-signature",
    ),
)
app.add_typer(keys_app, name="keys")


class _SweepGroup(TyperGroup):
    """`ape sweep SWEEP.yaml` is `ape sweep run SWEEP.yaml`: a first word that is no
    subcommand (and no option) is the sweep file."""

    def parse_args(self, ctx: Any, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


sweep_app = typer.Typer(
    cls=_SweepGroup,
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Scenario sweeps: run every draw of a sweep file, report, export.",
    epilog=_examples(
        "ape sweep psa.yaml",
        "ape sweep psa.yaml --workers 2",
        "ape sweep report sweep-0123456789ab --json",
        "ape sweep export sweep-0123456789ab -o exports/",
    ),
)
app.add_typer(sweep_app, name="sweep")


def _version(value: bool) -> None:
    if value:
        out.print(f"ape {api.__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", "-V", callback=_version, is_eager=True, help="Print APE's version."
        ),
    ] = False,
) -> None:
    """APE, the AMD Protocol Explorer: simulate, analyse and share nAMD protocols."""


# Piped output is not cut to 80 columns: ids and names must survive intact.
_WIDTH = None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200
out = Console(highlight=False, soft_wrap=True, width=_WIDTH)
err = Console(stderr=True, highlight=False, soft_wrap=True)

# Not Typer's envvar: the CLI passes None when no --workspace is given, so the API can say
# where the workspace came from (APE_WORKSPACE or the default; `ape workspace`).
WorkspaceOpt = Annotated[
    Path | None,
    typer.Option(
        "--workspace",
        "-w",
        help="Workspace folder. Default: APE_WORKSPACE, else a folder under your user data "
        "directory (`ape workspace` shows which).",
        file_okay=False,
        show_default=False,
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")]
MaxGibOpt = Annotated[
    float | None,
    typer.Option(
        "--max-unpacked-gib",
        min=1e-6,
        max=1024.0,
        help="Refuse packages that unpack to more. Default: the workspace's max_unpacked_gib (2).",
        show_default=False,
    ),
]
MaxEntriesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-entries",
        min=10,
        max=65535,
        help="Refuse packages with more entries. Default: the workspace's max_entries (64).",
        show_default=False,
    ),
]
MaxRatioOpt = Annotated[
    float | None,
    typer.Option(
        "--max-ratio",
        min=1.0,
        max=10000.0,
        help="Refuse entries compressed more than this. Default: the workspace's max_ratio (200).",
        show_default=False,
    ),
]


KeysOpt = Annotated[
    Path | None,
    typer.Option(
        "--keys",
        help="Keyring folder. Default: APE_KEYS, else keys/ under your user config directory.",
        file_okay=False,
        show_default=False,
    ),
]
TrustOpt = Annotated[
    Path | None,
    typer.Option(
        "--trust",
        help="Trust the keys of this file (shaped as the workspace's trusted_keys.json) "
        "instead of the workspace's.",
        dir_okay=False,
    ),
]
SignatureOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--signature",
        help="A signature kept beside the package (<package>.dsse.json is checked anyway).",
        dir_okay=False,
    ),
]
IdentityOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--identity",
        "-i",
        help="age identity file (or the name of one in the keyring) to decrypt a .age package.",
    ),
]
PassphraseOpt = Annotated[
    bool, typer.Option("--passphrase", help="Ask for the passphrase of an encrypted package.")
]
PassphraseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--passphrase-file",
        help="Read that passphrase from a file (its first line).",
        dir_okay=False,
    ),
]


def _passphrase(ask: bool, file: Path | None, what: str, confirm: bool = False) -> str | None:
    """A passphrase from a file's first line, or asked for (hidden), or None."""
    if file is not None:
        try:
            first = file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise ApeError(f"{file}: cannot read the passphrase ({exc})") from None
        if not first or not first[0]:
            raise ApeError(f"{file}: the passphrase file is empty")
        return first[0]
    if ask:
        text: str = typer.prompt(what, hide_input=True, confirmation_prompt=confirm)
        return text
    return None


def _signing_key(name: str, passphrase_file: Path | None, keys: Path | None) -> api.SigningKey:
    """A keyring key, asking for its passphrase when it has one and no file gives it."""
    given = _passphrase(False, passphrase_file, "")
    if given is None and api.signing_key_protected(name, keys):
        given = _passphrase(True, None, f"Passphrase of the key {name}")
    return api.load_signing_key(name, given, keys)


def _show_verdict(report: api.PackageReport) -> None:
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


def _limits(
    max_gib: float | None,
    workspace: Path | None = None,
    entries: int | None = None,
    ratio: float | None = None,
) -> api.ReadLimits:
    """The limits a package is read under: these flags, else the workspace's settings
    (read without opening the workspace), else the format's defaults."""
    return api.read_limits(
        api.workspace_settings(workspace),
        max_unpacked_gib=max_gib,
        max_entries=entries,
        max_ratio=ratio,
    )


def _ws(path: Path | None) -> api.Workspace:
    return api.Workspace(api.workspace_location(path).path)


def _stored_ws(path: Path | None) -> api.Workspace:
    """The workspace of a command that reads stored simulations: one named by --workspace
    that does not exist (a typo, say) is an error naming the path, not a new empty one."""
    location = api.workspace_location(path)
    if location.source == "--workspace" and not api.workspace_exists(location.path):
        raise WorkspaceError(
            f"no workspace at {location.describe()}; check the path (`ape workspace` shows "
            "the active one), or run a simulation there first",
            code="workspace.missing",
        )
    return api.Workspace(location.path)


def _existing_ws(path: Path | None) -> api.Workspace | None:
    """The workspace whose protocols are looked up, if its folder exists (a mistyped
    --workspace is not created by a look-up)."""
    location = api.workspace_location(path)
    return api.Workspace(location.path) if location.path.is_dir() else None


WorkersOpt = Annotated[
    int | None,
    typer.Option("--workers", help="Run on a local Dask cluster of this many worker processes."),
]
SchedulerOpt = Annotated[
    str | None,
    typer.Option(
        "--scheduler",
        envvar=api.SCHEDULER_ENV,
        help="Run on the Dask cluster of this scheduler address (e.g. tcp://host:8786).",
    ),
]


def _progress(what: str, unit: str | None = None) -> Progress:
    """A transient progress bar on stderr, shown only on a terminal (no stray output in a
    file or a pipe): done of total `unit` when given, else a percentage."""
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


def _print_json(value: Any) -> None:
    text = json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)
    sys.stdout.write(json_safe(text) + "\n")


def _shown(value: Any) -> str:
    """A value for Rich markup: printable, markup escaped."""
    return escape(printable(value))


def _write_text(text: str) -> None:
    """A file's text (YAML) on stdout: as is into a file or a pipe, escaped on a terminal
    (newlines and tabs kept)."""
    if sys.stdout.isatty():
        text = printable(text, newlines=True)
    sys.stdout.write(text if text.endswith("\n") else text + "\n")


def _fmt(value: Any) -> str:
    """A metadata value: numbers with thousands separators, text printable."""
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return printable(value)


def _summary_table(summary: api.Summary) -> Table:
    """The summary statistics as the app shows them (`api.summary_rows`)."""
    table = Table(title="Summary statistics", show_header=False, title_justify="left")
    table.add_column("statistic")
    table.add_column("value", justify="right")
    for label, value in api.summary_rows(summary):
        table.add_row(Text(printable(label)), Text(printable(value)))
    return table


def _record_table(rec: dict[str, Any]) -> Table:
    table = Table(
        title=Text(f"Simulation {printable(rec['sim_id'])}"),
        show_header=False,
        title_justify="left",
    )
    table.add_column("field")
    table.add_column("value")
    for key, value in rec.items():
        if value is not None:
            table.add_row(Text(printable(key)), Text(_fmt(value)))
    return table


@app.command(
    epilog=_examples(
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
    ws = _ws(workspace)
    lp = api.get_protocol(protocol, ws)
    with _progress("Simulating", "patients") as bar:
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
        _print_json(shown)
        return
    out.print(
        f"[green]✓[/] {record.sim_id} ({_shown(record.name)}): {patients:,} patients × {years:g} "
        f"years in {record.runtime_seconds:.2f} s"
    )
    out.print(_summary_table(shown["summary"]))


@app.command("list", epilog=_examples("ape list", "ape list --json", "ape list -w ~/ape-trial"))
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
        _print_json([r.to_json() for r in records])
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


def _size(n: int) -> str:
    """Bytes as people read them (SI units, as the app writes them: 91.5 kB)."""
    if n < 1000:
        return f"{n} B"
    for unit in ("kB", "MB", "GB", "TB"):
        n_units = n / 1000 ** ("kMGT".index(unit[0]) + 1)
        if n_units < 1000 or unit == "TB":
            return f"{n_units:.1f} {unit}"
    raise AssertionError("unreachable")


@app.command(
    "workspace",
    epilog=_examples(
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
        api.set_workspace_settings(_ws(workspace), settings)
    info = api.workspace_info(workspace)
    if as_json:
        _print_json(info.to_json())
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
        table.add_row("size", _size(info.size_bytes))
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
    epilog=_examples(
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
    ws = _stored_ws(workspace)
    report = api.collect_garbage(ws, older_than=age, names=sim_ids or [], apply=apply)
    if as_json:
        _print_json(report.to_json())
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


@app.command(epilog=_examples("ape rerun SIM", 'ape rerun SIM --name "second look" --json'))
def rerun(
    sim_id: Annotated[str, typer.Argument(help="Simulation id, id prefix or name.")],
    name: Annotated[str | None, typer.Option("--name", help="Name of the new run.")] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Run a simulation's exact protocol and parameters again and check the tables match."""
    ws = _stored_ws(workspace)
    record, identical = api.rerun_simulation(ws, sim_id, name=name)
    if as_json:
        _print_json({"simulation": record.to_json(), "identical": identical})
        return
    verdict = "identical tables" if identical else "[yellow]tables differ[/] (engine changed?)"
    out.print(f"[green]✓[/] {_shown(record.sim_id)} ({_shown(record.name)}): {verdict}")


@app.command(
    epilog=_examples(
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
    ws = None if is_package else _stored_ws(workspace)
    with _progress("Re-simulating", "patients") as bar:
        task = bar.add_task("reproduce", total=None)
        result = api.reproduce(
            ws, source, progress=lambda done, total: bar.update(task, completed=done, total=total)
        )
    if as_json:
        _print_json(result.to_json())
    elif result.difference is None:
        out.print(
            f"[green]✓[/] {_shown(result.sim_id)}: identical ({result.patients:,} patients, "
            f"{result.visits:,} visits, {_shown(result.model)})"
        )
    else:
        out.print(
            f"[red]✗[/] {_shown(result.sim_id)}: differs at {_shown(result.difference.describe())}"
        )
    if result.difference is not None:
        raise typer.Exit(api.EXIT_DIFFERS)


@app.command(epilog=_examples("ape show SIM", 'ape show "my trial" --json'))
def show(
    sim_id: Annotated[str, typer.Argument(help="Simulation id, id prefix or name.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a simulation's metadata and summary statistics."""
    shown = api.show_simulation(_stored_ws(workspace), sim_id)
    if as_json:
        _print_json(shown)
        return
    out.print(_record_table(shown["simulation"]))
    out.print(_summary_table(shown["summary"]))


@protocols_app.command("list", epilog=_examples("ape protocols list", "ape protocols list --json"))
def protocols_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List shipped and workspace protocols."""
    ws = _existing_ws(workspace)
    infos = api.list_protocols(ws)
    for bad in api.invalid_protocols(ws) if ws is not None else []:
        sys.stderr.write(f"ape: warning: left out, invalid: {printable(bad.problem)}\n")
    if as_json:
        _print_json([vars(i) for i in infos])
        return
    table = Table("key", "name", "version", "regimen", "source")
    for i in infos:
        table.add_row(
            *(Text(printable(v)) for v in (i.key, i.name, i.version, i.regimen, i.source))
        )
    out.print(table)


@protocols_app.command(
    "show",
    epilog=_examples(
        "ape protocols show aflibercept_treat_and_extend",
        "ape protocols show prn_monthly > my_protocol.yaml",
        "ape protocols show my_protocol.yaml --json",
    ),
)
def protocols_show(
    ref: Annotated[str, typer.Argument(help="Shipped name or YAML file.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Print a protocol as YAML (or its validated fields as JSON).

    The fields the file leaves out, and the defaults they fall back to, are named on stderr
    (the YAML on stdout stays the file's bytes); with --json under "defaulted"."""
    lp = api.get_protocol(ref, _existing_ws(workspace))
    defaulted = api.defaulted_fields(lp.protocol)
    if as_json:
        _print_json(
            {
                "fingerprint": lp.fingerprint,
                "protocol": lp.protocol.model_dump(mode="json"),
                "defaulted": defaulted,
            }
        )
        return
    _write_text(lp.text)
    for field, value in defaulted.items():
        shown = json.dumps(value, ensure_ascii=False, separators=(", ", ": "))
        sys.stderr.write(
            f"ape: defaulted: {printable(field)} = {printable(shown)} (not in the file)\n"
        )


class _Validation(TypedDict):
    """One protocol file's result in `ape protocols validate`."""

    file: str
    valid: bool
    fingerprint: NotRequired[str]  # when valid
    error: NotRequired[str]  # when not: the first problem (and how many more)
    problems: NotRequired[list[str]]  # when not: every problem, one line each


def _validate(files: list[Path]) -> tuple[list[_Validation], list[api.LoadedProtocol]]:
    """Each file validated: the results, and the protocols that passed."""
    results: list[_Validation] = []
    loaded = []
    for f in files:
        try:
            lp = api.get_protocol(str(f))
        except ProtocolError as exc:
            results.append(
                {"file": str(f), "valid": False, "error": str(exc), "problems": exc.problems}
            )
        else:
            loaded.append(lp)
            results.append({"file": str(f), "valid": True, "fingerprint": lp.fingerprint})
    return results, loaded


def _print_problems(results: list[_Validation]) -> None:
    for r in results:
        for problem in r.get("problems", []):
            sys.stderr.write(f"ape: error: {printable(problem)}\n")


@protocols_app.command(
    "validate",
    epilog=_examples(
        "ape protocols validate my_protocol.yaml", "ape protocols validate *.yaml --json"
    ),
)
def protocols_validate(
    files: Annotated[list[Path], typer.Argument(help="Protocol YAML files.")],
    as_json: JsonOpt = False,
) -> None:
    """Validate protocol files: every problem on its own line; exit 2 if any is invalid."""
    results, _ = _validate(files)
    if as_json:
        _print_json(results)
    else:
        for r in results:
            if r["valid"]:
                out.print(f"[green]✓[/] {_shown(r['file'])}: valid ({r['fingerprint'][:12]})")
        _print_problems(results)
    if not all(r["valid"] for r in results):
        raise typer.Exit(2)


@protocols_app.command(
    "add",
    epilog=_examples(
        "ape protocols add my_protocol.yaml",
        "ape protocols add trial_a.yaml trial_b.yaml -w ~/ape-trial",
        "ape run -p my_protocol -n 1000 -y 2",
    ),
)
def protocols_add(
    files: Annotated[list[Path], typer.Argument(help="Protocol YAML files.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate protocol files and copy them into the workspace's protocol library, where
    `ape run -p KEY` and the app find them by key (the file name; a key already taken by
    another protocol gets _2, _3, ...). If any file is invalid, none is added (exit 2)."""
    results, loaded = _validate(files)
    if not all(r["valid"] for r in results):
        if as_json:
            _print_json(results)
        else:
            _print_problems(results)
        raise typer.Exit(2)
    ws = _ws(workspace)
    added = [api.add_protocol(ws, lp.text, Path(lp.source).name) for lp in loaded]
    if as_json:
        _print_json([{"file": str(f), **vars(i)} for f, i in zip(files, added, strict=True)])
        return
    for f, info in zip(files, added, strict=True):
        out.print(
            f"[green]✓[/] {_shown(f)}: saved as protocol {_shown(info.key)} "
            f"({_shown(info.name)}); run it with `ape run -p {_shown(info.key)} ...`"
        )


@protocols_app.command(
    "convert",
    epilog=_examples(
        "ape protocols convert EARLIER_PROTOCOL.yaml",
        "ape protocols convert EARLIER_PROTOCOL.yaml -o my_protocol.yaml",
    ),
)
def protocols_convert(
    file: Annotated[Path, typer.Argument(help="A protocol YAML file of the earlier APE.")],
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write the converted YAML here.")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert an earlier-APE protocol to APE's schema; exit 2 listing the fields that do
    not map (the YAML is then only shown with --json)."""
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ProtocolError(f"{file}: cannot read protocol file ({exc.strerror})") from None
    conversion = api.convert_protocol_text(raw, str(file))
    if conversion.complete and output is not None:
        try:
            output.write_text(conversion.text, encoding="utf-8")
        except OSError as exc:
            raise ApeError(
                f"{output}: cannot write the converted protocol ({exc.strerror})"
            ) from None
    if as_json:
        _print_json({"file": str(file), **conversion.to_json()})
    elif conversion.complete and output is None:
        _write_text(conversion.text)
    elif conversion.complete:
        out.print(f"[green]✓[/] {_shown(output)} ({conversion.fingerprint[:12]})")
    else:
        for field in conversion.unmapped:
            sys.stderr.write(f"ape: does not map: {printable(field)}\n")
        sys.stderr.write(
            f"ape: error: {printable(file)}: {len(conversion.unmapped)} field(s) of the earlier "
            "protocol "
            "do not map onto APE's schema (use --json to see the nearest conversion)\n"
        )
    if not conversion.complete:
        raise typer.Exit(2)


def _report_table(report: api.PackageReport) -> Table:
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


def _parse_created(text: str) -> datetime:
    """--created: an ISO 8601 date and time with a zone, or a plain date (midnight UTC)."""
    given = text.strip()
    try:
        moment = datetime.fromisoformat(given.removesuffix("Z").removesuffix("z"))
        if given[-1:] in "Zz" and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    except (ValueError, IndexError):
        raise ApeError(
            f"--created: not an ISO 8601 date and time: {text!r} "
            "(e.g. 2026-01-02T03:04:05Z, or the date 2026-01-02 for midnight UTC)"
        ) from None
    if moment.tzinfo is None:
        if "T" not in given.upper() and " " not in given:  # a plain date: midnight UTC
            return moment.replace(tzinfo=UTC)
        raise ApeError(f"--created: give a time zone, e.g. {moment:%Y-%m-%dT%H:%M:%S}Z for UTC")
    return moment


@app.command(
    "export",
    epilog=_examples(
        "ape export SIM -o packages/",
        "ape export SIM -o packages/trial.zip --created 2026-01-02",
        "ape export SIM -o packages/trial.zip --force",
        "ape export VARIANT --base BASE -o packages/   # only what differs from BASE",
        "ape export SIM --sign alice",
        "ape export SIM --sign alice --encrypt-to age1... --encrypt-to team.txt",
        "ape export SIM --passphrase",
        "ape export SIM_A SIM_B -o packages/",
        "ape export --all -o everything.apebatch",
        "ape export --protocol prn_monthly -o s3://bucket/ape/",
        "ape export --all -o gs://bucket/ape/all.apebatch",
    ),
)
def export_(
    sim_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Simulations: ids, id prefixes or names (or --all, --protocol)."),
    ] = None,
    output: Annotated[  # a str: a Path would drop the trailing "/" that says "a directory"
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Package file, folder, .apebatch file, or s3:// / gs:// URL (a prefix "
            "ending in /, or NAME.apebatch).",
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every simulation in the workspace.")
    ] = False,
    protocol: Annotated[
        str | None,
        typer.Option("--protocol", help="Every simulation run with this protocol (key or name)."),
    ] = None,
    created: Annotated[
        str | None,
        typer.Option(
            "--created",
            help="The package's created date, ISO 8601 with a zone (e.g. 2026-01-02T03:04:05Z); "
            "the same date gives byte-identical packages. Default: SOURCE_DATE_EPOCH, else now.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a different file of the same name."),
    ] = False,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Write a differential package: only what differs from this base simulation "
            "(an id, prefix or name of one exported or imported as a package, or its package "
            "file); a full package when that is not much larger.",
        ),
    ] = None,
    sign: Annotated[
        list[str] | None,
        typer.Option("--sign", help="Sign with this keyring key (repeatable)."),
    ] = None,
    key_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--key-passphrase-file",
            help="The signing key's passphrase, from a file (else asked for when needed).",
            dir_okay=False,
        ),
    ] = None,
    signature_beside: Annotated[
        bool,
        typer.Option(
            "--signature-beside", help="Also write the signature beside it (<file>.dsse.json)."
        ),
    ] = False,
    encrypt_to: Annotated[
        list[str] | None,
        typer.Option(
            "--encrypt-to",
            help="Encrypt (age) for this recipient: age1... or a file of them (repeatable).",
        ),
    ] = None,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Encrypt (age) with a passphrase, asked for.")
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a simulation as a package (ZIP) others can verify and import; optionally
    signed (--sign) and encrypted (--encrypt-to, --passphrase) as APE_simulation_*.zip.age.

    Several simulations (or --all, --protocol) go into a folder, one .apebatch file, or an
    object store (s3://bucket/prefix/, gs://...; NAME.apebatch for one batch object).

    An existing different file of the same name is never replaced without --force (an
    object in a store never is); a name given without .zip gets it."""
    ws = _stored_ws(workspace)
    refs = sim_ids or []
    if not refs and not every and protocol is None:
        raise ApeError("export: name simulations, or give --all or --protocol KEY")
    moment = _parse_created(created) if created is not None else None
    single = len(refs) == 1 and not every and protocol is None
    if not single or (output is not None and (api.is_remote(output) or _is_batch(output))):
        if base is not None or encrypt_to or passphrase or passphrase_file:
            raise ApeError(
                "export: --base, --encrypt-to and --passphrase go with one package file; "
                "several packages, batches and object stores take them unencrypted",
                code="export.options",
            )
        signers = [_signing_key(name, key_passphrase_file, keys) for name in sign or []]
        _export_many(ws, refs, output, every, protocol, moment, force, signers, as_json)
        return
    sim_id = refs[0]
    dest: str | Path = output if output is not None else Path.cwd()
    if base is not None:
        if sign or encrypt_to or passphrase or passphrase_file:
            raise ApeError(
                "--base: a differential package is not signed or encrypted by this APE; "
                "export the full package to sign or encrypt it",
                code="export.options",
            )
        _export_differential(ws, sim_id, dest, base, moment, force, as_json)
        return
    signers = [_signing_key(name, key_passphrase_file, keys) for name in sign or []]
    encryption = None
    secret = _passphrase(passphrase, passphrase_file, "Passphrase to encrypt with", confirm=True)
    if encrypt_to or secret:
        encryption = api.Encryption(api.parse_recipients(encrypt_to or []), secret)
    with _progress("Exporting") as bar:
        task = bar.add_task("export", total=None)
        result = api.export_package(
            ws,
            sim_id,
            dest,
            created=moment,
            overwrite=force,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            sign=signers,
            encrypt=encryption,
            beside=signature_beside,
        )
    if as_json:
        _print_json(
            {
                "file": str(result.path),
                "size": result.size,
                "sha256": result.sha256,
                "signed_by": [api.key_id_of(k) for k in signers],
                "encrypted": encryption is not None,
            }
        )
        return
    out.print(f"[green]✓[/] {_shown(result.path)} ({result.size:,} bytes)")
    out.print(f"  sha256 {result.sha256}")
    for key in signers:
        out.print(f"  signed by {_shown(key.name)}, key {api.key_id_of(key)}")
    if encryption is not None:
        whom = "a passphrase" if secret else f"{len(encryption.recipients)} recipient(s)"
        out.print(f"  encrypted (age) for {whom}")


def _export_many(
    ws: api.Workspace,
    refs: list[str],
    output: str | None,
    every: bool,
    protocol: str | None,
    moment: datetime | None,
    force: bool,
    signers: list[api.SigningKey],
    as_json: bool,
) -> None:
    """Several simulations into a folder, a batch or an object store (`api.export_many`)."""
    with _progress("Exporting", "simulations") as bar:
        task = bar.add_task("export", total=None)
        bulk = api.export_many(
            ws,
            refs,
            output if output is not None else str(Path.cwd()),
            every=every,
            protocol=protocol,
            created=moment,
            overwrite=force,
            sign=signers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        _print_json(bulk.to_json())
        return
    for p in bulk.packages:
        out.print(
            f"[green]✓[/] {_shown(p.sim_id)}: {_shown(p.file)} ({p.size:,} bytes, {p.status})"
        )
    if bulk.batch is not None:
        out.print(
            f"[green]✓[/] batch {_shown(bulk.batch)}: {len(bulk.packages)} package(s), "
            f"{bulk.batch_size:,} bytes"
        )
        out.print(f"  sha256 {bulk.batch_sha256}")
    for key in signers:
        out.print(f"  signed by {_shown(key.name)}, key {api.key_id_of(key)}")


def _is_batch(name: str) -> bool:
    return name.lower().endswith(".apebatch")


def _print_bulk_import(bulk: api.BulkImport) -> None:
    """One line a package: ok (its sim id), duplicate or failed (finding code and reason)."""
    marks = {
        "ok": "[green]✓ ok[/]",
        "duplicate": "[yellow]= duplicate[/]",
        "failed": "[red]✗ failed[/]",
    }
    for item in bulk.items:
        detail = item.sim_id or ""
        if item.status != "ok":
            detail = f"{item.code}: {item.message or ''}"
        out.print(f"{marks[item.status]} {_shown(item.source)}  {_shown(detail)}")
    summary = (
        f"{bulk.count('ok')} imported, {bulk.count('duplicate')} duplicate(s), "
        f"{bulk.count('failed')} failed"
    )
    if bulk.stopped:
        summary += "; stopped at the first failure (--fail-fast)"
    out.print(summary)
    for batch in bulk.batches:
        for sig in batch["signatures"]:
            who = (
                f"trusted as {sig['trusted_as']}"
                if sig["trusted_as"]
                else "a key not in the trust list"
            )
            out.print(
                Text(
                    f"batch {printable(batch['source'])}: index signed by "
                    f"{printable(sig['signer'])} (key {sig['key_id'][:16]}…, {who})"
                )
            )


def _read_options(
    package_file: Path,
    ws: api.Workspace | Path | None,
    trust_file: Path | None,
    signature: list[Path] | None,
) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    return api.trust_list(ws, trust_file), api.signatures_beside(package_file, signature)


def _export_differential(
    ws: api.Workspace,
    sim_id: str,
    dest: str | Path,
    base: str,
    moment: datetime | None,
    force: bool,
    as_json: bool,
) -> None:
    with _progress("Comparing with the base") as bar:
        task = bar.add_task("export", total=None)
        made = api.export_differential(
            ws,
            sim_id,
            dest,
            base,
            created=moment,
            overwrite=force,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    result = made.result
    if as_json:
        _print_json(
            {
                "file": str(result.path),
                "size": result.size,
                "sha256": result.sha256,
                "differential": made.differential,
                "full_size": made.full_size,
                "fallback": made.fallback,
                "changed": made.changed,
                "added": made.added,
                "removed": made.removed,
            }
        )
        return
    if made.differential:
        out.print(
            f"[green]✓[/] {_shown(result.path)} ({result.size:,} bytes, {made.share:.1%} of "
            f"the full package's {made.full_size:,}): {made.changed:,} patients changed, "
            f"{made.added:,} added, {made.removed:,} removed"
        )
    else:
        err.print(f"ape: note: a full package was written: {_shown(made.fallback)}")
        out.print(f"[green]✓[/] {_shown(result.path)} ({result.size:,} bytes)")
    out.print(f"  sha256 {result.sha256}")


BaseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--base",
        help="For a differential package: its base's package file (default: the base "
        "simulation in the workspace).",
        dir_okay=False,
    ),
]


@app.command(
    "import",
    epilog=_examples(
        "ape import PACKAGE.zip",
        "ape import PACKAGE.zip -w ~/ape-trial --json",
        "ape import APE_differential_SIM.zip --base BASE_PACKAGE.zip",
        "ape import PACKAGE.zip --require-signature",
        "ape import PACKAGE.zip.age --identity ~/.config/ape/keys/me.age",
        "ape import packages/ 'more/*.zip' everything.apebatch",
        "ape import s3://bucket/ape/ --fail-fast",
        "ape import PACKAGE.zip --only summary",
        "ape import PACKAGE.zip --only protocol",
    ),
)
def import_(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Packages (.zip, .age), batches (.apebatch), folders, globs, or s3:// / gs:// "
            "URLs (an object, or a prefix ending in /)."
        ),
    ],
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first package that fails.")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Take only part of one package: 'summary' (metadata, statistics and audit "
            "trail, without the tables) or 'protocol' (into the protocol library).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    max_gib: MaxGibOpt = None,
    max_entries: MaxEntriesOpt = None,
    max_ratio: MaxRatioOpt = None,
    base: BaseFileOpt = None,
    require_signature: Annotated[
        bool | None,
        typer.Option(
            "--require-signature/--allow-unsigned",
            help="Refuse a package no trusted key signed. Default: the workspace's policy.",
            show_default=False,
        ),
    ] = None,
    trust_file: TrustOpt = None,
    signature: SignatureOpt = None,
    identity: IdentityOpt = None,
    passphrase: PassphraseOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
) -> None:
    """Validate a package completely (its signatures too), then import it as a read-only
    simulation, or only its summary or its protocol (--only). A differential package is
    rebuilt on its base (in the workspace, or --base FILE); an encrypted one is decrypted
    into the workspace's staging area first.

    Several packages, a folder, a glob, a batch or a URL: each package on its own (a bad
    one does not stop the others unless --fail-fast; one already here is skipped as a
    duplicate), one line each (ok / duplicate / failed with its finding code), exit 2 if
    any failed."""
    if only not in (None, "summary", "protocol"):
        raise ApeError(f"--only: {only!r} is not 'summary' or 'protocol'")
    ws = _ws(workspace)
    one = paths[0] if len(paths) == 1 else None
    if one is None or api.is_remote(one) or _is_batch(one) or not Path(one).is_file():
        if base is not None or identity or passphrase or passphrase_file or signature or only:
            raise ApeError(
                "import: --base, --identity, --passphrase, --signature and --only go with one "
                "package file",
                code="import.options",
            )
        with _progress("Importing", "packages") as bar:
            task = bar.add_task("import", total=None)
            bulk = api.import_many(
                ws,
                paths,
                fail_fast=fail_fast,
                limits=_limits(max_gib, workspace, max_entries, max_ratio),
                require_signature=require_signature,
                trust=api.trust_list(ws, trust_file) if trust_file is not None else None,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        if as_json:
            _print_json(bulk.to_json())
        else:
            _print_bulk_import(bulk)
        if not bulk.ok:
            raise typer.Exit(2)
        return
    package_file = Path(one)
    trust, beside = _read_options(package_file, ws, trust_file, signature)
    secret = _passphrase(passphrase, passphrase_file, "Passphrase of the package")
    identities = [api.identity_path(i, keys) for i in identity or []]
    limits = _limits(max_gib, workspace, max_entries, max_ratio)
    checks: dict[str, Any] = {
        "trust": trust if trust_file is not None else None,
        "beside": beside,
        "require_signature": require_signature,
    }
    with api.opened_package(
        package_file, ws, identities=identities, passphrase=secret, max_bytes=limits.max_total_bytes
    ) as source:
        if only == "protocol":
            info = api.import_protocol(
                ws, source, source_name=package_file.name, limits=limits, **checks
            )
        else:
            record = api.import_package(
                ws,
                source,
                source_name=package_file.name,
                limits=limits,
                base=base,
                only=only,
                **checks,
            )
    if only == "protocol":
        if as_json:
            _print_json({"file": str(package_file), **vars(info)})
            return
        out.print(
            f"[green]✓[/] the protocol of {_shown(package_file.name)} is saved as "
            f"{_shown(info.key)} ({_shown(info.name)}); run it with `ape run -p "
            f"{_shown(info.key)} ...`"
        )
        return
    if as_json:
        _print_json(api.show_simulation(ws, record.sim_id))
        return
    what = "the summary of " if only else ""
    out.print(
        f"[green]✓[/] imported {what}{_shown(record.sim_id)} ({_shown(record.name)}) from "
        f"{_shown(package_file.name)}; "
        "it is read-only"
        + ("; its tables were left out (import the full package to see them)" if only else "")
    )
    verdict = api.audit_trail(ws, record.sim_id).events[-1].details.get("signature")
    if isinstance(verdict, dict) and verdict.get("status") == "trusted":
        names = ", ".join(map(str, verdict.get("trusted_as", [])))
        out.print(Text(f"✓ signed by {printable(names)} (trusted)"))
    elif isinstance(verdict, dict) and verdict.get("status") == "unknown":
        sys.stderr.write(
            "ape: warning: signed only by keys not in the trust list "
            f"({printable(', '.join(k[:16] for k in verdict.get('key_ids', [])))}); "
            "`ape inspect` shows how to trust them\n"
        )
    else:
        sys.stderr.write("ape: note: the package is not signed\n")


def _checked(
    package_file: Path,
    limits: api.ReadLimits,
    base: Path | None,
    workspace: Path | None,
    *,
    trust_file: Path | None,
    signature: list[Path] | None,
    identity: list[str] | None,
    secret: str | None,
    keys: Path | None,
) -> api.PackageReport:
    """Every check of a package, its signatures judged against the trust list (the
    workspace's, or --trust FILE); a differential one rebuilt on its base (--base FILE,
    else found in the workspace if there is one); an encrypted one decrypted first (in the
    workspace's staging area)."""
    trust, beside = _read_options(
        package_file, api.workspace_location(workspace).path, trust_file, signature
    )
    identities = [api.identity_path(i, keys) for i in identity or []]
    # A workspace is opened only to decrypt (its staging area) or for a differential
    # package's base: a full package is read without touching one.
    staging = _ws(workspace) if api.is_encrypted(package_file) else None
    with api.opened_package(
        package_file,
        staging,
        identities=identities,
        passphrase=secret,
        max_bytes=limits.max_total_bytes,
    ) as source:
        report = api.inspect_with_base(
            source,
            ws=lambda: _workspace_if_any(workspace),
            base=base,
            source_name=package_file.name,
            limits=limits,
        )
    return api.judge(report, trust, beside)


def _workspace_if_any(path: Path | None) -> api.Workspace | None:
    """The workspace, if one exists there (none is created by a command that reads a
    package); opened only when a differential package needs its base."""
    location = api.workspace_location(path)
    return api.Workspace(location.path) if api.workspace_exists(location.path) else None


@app.command(
    epilog=_examples(
        "ape inspect PACKAGE.zip",
        "ape inspect PACKAGE.zip --json",
        "ape inspect PACKAGE.zip.age --passphrase",
        "ape inspect s3://bucket/ape/APE_simulation_ID_20260102.zip",
        "ape inspect gs://bucket/ape/APE_simulation_ID_20260102.zip --full",
    )
)
def inspect(
    package: Annotated[
        str,
        typer.Argument(help="A simulation package (.zip or .age), or its s3:// or gs:// URL."),
    ],
    full: Annotated[
        bool,
        typer.Option("--full", help="For a URL: download the whole package and run every check."),
    ] = False,
    as_json: JsonOpt = False,
    max_gib: MaxGibOpt = None,
    max_entries: MaxEntriesOpt = None,
    max_ratio: MaxRatioOpt = None,
    base: BaseFileOpt = None,
    trust_file: TrustOpt = None,
    signature: SignatureOpt = None,
    identity: IdentityOpt = None,
    passphrase: PassphraseOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show a package's manifest, statistics, signatures and validation report, without
    importing.

    For a URL, by default only the ZIP's directory, the manifest and the tables' footers
    are read (a few byte ranges, not the whole object): what the package declares, not yet
    verified; --full downloads it and runs every check. The limits are checked on the sizes
    the ZIP's directory declares, before any file is read: a package over one is reported
    with the limit it would exceed."""
    if api.is_remote(package):
        _inspect_remote(package, full, max_gib, as_json)
        return
    package_file = Path(package)
    secret = _passphrase(passphrase, passphrase_file, "Passphrase of the package")
    report = _checked(
        package_file,
        _limits(max_gib, workspace, max_entries, max_ratio),
        base,
        workspace,
        trust_file=trust_file,
        signature=signature,
        identity=identity,
        secret=secret,
        keys=keys,
    )
    if as_json:
        _print_json(report.to_json())
    else:
        out.print(
            f"[bold]{_shown(report.source_name)}[/]: {report.size:,} bytes, "
            f"format: {_shown(report.format)}"
        )
        out.print(f"sha256 {report.sha256}")
        if report.metadata:
            out.print(_record_table(report.metadata))
        summary = api.validated_summary(report)
        if summary is not None:
            out.print(_summary_table(summary))
        for warning in report.warnings:
            sys.stderr.write(f"ape: warning: {printable(warning)}\n")
        out.print(_report_table(report))
        _show_verdict(report)
    if report.error is not None:
        if not as_json:
            sys.stderr.write(f"ape: error: {report.error}\n")
        raise typer.Exit(2)


def _inspect_remote(url: str, full: bool, max_gib: float | None, as_json: bool) -> None:
    """A remote package: declared contents from a few byte ranges, or (--full) downloaded
    and checked."""
    if full:
        report = api.inspect_remote(url, full=True, limits=_limits(max_gib))
        assert isinstance(report, api.PackageReport)
        if as_json:
            _print_json(report.to_json())
        else:
            out.print(f"[bold]{_shown(report.source_name)}[/]: {report.size:,} bytes")
            out.print(f"sha256 {report.sha256}")
            out.print(_report_table(report))
        if report.error is not None:
            if not as_json:
                sys.stderr.write(f"ape: error: {report.error}\n")
            raise typer.Exit(2)
        return
    peek = api.inspect_remote(url, limits=_limits(max_gib))
    assert isinstance(peek, api.RemotePeek)
    if as_json:
        _print_json(peek.to_json())
    else:
        out.print(f"[bold]{_shown(peek.url)}[/]: {peek.size:,} bytes")
        manifest = peek.manifest or {}
        for key in ("sim_id", "package_version", "created_date", "created_by", "ape_version"):
            if key in manifest:
                out.print(f"  {key}: {_shown(manifest[key])}")
        table = Table("file", "bytes", "sha256", "rows", title="Files the manifest lists")
        for name, entry in sorted((manifest.get("files") or {}).items()):
            rows = peek.tables.get(name, {}).get("rows")
            table.add_row(
                Text(printable(name)),
                f"{entry.get('size', 0):,}",
                Text(printable(str(entry.get("sha256", ""))[:16] + "…")),
                "" if rows is None else f"{rows:,}",
            )
        out.print(table)
        out.print(
            f"Read {peek.bytes_read:,} of {peek.size:,} bytes in {peek.requests} range "
            "request(s): declared, not verified (--full checks every byte)."
        )
    if peek.problems:
        if not as_json:
            sys.stderr.write(f"ape: error: {printable(peek.problems[0]['message'])}\n")
        raise typer.Exit(2)


@app.command(
    "list-remote",
    epilog=_examples(
        "ape list-remote s3://bucket/ape/",
        "ape list-remote gs://bucket/ape/ --json",
    ),
)
def list_remote(
    url: Annotated[str, typer.Argument(help="An s3:// or gs:// prefix (ending in /).")],
    as_json: JsonOpt = False,
) -> None:
    """List the packages (.zip) and batches (.apebatch) under an object-store prefix."""
    if not api.is_remote(url):
        raise ApeError(f"{url}: not an s3:// or gs:// URL", code="remote.url")
    found = api.list_remote(url)
    if as_json:
        _print_json([{"url": o.url, "size": o.size} for o in found])
        return
    table = Table("object", "bytes")
    for o in found:
        table.add_row(Text(printable(o.url)), f"{o.size:,}")
    out.print(table)
    if not found:
        sys.stderr.write(f"ape: nothing under {printable(url)}\n")


@app.command(
    epilog=_examples(
        "ape verify PACKAGE.zip",
        "ape verify PACKAGE.zip --json",
        "ape verify PACKAGE.zip --require-signature --trust team_keys.json",
    )
)
def verify(
    package_file: Annotated[Path, typer.Argument(help="A simulation package (.zip or .age).")],
    max_gib: MaxGibOpt = None,
    max_entries: MaxEntriesOpt = None,
    max_ratio: MaxRatioOpt = None,
    as_json: JsonOpt = False,
    base: BaseFileOpt = None,
    require_signature: Annotated[
        bool,
        typer.Option("--require-signature", help="Exit 2 unless a trusted key signed it."),
    ] = False,
    trust_file: TrustOpt = None,
    signature: SignatureOpt = None,
    identity: IdentityOpt = None,
    passphrase: PassphraseOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Exit 0 if the package is valid (and its signatures verify), 2 (with the reason) if
    not.

    With --json: the verdict as JSON on stdout (file, valid, format, size, sha256, error
    with its stable code, warnings, signature), exit 2 still if it is not valid."""
    secret = _passphrase(passphrase, passphrase_file, "Passphrase of the package")
    checked = _checked(
        package_file,
        _limits(max_gib, workspace, max_entries, max_ratio),
        base,
        workspace,
        trust_file=trust_file,
        signature=signature,
        identity=identity,
        secret=secret,
        keys=keys,
    )
    if checked.ok and require_signature:
        try:
            api.require_signature(checked)
        except ApeError as exc:
            if not as_json:
                raise
            checked.error = exc  # type: ignore[assignment]
    if as_json:
        full = checked.to_json()
        keys_shown = ("file", "valid", "format", "size", "sha256", "error", "warnings", "signature")
        _print_json({key: full[key] for key in keys_shown})
        if checked.error is not None or not checked.ok:
            raise typer.Exit(2)
        return
    if checked.error is not None:
        raise checked.error
    report = checked
    for warning in report.warnings:
        sys.stderr.write(f"ape: warning: {printable(warning)}\n")
    out.print(f"[green]✓[/] {_shown(report.source_name)}: valid {_shown(report.format)} package")
    _show_verdict(report)


@app.command(
    epilog=_examples(
        "ape sign PACKAGE.zip --key reviewer",
        "ape sign PACKAGE.zip --key reviewer -o PACKAGE-countersigned.zip",
    )
)
def sign(
    package_file: Annotated[Path, typer.Argument(help="A simulation package (.zip).")],
    key: Annotated[str, typer.Option("--key", help="The keyring key to sign with.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the signed package here (default: in place)."),
    ] = None,
    key_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--key-passphrase-file", help="The key's passphrase, from a file.", dir_okay=False
        ),
    ] = None,
    keys: KeysOpt = None,
) -> None:
    """Add a signature to a valid package (a reviewer countersigning); the signatures
    already there stay valid and are listed by `ape inspect`."""
    signer = _signing_key(key, key_passphrase_file, keys)
    target = api.countersign_package(package_file, signer, output)
    out.print(
        f"[green]✓[/] {_shown(target)}: signed by {_shown(signer.name)}, "
        f"key {api.key_id_of(signer)}"
    )


@keys_app.command(
    "generate",
    epilog=_examples(
        "ape keys generate alice",
        "ape keys generate alice --passphrase",
        "ape keys generate team --age",
    ),
)
def keys_generate(
    name: Annotated[str, typer.Argument(help="The key's name in the keyring.")],
    age: Annotated[
        bool,
        typer.Option("--age", help="An age identity (to decrypt packages), not a signing key."),
    ] = False,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Protect the private key with a passphrase.")
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    trust: Annotated[
        bool,
        typer.Option("--trust/--no-trust", help="Trust the new signing key in the workspace."),
    ] = True,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a key: an Ed25519 signing key (private file 0600, optionally passphrase-protected)
    or an age identity; print its public half to give to others."""
    secret = _passphrase(passphrase, passphrase_file, f"Passphrase for {name}", confirm=True)
    info = api.generate_key(name, age=age, passphrase=secret, keys=keys)
    trusted = None
    if info.kind == "signing" and trust:
        trusted = api.trust_key(_ws(workspace), info.public, name)
    if as_json:
        _print_json({**info.to_json(), "trusted_as": trusted.name if trusted else None})
        return
    out.print(f"[green]✓[/] {info.kind} key {_shown(name)}: {_shown(info.path)}")
    out.print(Text(info.public))
    if info.key_id:
        out.print(f"  key id {info.key_id}")
    if trusted:
        out.print("  trusted in this workspace")


@keys_app.command("list", epilog=_examples("ape keys list", "ape keys list --json"))
def keys_list(
    keys: KeysOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """The keyring's keys and the workspace's trusted keys."""
    mine = api.list_keys(keys)
    ws = _existing_ws(workspace)
    trusted = api.trusted_keys(ws) if ws is not None else []
    policy = api.signature_policy(ws) if ws is not None else None
    if as_json:
        _print_json(
            {
                "keyring": str(api.keyring_dir(keys)),
                "keys": [k.to_json() for k in mine],
                "trusted": [
                    {
                        "name": t.name,
                        "key_id": t.key_id,
                        "public_key": t.public_key,
                        "added": t.added,
                    }
                    for t in trusted
                ],
                "require_signature": bool(policy and policy.require_signature),
                "signing_key": policy.signing_key if policy else None,
            }
        )
        return
    table = Table(title=Text(f"Keyring {printable(api.keyring_dir(keys))}"), title_justify="left")
    for column in ("name", "kind", "key id / recipient", "protected"):
        table.add_column(column)
    for k in mine:
        table.add_row(
            Text(printable(k.name)),
            k.kind,
            Text(k.key_id or k.public),
            "yes" if k.protected else "",
        )
    out.print(table)
    table = Table(title="Trusted in this workspace", title_justify="left")
    for column in ("name", "key id", "added"):
        table.add_column(column)
    for t in trusted:
        table.add_row(Text(printable(t.name)), t.key_id, t.added)
    out.print(table)
    if policy is not None:
        out.print(
            f"require signature: {'yes' if policy.require_signature else 'no'}; "
            f"app signs with: {_shown(policy.signing_key or '-')}"
        )


@keys_app.command(
    "trust",
    epilog=_examples(
        "ape keys trust bob.pub", "ape keys trust ape-ed25519:AbC...= --name 'Bob (reviewer)'"
    ),
)
def keys_trust(
    key: Annotated[
        str,
        typer.Argument(help="A public key (ape-ed25519:...), a .pub file or a keyring key's name."),
    ],
    name: Annotated[str | None, typer.Option("--name", help="The name to trust it under.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Trust a public key in the workspace: packages it signs are shown as signed by `name`."""
    trusted = api.trust_key(_ws(workspace), key, name)
    out.print(f"[green]✓[/] trusted {_shown(trusted.name)}, key {trusted.key_id}")


@keys_app.command("untrust", epilog=_examples("ape keys untrust Bob", "ape keys untrust 7b08a855"))
def keys_untrust(
    ref: Annotated[str, typer.Argument(help="A trusted key's name or key id (8+ hex digits).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Stop trusting a key in the workspace."""
    removed = api.untrust_key(_stored_ws(workspace), ref)
    out.print(f"[green]✓[/] no longer trusted: {_shown(removed.name)}, key {removed.key_id}")


@keys_app.command(
    "policy",
    epilog=_examples(
        "ape keys policy",
        "ape keys policy --require-signature",
        "ape keys policy --default-key alice",
    ),
)
def keys_policy(
    require: Annotated[
        bool | None,
        typer.Option(
            "--require-signature/--allow-unsigned",
            help="Whether imports into this workspace require a trusted signature.",
            show_default=False,
        ),
    ] = None,
    default_key: Annotated[
        str | None, typer.Option("--default-key", help="The key the app signs downloads with.")
    ] = None,
    no_default_key: Annotated[
        bool, typer.Option("--no-default-key", help="The app signs nothing.")
    ] = False,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or change the workspace's signature policy."""
    ws = _ws(workspace)
    if require is not None or default_key is not None or no_default_key:
        policy = api.set_signature_policy(
            ws,
            require_signature=require,
            signing_key=default_key,
            clear_signing_key=no_default_key,
            keys=keys,
        )
    else:
        policy = api.signature_policy(ws)
    if as_json:
        _print_json(
            {"require_signature": policy.require_signature, "signing_key": policy.signing_key}
        )
        return
    out.print(
        f"require signature: {'yes' if policy.require_signature else 'no'}; "
        f"app signs with: {_shown(policy.signing_key or '-')}"
    )


@app.command(
    epilog=_examples("ape audit SIM", 'ape audit "my trial" --json'),
)
def audit(
    sim_id: Annotated[str, typer.Argument(help="Simulation id, id prefix or name.")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show a simulation's audit trail and check its hash chain: every event carries the
    SHA-256 of the one before, and the registry keeps the last; exit 2 if it was altered."""
    trail = api.audit_trail(_stored_ws(workspace), sim_id)
    if as_json:
        _print_json(trail.to_json())
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
    epilog=_examples(
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
    comparison = api.compare_simulations(_stored_ws(workspace), sim_ids)
    if as_json:
        _print_json(comparison.to_json())
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


@app.command(
    epilog=_examples(
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
    with _progress("Writing the report") as bar:
        bar.add_task("report", total=None)
        written = api.write_report(
            source,
            output,
            ws=functools.partial(_workspace_if_any, workspace)
            if package
            else _stored_ws(workspace),
            base=base,
            trust=api.trust_list(api.workspace_location(workspace).path, trust_file),
        )
    out.print(f"[green]✓[/] {_shown(written)} ({written.stat().st_size:,} bytes)")


@app.command(
    epilog=_examples(
        "ape view PACKAGE.zip",
        "ape view PACKAGE.zip --port 8502",
        "ape view APE_differential_SIM.zip --base BASE.zip",
    ),
)
def view(
    package_file: Annotated[
        Path, typer.Argument(help="A simulation package (.zip).", dir_okay=False)
    ],
    base: BaseFileOpt = None,
    trust_file: TrustOpt = None,
    port: Annotated[
        int, typer.Option("--port", "-p", min=1, max=65535, help="Port to serve on.")
    ] = api.DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option("--host", help="Address to serve on: this machine only by default."),
    ] = api.DEFAULT_HOST,
    workspace: WorkspaceOpt = None,
) -> None:
    """Open a package read-only in the browser, without importing it and without a
    workspace: its Analysis Overview, its checks and its signatures' verdict (against the
    workspace's trust list, read only, or --trust FILE), its tables read from inside the
    ZIP."""
    if not package_file.is_file():
        raise ApeError(f"{package_file}: no such file", code="source.missing")
    if trust_file is None:
        kept = api.workspace_location(workspace).path / api.TRUST_FILE
        trust_file = kept if kept.is_file() else None
    api.trust_list(None, trust_file)  # a bad trust file: one line here, not in the browser
    err.print(
        f"APE viewer of {_shown(package_file.name)} on {api.app_url(host, port)}; "
        "stop it with Ctrl-C"
    )
    raise typer.Exit(
        api.run_viewer(package_file, base=base, trust=trust_file, port=port, host=host)
    )


@app.command(
    "app",
    epilog=_examples(
        "ape app",
        "ape app --port 8502 -w ~/ape-trial",
        "ape app --host 0.0.0.0",
    ),
)
def app_(
    port: Annotated[
        int, typer.Option("--port", "-p", min=1, max=65535, help="Port to serve on.")
    ] = api.DEFAULT_PORT,
    host: Annotated[
        str,
        typer.Option(
            "--host",
            help="Address to serve on: this machine only by default; 0.0.0.0 for the network.",
        ),
    ] = api.DEFAULT_HOST,
    workspace: WorkspaceOpt = None,
) -> None:
    """Start the app (Streamlit) on the workspace and serve it until Ctrl-C; open the
    address it prints in your browser."""
    location = api.workspace_location(workspace)
    err.print(
        f"APE app on {api.app_url(host, port)}, workspace {_shown(location.describe())}; "
        "stop it with Ctrl-C"
    )
    raise typer.Exit(api.run_app(location.path, port=port, host=host))


# -- sweeps ----------------------------------------------------------------------------------


@sweep_app.command(
    "run",
    epilog=_examples(
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
    ws = _ws(workspace)
    plan = api.plan_sweep(ws, sweep_file)
    bar = Progress(
        TextColumn(f"[bold]Sweep {plan.sweep_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("draws"),
        TimeElapsedColumn(),
        TextColumn("left"),
        TimeRemainingColumn(),
        console=err,
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
        _print_json(result.to_json())
        return
    out.print(
        f"[green]✓[/] {result.sweep_id} ({_shown(plan.title)}): {result.planned} draws, "
        f"{result.ran} run now, {result.skipped} complete already, in {result.seconds:.1f} s"
    )
    out.print(f"Report: ape sweep report {result.sweep_id}")


def _number(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


@sweep_app.command(
    "report",
    epilog=_examples("ape sweep report sweep-0123456789ab", "ape sweep report SWEEP_ID --json"),
)
def sweep_report(
    sweep_id: Annotated[str, typer.Argument(help="The sweep's id (ape sweep list).")],
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Per outcome, the mean and 95% interval across the completed draws, and the varied
    parameters ranked by how strongly they move it (Spearman's rank correlation)."""
    report = api.sweep_report(_stored_ws(workspace), sweep_id)
    if as_json:
        _print_json(report.to_json())
        return
    out.print(
        f"{report.sweep_id} ({_shown(report.name or report.protocol_name)}): "
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


@sweep_app.command("list", epilog=_examples("ape sweep list", "ape sweep list --json"))
def sweep_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List the sweeps in the workspace and how many of their draws are complete."""
    sweeps = api.list_sweeps(_stored_ws(workspace))
    if as_json:
        _print_json([s.to_json() for s in sweeps])
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
    epilog=_examples(
        "ape sweep export sweep-0123456789ab -o exports/",
        "ape sweep export SWEEP_ID -o psa.apebatch",
        "ape sweep export SWEEP_ID -o exports/ --created 2026-01-02",
    ),
)
def sweep_export(
    sweep_id: Annotated[str, typer.Argument(help="The sweep's id (ape sweep list).")],
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
    moment = _parse_created(created) if created is not None else None
    with _progress("Exporting", "packages") as bar:
        task = bar.add_task("export", total=None)
        folder = api.export_sweep(
            _stored_ws(workspace),
            sweep_id,
            output,
            created=moment,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    out.print(f"[green]✓[/] {_shown(str(folder))}")


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to exit codes in one place."""
    try:
        code = app(args=argv, standalone_mode=False)
    except ApeError as exc:
        sys.stderr.write(f"ape: error: {exc}\n")
        code = 2
    except typer.TyperException as exc:  # usage errors (Typer's vendored Click's exceptions)
        message = exc.format_message()
        if message:
            sys.stderr.write(f"ape: error: {printable(message)} (see --help)\n")
        code = exc.exit_code
    except typer.Abort:
        sys.stderr.write("ape: aborted\n")
        code = 130
    except Exception as exc:
        sys.stderr.write(
            f"ape: internal error: {type(exc).__name__}: {printable(exc)} "
            "(please report it; set APE_DEBUG=1 for the traceback)\n"
        )
        if os.environ.get("APE_DEBUG"):
            raise
        code = 1
    except KeyboardInterrupt:
        err.print("ape: interrupted; nothing was written")
        code = 130
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
