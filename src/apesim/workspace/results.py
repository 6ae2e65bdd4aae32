"""A stored simulation read from its folder: its tables, metadata, summary and audit trail,
each loaded when first asked for."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from apesim import audit
from apesim.errors import WorkspaceError
from apesim.results.metadata import SimulationMetadata
from apesim.safeload import load_json
from apesim.workspace import layout
from apesim.workspace.store import SimulationRecord, Workspace

if TYPE_CHECKING:
    import pyarrow as pa

    from apesim.results.summary import Summary


def _read_table(path: Path) -> pa.Table:
    from apesim.results.parquet_io import read_table  # pyarrow: only when a table is read

    return read_table(path)


@dataclass(frozen=True)
class SimulationResults:
    """A stored simulation, loaded lazily from its folder."""

    record: SimulationRecord
    folder: Path
    workspace: Workspace

    @cached_property
    def patients(self) -> pa.Table:
        self.require_tables()
        return _read_table(self.folder / layout.PATIENTS)

    @cached_property
    def visits(self) -> pa.Table:
        self.require_tables()
        return _read_table(self.folder / layout.VISITS)

    def require_tables(self) -> None:
        """Refuse what needs the tables of a simulation imported as summary only
        (`simulation.summary_only`), saying how to get them."""
        if self.record.summary_only:
            source = self.record.source_file or "its package"
            raise WorkspaceError(
                f"{self.record.sim_id}: imported as summary only, without its tables; import "
                f"the full package ({source}) to see them: ape import PACKAGE",
                code="simulation.summary_only",
            )

    def visit_columns(self, columns: Sequence[str]) -> pa.Table:
        """Only these columns of the visits table, read now (not kept): what an analysis
        needs decodes in a fraction of the time and memory of the whole table."""
        from apesim.results.parquet_io import read_table

        self.require_tables()
        return read_table(self.folder / layout.VISITS, list(columns))

    @cached_property
    def metadata(self) -> SimulationMetadata:
        return SimulationMetadata.from_table(_read_table(self.folder / layout.METADATA))

    @cached_property
    def summary(self) -> Summary:
        """summary_stats.json (written by APE, or recomputed from the tables on import)."""
        return cast("Summary", load_json((self.folder / layout.SUMMARY).read_bytes()))

    @cached_property
    def parameters(self) -> dict[str, Any]:
        data: dict[str, Any] = load_json((self.folder / layout.PARAMETERS).read_bytes())
        return data

    @cached_property
    def protocol_text(self) -> str:
        return (self.folder / layout.PROTOCOL).read_text(encoding="utf-8")

    @cached_property
    def source_protocol_text(self) -> str | None:
        """The earlier APE's original protocol YAML when this simulation was converted from
        one of its packages (kept byte for byte under source/), else None."""
        path = self.folder / layout.SOURCE_DIR / "protocol.yaml"
        return path.read_bytes().decode("utf-8") if path.is_file() else None

    def audit_events(self) -> list[audit.AuditEvent]:
        """The audit trail, verified against the registry's record of its last event."""
        return self.workspace.read_audit(self.record)


def load_simulation(ws: Workspace, ref: str) -> SimulationResults:
    """A stored simulation by id, id prefix or name (`SimulationNotFoundError` if none)."""
    record = ws.get(ref)
    return SimulationResults(record=record, folder=ws.path(record), workspace=ws)
