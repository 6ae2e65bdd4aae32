"""The `ape` command line: a thin shell over `apesim.api`, one module per command group.

`root` holds the `ape` group and the error handling every command shares; `lazy` loads a
command's module only when it runs; `options` defines the shared options once, `output`
what is printed, `resolve` what options become. Commands: `simulations`, `protocols`,
`exports`, `packages`, `keys`, `sweeps`, `report`, `serve`.
"""

from apesim.cli.root import app, main

__all__ = ["app", "main"]
