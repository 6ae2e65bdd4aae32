"""A command group that imports a command's module only when the command is looked up.

Click's documented lazy group: the group knows each command's name, where it lives and its
one-line help; `get_command` imports that module and builds the command (Typer turns the
module's functions into Click commands). Running one command loads one module, so
`ape export` does not pay for the imports and option building of the other thirty; the
group's `--help` lists every command from its one-line help and loads none.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterator, MutableMapping
from dataclasses import dataclass
from typing import Any, ClassVar

import typer
from typer.core import TyperCommand, TyperGroup

# The Click of Typer's `get_command` (typer 0.29 vendors its own).
Command = Any


@dataclass(frozen=True)
class Lazy:
    """Where a command lives: the Typer `attr` of `module`, which either holds the command
    among others (`group=False`) or is itself the command group (`group=True`); `summary`
    is the first paragraph of its help, what the group's --help lists."""

    module: str
    summary: str
    attr: str = "app"
    group: bool = False


def commands() -> typer.Typer:
    """A Typer that only holds top-level commands, built by the lazy group on demand."""
    return typer.Typer(rich_markup_mode="rich", add_completion=False)


class LazyCommands(MutableMapping[str, Command]):
    """A group's commands by name, in the order given; a command is built on first access."""

    def __init__(self, lazy: dict[str, Lazy], built: MutableMapping[str, Command]) -> None:
        self._lazy = dict(lazy)
        self._built: dict[str, Command] = dict(built)
        self._holders: dict[tuple[str, str], Command] = {}

    def _build(self, name: str, where: Lazy) -> Command:
        key = (where.module, where.attr)
        if key not in self._holders:
            holder = getattr(importlib.import_module(where.module), where.attr)
            self._holders[key] = typer.main.get_command(holder)
        built = self._holders[key]
        if where.group:
            return built
        # A Typer holding several commands builds a group of them; holding one, the command.
        found = getattr(built, "commands", {built.name: built})
        return found[name]

    def __getitem__(self, name: str) -> Command:
        if name not in self._built:
            self._built[name] = self._build(name, self._lazy[name])
        return self._built[name]

    def __setitem__(self, name: str, command: Command) -> None:
        self._built[name] = command

    def __delitem__(self, name: str) -> None:
        self._lazy.pop(name, None)
        del self._built[name]

    def __iter__(self) -> Iterator[str]:
        yield from self._lazy
        yield from (name for name in self._built if name not in self._lazy)

    def __len__(self) -> int:
        return len(self._lazy.keys() | self._built.keys())

    def __contains__(self, name: object) -> bool:
        return name in self._lazy or name in self._built

    def listed(self, name: str) -> Command | None:
        """The command as a help listing shows it: built if it was, else a stand-in that
        carries its name and one-line help."""
        if name in self._built:
            return self._built[name]
        where = self._lazy.get(name)
        return None if where is None else TyperCommand(name, help=where.summary)


class LazyGroup(TyperGroup):
    """A Typer group whose commands (`LAZY`, set by a subclass) load when looked up."""

    LAZY: ClassVar[dict[str, Lazy]] = {}

    def __init__(self, **attrs: Any) -> None:
        super().__init__(**attrs)
        self.commands = self._lazy = LazyCommands(self.LAZY, self.commands)
        self._listing = False

    def list_commands(self, ctx: Any) -> list[str]:
        return list(self.commands)  # the names alone: nothing is loaded to list them

    def get_command(self, ctx: Any, cmd_name: str) -> Command | None:
        if self._listing:
            return self._lazy.listed(cmd_name)
        return super().get_command(ctx, cmd_name)

    def format_help(self, ctx: Any, formatter: Any) -> None:
        """The group's help, its commands listed from their one-line help (none loaded)."""
        self._listing = True
        try:
            super().format_help(ctx, formatter)
        finally:
            self._listing = False
