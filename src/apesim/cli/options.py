"""The options and arguments several commands share, each defined once (typing.Annotated
aliases a command's signature names), and how a flag's help shows it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from typer.core import TyperOption

from apesim import api


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


BaseFileOpt = Annotated[
    Path | None,
    typer.Option(
        "--base",
        help="For a differential package: its base's package file (default: the base "
        "simulation in the workspace).",
        dir_okay=False,
    ),
]


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


PortOpt = Annotated[int, typer.Option("--port", "-p", min=1, max=65535, help="Port to serve on.")]
SimRefArg = Annotated[str, typer.Argument(help="Simulation id, id prefix or name.")]
ProtocolFilesArg = Annotated[list[Path], typer.Argument(help="Protocol YAML files.")]
SweepIdArg = Annotated[str, typer.Argument(help="The sweep's id (ape sweep list).")]
