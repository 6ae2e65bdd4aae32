"""Commands that serve a browser: `ape app` on the workspace, `ape view` of one package."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from apesim import api
from apesim.cli.lazy import commands
from apesim.cli.options import (
    BaseFileOpt,
    PortOpt,
    TrustOpt,
    WorkspaceOpt,
)
from apesim.cli.output import (
    err,
    escaped,
    examples,
)
from apesim.errors import ApeError

app = commands()


@app.command(
    epilog=examples(
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
    port: PortOpt = api.DEFAULT_PORT,
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
        f"APE viewer of {escaped(package_file.name)} on {api.app_url(host, port)}; "
        "stop it with Ctrl-C"
    )
    raise typer.Exit(
        api.run_viewer(package_file, base=base, trust=trust_file, port=port, host=host)
    )


@app.command(
    "app",
    epilog=examples(
        "ape app",
        "ape app --port 8502 -w ~/ape-trial",
        "ape app --host 0.0.0.0",
    ),
)
def app_(
    port: PortOpt = api.DEFAULT_PORT,
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
        f"APE app on {api.app_url(host, port)}, workspace {escaped(location.describe())}; "
        "stop it with Ctrl-C"
    )
    raise typer.Exit(api.run_app(location.path, port=port, host=host))
