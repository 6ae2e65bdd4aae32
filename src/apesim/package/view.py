"""A package opened read-only, without importing it and without a workspace (`ape view`,
`ape report PACKAGE`): validated completely in the reader's worker first, then its tables
read in place from the ZIP.

The Parquet members are STORED, so each is a window of the file's bytes: the file is
memory-mapped and Arrow reads the window (only the row groups and columns asked for),
nothing is extracted to disk. The window's SHA-256 is checked against the validated
manifest before it is decoded, so a file changed since its validation is refused. A
differential package's tables are not in its ZIP: they are the ones its validation rebuilt
on the base, held in memory.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import mmap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, cast

import pyarrow as pa
import pyarrow.parquet as pq

from apesim.audit import AuditEvent
from apesim.errors import PackageIntegrityError
from apesim.package import format as fmt
from apesim.package.base import LazyWorkspace, inspect_with_base
from apesim.package.reader import PackageReport
from apesim.package.safezip import STORED, read_directory
from apesim.results.metadata import SimulationMetadata
from apesim.results.summary import Summary
from apesim.safeload import load_json
from apesim.workspace import layout

_TABLES = {fmt.PATIENTS: layout.PATIENTS, fmt.VISITS: layout.VISITS}


@dataclass
class PackageView:
    """A validated package's simulation, read from the package file itself."""

    path: Path
    report: PackageReport
    _held: dict[str, bytes] = field(default_factory=dict)  # a differential's rebuilt tables
    _windows: dict[str, pa.Buffer] = field(default_factory=dict)
    _map: mmap.mmap | None = None

    @classmethod
    def open(
        cls,
        path: Path | str,
        *,
        ws: LazyWorkspace = None,
        base: Path | str | None = None,
        limits: fmt.ReadLimits | None = None,
        trust: Mapping[str, str] | None = None,
    ) -> PackageView:
        """Validate the package (a differential one on its base: `base`, else the
        workspace's); an invalid package gives a view whose `report` says why and whose
        tables cannot be read."""
        path = Path(path)
        report = inspect_with_base(
            path, ws=ws, base=base, limits=limits, source_name=path.name, trust=trust
        )
        held: dict[str, bytes] = {}
        if report.validated is not None:
            files = report.validated.folder_files
            if fmt.DELTA_PATIENTS in (report.manifest or {}).get("files", {}):
                held = {name: bytes(files[local]) for name, local in _TABLES.items()}
            small = {k: v for k, v in files.items() if k not in _TABLES.values()}
            report.validated = dataclasses.replace(report.validated, folder_files=small)
        return cls(path, report, held)

    @property
    def ok(self) -> bool:
        return self.report.ok

    def _checked(self) -> Any:
        if not self.report.ok or self.report.validated is None:
            assert self.report.error is not None
            raise self.report.error
        return self.report.validated

    def _window(self, name: str) -> pa.Buffer:
        """The member's bytes in the mapped file, checked against the manifest once."""
        if name in self._held:
            return pa.py_buffer(self._held[name])
        if name not in self._windows:
            self._checked()
            if self._map is None:
                with self.path.open("rb") as fh:
                    self._map = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ)
            view = memoryview(self._map)
            entry = next(
                e for e in read_directory(view, fmt.ReadLimits().max_entries) if e.name == name
            )
            if entry.method != STORED:
                raise PackageIntegrityError(
                    f"{self.path.name}: {name} is not stored uncompressed; import it to view it",
                    code="view.not_stored",
                )
            window = view[entry.data_offset : entry.data_offset + entry.size]
            spec = (self.report.manifest or {}).get("files", {}).get(name, {})
            if hashlib.sha256(window).hexdigest() != spec.get("sha256"):
                raise PackageIntegrityError(
                    f"{self.path.name}: {name} changed since it was validated",
                    code="checksum.sha256",
                )
            self._windows[name] = pa.py_buffer(window)
        return self._windows[name]

    def table(self, name: str, columns: Sequence[str] | None = None) -> pa.Table:
        """A table of the package (`data/patients.parquet` or `data/visits.parquet`), only
        the `columns` asked for, decoded from its bytes in the package."""
        parquet = pq.ParquetFile(pa.BufferReader(self._window(name)))
        return parquet.read(columns=list(columns) if columns else None, use_threads=False)

    @cached_property
    def patients(self) -> pa.Table:
        return self.table(fmt.PATIENTS)

    @cached_property
    def visits(self) -> pa.Table:
        return self.table(fmt.VISITS)

    def visit_columns(self, columns: Sequence[str]) -> pa.Table:
        return self.table(fmt.VISITS, columns)

    @property
    def metadata(self) -> SimulationMetadata:
        return cast(SimulationMetadata, self._checked().metadata)

    @property
    def summary(self) -> Summary:
        return cast(Summary, self._checked().summary)

    @property
    def audit_events(self) -> list[AuditEvent]:
        return list(self._checked().audit_events)

    @property
    def protocol_text(self) -> str:
        return bytes(self._checked().folder_files[layout.PROTOCOL]).decode("utf-8")

    @property
    def parameters(self) -> dict[str, Any]:
        data: dict[str, Any] = load_json(bytes(self._checked().folder_files[layout.PARAMETERS]))
        return data

    def close(self) -> None:
        self._windows.clear()
        if self._map is not None:
            with contextlib.suppress(BufferError):  # a table still uses it: closed with it
                self._map.close()
            self._map = None


def open_package(
    path: Path | str,
    *,
    ws: LazyWorkspace = None,
    base: Path | str | None = None,
    limits: fmt.ReadLimits | None = None,
    trust: Mapping[str, str] | None = None,
) -> PackageView:
    """`PackageView.open`: a package validated (its signatures judged against `trust`: key
    id -> name), to be read in place."""
    return PackageView.open(path, ws=ws, base=base, limits=limits, trust=trust)


__all__ = ["PackageView", "open_package"]
