"""The `ape` executable: a command that reads a package (`import`, `verify`, `inspect`)
forks its reader's worker first, so that the worker loads Arrow, numpy and pydantic while
the CLI loads (Typer and Rich) and reads the package (`package/early.py`); then the CLI
runs as `root.main`."""

from __future__ import annotations

import sys

READS_A_PACKAGE = frozenset({"import", "verify", "inspect"})


def reads_a_package(args: list[str]) -> bool:
    """Whether the command line names a command that checks a local package (not its help,
    not a URL's, which is read in ranges first)."""
    return (
        bool(args)
        and args[0] in READS_A_PACKAGE
        and not any(a in ("--help", "-h") or "://" in a for a in args[1:])
    )


def main() -> None:
    if reads_a_package(sys.argv[1:]):
        from apesim.package.early import start

        start()
    from apesim.cli.root import main as run

    run()
