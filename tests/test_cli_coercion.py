"""The CLI's deferred value checks (`apesim.cli.coercion`) give what Typer's own checks give:
the same values, the same refusals, and pydantic only once a value needs it."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import pytest
import typer
from hypothesis import given
from hypothesis import strategies as st
from typer import _coercion

import apesim.cli  # noqa: F401  (installs the deferred checks)
from apesim.cli.coercion import _Deferred


def _command() -> Any:
    """A command with every kind of parameter the deferred check treats apart."""
    app = typer.Typer()

    @app.command()
    def cmd(
        name: Annotated[str, typer.Argument()],
        tags: Annotated[list[str] | None, typer.Option("--tag")] = None,
        note: Annotated[str | None, typer.Option("--note")] = None,
        count: Annotated[int, typer.Option("--count", min=1)] = 1,
        folder: Annotated[Path | None, typer.Option("--folder", file_okay=False)] = None,
    ) -> None:
        """A test command."""

    return typer.main.get_command(app)


COMMAND = _command()
PARAMS = {p.name: p for p in COMMAND.params}


def both(name: str, value: Any) -> tuple[Any, Any]:
    """A value as the deferred check takes it, and as Typer's own check does (each a value
    or the message it is refused with)."""
    param = PARAMS[name]
    ctx = COMMAND.make_context("cmd", ["x"], resilient_parsing=True)
    results = []
    for check in (param.get_runtime_param(), _coercion.build_runtime_param(param.type_descriptor)):
        try:
            results.append(check.coerce(value, param=param, ctx=ctx))
        except typer.BadParameter as exc:  # a Click exception, re-exported by Typer
            results.append(f"refused: {exc.format_message()}")
    return results[0], results[1]


def test_the_cli_parameters_use_the_deferred_check() -> None:
    assert all(isinstance(p.get_runtime_param(), _Deferred) for p in COMMAND.params)


@given(st.text())
def test_text_is_taken_as_typer_takes_it(value: str) -> None:
    deferred, typers = both("note", value)
    assert deferred == typers and type(deferred) is type(typers)
    assert both("name", value) == (typers, typers)


@given(st.lists(st.text(), max_size=4))
def test_a_list_of_texts_is_taken_as_typer_takes_it(values: list[str]) -> None:
    deferred, typers = both("tags", tuple(values))
    assert deferred == typers and type(deferred) is list


@pytest.mark.parametrize(
    ("name", "value"), [("count", "3"), ("count", "0"), ("count", "x"), ("folder", "/")]
)
def test_other_values_get_typers_own_check(name: str, value: str) -> None:
    deferred, typers = both(name, value)
    assert deferred == typers


def test_a_path_that_is_a_file_is_refused_as_before(tmp_path: Path) -> None:
    file = tmp_path / "f"
    file.write_text("x")
    deferred, typers = both("folder", str(file))
    assert deferred == typers and str(deferred).startswith("refused: ")
