"""The simulation's metadata: the earlier metadata.parquet row and parameters.json, checked
and agreeing, and APE's `SimulationMetadata` made from them (ids and names never paths)."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from apesim.engine.simulate import MAX_YEARS
from apesim.errors import PackageFormatError, PackageIntegrityError, PackageSecurityError
from apesim.package.legacy.columns import Columns
from apesim.package.legacy.format import METADATA
from apesim.package.legacy.names import derived_sim_id, path_like, shown
from apesim.package.legacy.parse import utc_time
from apesim.protocol.convert import ProtocolConversion
from apesim.results.metadata import SimulationMetadata
from apesim.workspace.names import SIM_ID_PATTERN

_ENGINE = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")
_PARAMETER_TYPES: dict[str, tuple[type, ...]] = {
    "engine_type": (str,),
    "n_patients": (int,),
    "duration_years": (int, float),
    "seed": (int,),
}


@dataclass(frozen=True)
class EarlierMeta:
    """The one row of the earlier metadata.parquet."""

    sim_id: str
    memorable_name: str | None
    engine_type: str | None
    n_patients: int | None
    duration_years: float
    seed: int
    timestamp: datetime | None
    runtime_seconds: float


def check_parameters(params: Any) -> None:
    """parameters.json: an object with the engine, patients, years and seed typed."""
    if not isinstance(params, dict):
        raise PackageFormatError("parameters.json: must be a JSON object", code="parameters.schema")
    for key, kind in _PARAMETER_TYPES.items():
        value = params.get(key)
        if isinstance(value, bool) or not isinstance(value, kind):
            raise PackageFormatError(
                f"parameters.json: {key}: missing or not a {kind[-1].__name__}",
                code="parameters.schema",
            )


def check_parameters_agree(params: dict[str, Any], em: EarlierMeta) -> None:
    """parameters.json states what the metadata row states, where the row states it."""
    pairs = {
        "engine_type": em.engine_type,
        "n_patients": em.n_patients,
        "duration_years": em.duration_years,
        "seed": em.seed,
    }
    for key, value in pairs.items():
        if value is not None and params[key] != value:
            raise PackageIntegrityError(
                f"parameters.json: {key} differs from {METADATA}", code="consistency.parameters"
            )


def _number(value: Any) -> float | None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    return float(value) if ok and math.isfinite(value) else None


def _text(value: Any, col: str) -> str | None:
    if value is not None and not isinstance(value, str):
        raise PackageFormatError(f"{METADATA}: {col} is not text", code="parquet.schema")
    return value


def read_metadata(table: pa.Table) -> EarlierMeta:
    """The one row of metadata.parquet, its years and seed usable by APE."""
    if table.num_rows != 1:
        raise PackageIntegrityError(
            f"{METADATA}: must hold exactly one row", code="consistency.metadata"
        )
    cols = Columns(METADATA, table)
    sim_id = _text(cols.value("sim_id", required=True), "sim_id")
    years = _number(cols.value("duration_years", required=True))
    seed = cols.value("seed", required=True)
    if isinstance(seed, float) and seed.is_integer():
        seed = int(seed)
    if years is None or not 0 < years <= MAX_YEARS:  # the format's rule (checks.check_values)
        raise PackageFormatError(
            f"{METADATA}: duration_years must be more than 0 and at most {MAX_YEARS:g} "
            "(the longest simulation APE holds)",
            code="legacy.metadata",
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise PackageFormatError(
            f"{METADATA}: seed must be a whole number from 0 to 2**63 - 1 (a seed is "
            "kept as it was, never changed)",
            code="legacy.metadata",
        )
    n = _number(cols.value("n_patients"))
    runtime = _number(cols.value("runtime_seconds"))
    assert sim_id is not None
    return EarlierMeta(
        sim_id=sim_id,
        memorable_name=_text(cols.value("memorable_name"), "memorable_name"),
        engine_type=_text(cols.value("engine_type"), "engine_type"),
        n_patients=int(n) if n is not None and n.is_integer() else None,
        duration_years=years,
        seed=seed,
        timestamp=utc_time(cols.value("timestamp")),
        runtime_seconds=runtime if runtime is not None and runtime >= 0 else 0.0,
    )


def _our_sim_id(em: EarlierMeta, manifest: dict[str, Any]) -> str:
    """The earlier id when it is one of ours, else one derived from it; never a path."""
    if path_like(em.sim_id):
        raise PackageSecurityError(
            f"{METADATA}: sim_id {shown(em.sim_id)} looks like a path; refusing a doctored package",
            code="name.unsafe_id",
        )
    if em.sim_id != manifest["sim_id"]:
        raise PackageIntegrityError(
            f"{METADATA}: sim_id differs from manifest.json", code="consistency.sim_id"
        )
    return em.sim_id if SIM_ID_PATTERN.match(em.sim_id) else derived_sim_id(em.sim_id)


def _our_name(name: str | None, sim_id: str) -> str:
    """The memorable name, or the id when it is empty, too long or not printable."""
    if name is not None and path_like(name):
        raise PackageSecurityError(
            f"{METADATA}: memorable_name {shown(name)} looks like a path; refusing a "
            "doctored package",
            code="name.unsafe_name",
        )
    if not name or not name.strip() or len(name) > 200 or not name.isprintable():
        name = sim_id
    return name.strip()


def our_metadata(
    em: EarlierMeta, patients: int, manifest: dict[str, Any], conversion: ProtocolConversion
) -> SimulationMetadata:
    """APE's metadata of the converted simulation (docs/package-format.md, "Metadata")."""
    sim_id = _our_sim_id(em, manifest)
    name = _our_name(em.memorable_name, sim_id)
    engine = em.engine_type if em.engine_type and _ENGINE.match(em.engine_type) else "unknown"
    created = em.timestamp or utc_time(manifest["created_date"])
    assert created is not None
    protocol = conversion.loaded.protocol
    return SimulationMetadata(
        sim_id=sim_id,
        name=name,
        protocol_name=protocol.name,
        protocol_version=protocol.version,
        protocol_fingerprint=conversion.fingerprint,
        engine_version=f"earlier APE ({engine})",
        patients=patients,
        years=em.duration_years,
        seed=em.seed,
        created_utc=created,
        runtime_seconds=em.runtime_seconds,
    )
