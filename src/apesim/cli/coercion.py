"""Typer's checks of option values, with pydantic loaded only when a value needs it.

Typer 0.29 checks every parameter's value with a pydantic `TypeAdapter`, built (and pydantic
imported, about 0.06 s) as the command line is parsed, even for an option that was not
given or a text that needs no check. Here a parameter's check is built when a value is
there to check, and a plain text (`str`, `list[str]`) is taken as Typer's own check would
take it, without pydantic; every other value is checked by Typer as before. With another
Typer whose internals differ, nothing is changed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, get_args, get_origin

try:
    from typer import _coercion
    from typer.core import _TyperParameter
except ImportError:  # pragma: no cover - a Typer without them: its own checks stay
    _coercion = None  # type: ignore[assignment]


def _plain_text(descriptor: Any) -> bool:
    """Whether Typer's check of this parameter is only "is it text" (no parser, file,
    choice, path or number)."""
    annotation = descriptor.annotation
    if get_origin(annotation) is list:
        (annotation,) = get_args(annotation) or (None,)
    info = descriptor.parameter_info
    return (
        annotation is str
        and descriptor.file_annotation is None
        and getattr(info, "parser", None) is None
        and getattr(info, "path_type", None) is None
        and not any(getattr(info, flag, False) for flag in ("exists", "resolve_path"))
    )


if _coercion is not None and hasattr(_TyperParameter, "get_runtime_param"):

    @dataclass(frozen=True)
    class _Deferred(_coercion.RuntimeParam):
        """Typer's check of one parameter, built on the first value it has to check."""

        descriptor: Any = None
        built: list[Any] = field(default_factory=list)

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            # Typer's `coerce` has already returned for a missing value.
            if _plain_text(self.descriptor):
                if isinstance(value, str):
                    return value
                if isinstance(value, list | tuple) and all(isinstance(v, str) for v in value):
                    return list(value)
            if not self.built:
                self.built.append(_coercion.build_runtime_param(self.descriptor))
            return self.built[0]._coerce_value(value, param=param, ctx=ctx)

    def _runtime_param(self: Any) -> Any:
        if self._runtime_param is None:
            descriptor = self.type_descriptor
            self._runtime_param = _Deferred(
                parameter_info=descriptor.parameter_info,
                annotation=descriptor.annotation,
                descriptor=descriptor,
            )
        return self._runtime_param

    _TyperParameter.get_runtime_param = _runtime_param  # type: ignore[method-assign]
