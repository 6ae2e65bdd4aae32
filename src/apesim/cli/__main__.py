"""`python -m apesim.cli`: the `ape` command."""

from apesim.cli.root import main

main()
