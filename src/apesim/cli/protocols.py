"""`ape protocols`: list, show, validate, add and convert protocols."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, NotRequired, TypedDict

import typer
from rich.table import Table
from rich.text import Text

from apesim import api
from apesim.cli.options import (
    JsonOpt,
    ProtocolFilesArg,
    WorkspaceOpt,
)
from apesim.cli.output import (
    escaped,
    examples,
    out,
    print_json,
    write_text,
)
from apesim.cli.resolve import (
    existing_workspace,
    open_workspace,
)
from apesim.errors import ApeError, ProtocolError
from apesim.text import printable

protocols_app = typer.Typer(
    name="protocols",
    add_completion=False,  # only `ape` itself offers completion
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="List, show, validate, add and convert protocols.",
    epilog=examples(
        "ape protocols list",
        "ape protocols validate my_protocol.yaml",
        "ape protocols add my_protocol.yaml",
        "ape protocols show my_protocol",
    ),
)


@protocols_app.command("list", epilog=examples("ape protocols list", "ape protocols list --json"))
def protocols_list(workspace: WorkspaceOpt = None, as_json: JsonOpt = False) -> None:
    """List shipped and workspace protocols."""
    ws = existing_workspace(workspace)
    infos = api.list_protocols(ws)
    for bad in api.invalid_protocols(ws) if ws is not None else []:
        sys.stderr.write(f"ape: warning: left out, invalid: {printable(bad.problem)}\n")
    if as_json:
        print_json([vars(i) for i in infos])
        return
    table = Table("key", "name", "version", "regimen", "source")
    for i in infos:
        table.add_row(
            *(Text(printable(v)) for v in (i.key, i.name, i.version, i.regimen, i.source))
        )
    out.print(table)


@protocols_app.command(
    "show",
    epilog=examples(
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
    lp = api.get_protocol(ref, existing_workspace(workspace))
    defaulted = api.defaulted_fields(lp.protocol)
    if as_json:
        print_json(
            {
                "fingerprint": lp.fingerprint,
                "protocol": lp.protocol.model_dump(mode="json"),
                "defaulted": defaulted,
            }
        )
        return
    write_text(lp.text)
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
    epilog=examples(
        "ape protocols validate my_protocol.yaml", "ape protocols validate *.yaml --json"
    ),
)
def protocols_validate(
    files: ProtocolFilesArg,
    as_json: JsonOpt = False,
) -> None:
    """Validate protocol files: every problem on its own line; exit 2 if any is invalid."""
    results, _ = _validate(files)
    if as_json:
        print_json(results)
    else:
        for r in results:
            if r["valid"]:
                out.print(f"[green]✓[/] {escaped(r['file'])}: valid ({r['fingerprint'][:12]})")
        _print_problems(results)
    if not all(r["valid"] for r in results):
        raise typer.Exit(2)


@protocols_app.command(
    "add",
    epilog=examples(
        "ape protocols add my_protocol.yaml",
        "ape protocols add trial_a.yaml trial_b.yaml -w ~/ape-trial",
        "ape run -p my_protocol -n 1000 -y 2",
    ),
)
def protocols_add(
    files: ProtocolFilesArg,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate protocol files and copy them into the workspace's protocol library, where
    `ape run -p KEY` and the app find them by key (the file name; a key already taken by
    another protocol gets _2, _3, ...). If any file is invalid, none is added (exit 2)."""
    results, loaded = _validate(files)
    if not all(r["valid"] for r in results):
        if as_json:
            print_json(results)
        else:
            _print_problems(results)
        raise typer.Exit(2)
    ws = open_workspace(workspace)
    added = [api.add_protocol(ws, lp.text, Path(lp.source).name) for lp in loaded]
    if as_json:
        print_json([{"file": str(f), **vars(i)} for f, i in zip(files, added, strict=True)])
        return
    for f, info in zip(files, added, strict=True):
        out.print(
            f"[green]✓[/] {escaped(f)}: saved as protocol {escaped(info.key)} "
            f"({escaped(info.name)}); run it with `ape run -p {escaped(info.key)} ...`"
        )


@protocols_app.command(
    "convert",
    epilog=examples(
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
    conversion = api.convert_protocol_file(file)
    if conversion.complete and output is not None:
        try:
            output.write_text(conversion.text, encoding="utf-8")
        except OSError as exc:
            raise ApeError(
                f"{output}: cannot write the converted protocol ({exc.strerror})"
            ) from None
    if as_json:
        print_json({"file": str(file), **conversion.to_json()})
    elif conversion.complete and output is None:
        write_text(conversion.text)
    elif conversion.complete:
        out.print(f"[green]✓[/] {escaped(output)} ({conversion.fingerprint[:12]})")
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
