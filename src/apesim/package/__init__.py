"""Simulation packages: export a simulation as a verifiable ZIP, inspect and import one."""

from apesim.package.format import ReadLimits, package_filename
from apesim.package.importer import import_package
from apesim.package.reader import Check, PackageReport, inspect_package, validate_package
from apesim.package.writer import ExportResult, estimate_package_size, export_package

__all__ = [
    "Check",
    "ExportResult",
    "PackageReport",
    "ReadLimits",
    "estimate_package_size",
    "export_package",
    "import_package",
    "inspect_package",
    "package_filename",
    "validate_package",
]
