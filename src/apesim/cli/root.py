"""The `ape` command group and the one place errors become exit codes.

Exit codes: 0 success, 2 invalid input (one line on stderr, no traceback), 1 internal error,
130 interrupted.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from apesim.cli import coercion as _coercion  # noqa: F401  (pydantic only when needed)
from apesim.cli import options as _options  # noqa: F401  (how flags show in every --help)
from apesim.cli.commands import COMMANDS
from apesim.cli.lazy import LazyGroup
from apesim.cli.output import err, examples, out
from apesim.errors import ApeError
from apesim.text import printable


class _Ape(LazyGroup):
    LAZY = COMMANDS


app = typer.Typer(
    cls=_Ape,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="rich",
    help="APE, the AMD Protocol Explorer: simulate, analyse and share nAMD protocols.",
    epilog=examples(
        "ape protocols list",
        "ape run -p aflibercept_treat_and_extend -n 10000 -y 5 --seed 42",
        "ape list",
        "ape export SIM -o packages/",
        "ape workspace",
    ),
)


def _version(value: bool) -> None:
    if value:
        from apesim import api

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


_INTERRUPTED = 130


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI and map errors to exit codes in one place."""
    try:
        code = app(args=argv, standalone_mode=False)
        if code == _INTERRUPTED:  # Typer turns Ctrl-C into this exit code, without a word
            raise KeyboardInterrupt
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
        code = _INTERRUPTED
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
        code = _INTERRUPTED
    sys.exit(code if isinstance(code, int) else 0)
