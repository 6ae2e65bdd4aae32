"""Simulation packages: export a simulation as a verifiable ZIP, inspect and import one.

The names below load their modules on first use (module `__getattr__`): export needs neither
the reader nor pyarrow, and `ape export` should not pay for them."""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from apesim.package.base import inspect_with_base
    from apesim.package.differential_export import DifferentialExport, export_differential
    from apesim.package.format import ReadLimits, package_filename
    from apesim.package.importer import import_package
    from apesim.package.reader import Check, PackageReport, inspect_package, validate_package
    from apesim.package.writer import ExportResult, estimate_package_size, export_package

_MODULES = {
    "Check": "apesim.package.reader",
    "DifferentialExport": "apesim.package.differential_export",
    "export_differential": "apesim.package.differential_export",
    "inspect_with_base": "apesim.package.base",
    "ExportResult": "apesim.package.writer",
    "PackageReport": "apesim.package.reader",
    "ReadLimits": "apesim.package.format",
    "estimate_package_size": "apesim.package.writer",
    "export_package": "apesim.package.writer",
    "import_package": "apesim.package.importer",
    "inspect_package": "apesim.package.reader",
    "package_filename": "apesim.package.format",
    "validate_package": "apesim.package.reader",
}


def __getattr__(name: str) -> Any:
    module = _MODULES.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_MODULES})


__all__ = [
    "Check",
    "DifferentialExport",
    "ExportResult",
    "PackageReport",
    "ReadLimits",
    "estimate_package_size",
    "export_differential",
    "export_package",
    "import_package",
    "inspect_package",
    "inspect_with_base",
    "package_filename",
    "validate_package",
]
