"""Packages written by the earlier APE's exporter (lh/vegf-1, `ape/utils/simulation_package.py`,
package_version "1.0"), read through the same safety pipeline as our own format and converted
into APE's data model on import.

The reader has already checked the container, the entry names and the limits. The handler
(`handler.py`) checks the earlier manifest, files and SHA-256 checksums (`manifest.py`),
parses the JSON and YAML strictly (`parse.py`), reads the Parquet tables whatever Arrow types
that exporter's library versions produced (`columns.py`), and converts everything into APE's
schemas: our tables (`keys.py`, `values.py`, `tables.py`, with the columns APE has no place
for in `patients_extra.parquet` and `visits_extra.parquet`, `extra.py`), metadata
(`metadata.py`), protocol (via `apesim.protocol.convert`) and hash-chained audit trail
(`audit.py`), after checking the tables against the earlier summary statistics (`stats.py`).
The earlier files are kept byte for byte under `source/` (`folder.py`). No id, name or file
name from the package ever becomes a path: the folder's file names are constants
(`format.py`, `apesim.workspace.layout`). docs/package-format.md ("Packages of the earlier
APE") is the specification of this mapping.
"""

from apesim.package.legacy.format import IMPORT_NOTE, KNOWN_FILES, LABEL, SOURCE_FILES
from apesim.package.legacy.handler import LegacyFormat
from apesim.package.legacy.names import derived_sim_id, path_like
from apesim.package.legacy.parse import earlier_json
from apesim.package.legacy.stats import final_vision_definitions

__all__ = [
    "IMPORT_NOTE",
    "KNOWN_FILES",
    "LABEL",
    "SOURCE_FILES",
    "LegacyFormat",
    "derived_sim_id",
    "earlier_json",
    "final_vision_definitions",
    "path_like",
]
