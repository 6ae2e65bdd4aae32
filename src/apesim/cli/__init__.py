"""The `ape` command line: a thin shell over `apesim.api`, one module per command group.

`start` is the executable's entry point; `root` holds the `ape` group and the error handling
every command shares; `lazy` loads a command's module only when it runs; `options` defines
the shared options once, `output` what is printed, `resolve` what options become. Commands:
`simulations`, `protocols`, `exports`, `packages`, `keys`, `sweeps`, `report`, `serve`.
`app` and `main` load `root` when first named, so that `start` runs before Typer loads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apesim.cli.root import app, main

__all__ = ["app", "main"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from apesim.cli import root

        return getattr(root, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
