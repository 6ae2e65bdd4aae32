"""The workspace: simulation folders on disk and the SQLite registry that lists them."""

from apesim.workspace.store import SimulationRecord, Workspace, default_workspace

__all__ = ["SimulationRecord", "Workspace", "default_workspace"]
