"""A simulation's metadata record and its one-row Arrow table (metadata.parquet).

pyarrow is loaded only to build or read the table: the workspace's registry uses this record
and `iso_utc`, and `ape list` should not pay for Arrow."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pyarrow as pa


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimulationMetadata:
    """Who, what and how of one simulation run."""

    sim_id: str
    name: str
    protocol_name: str
    protocol_version: str
    protocol_fingerprint: str
    engine_version: str
    patients: int
    years: float
    seed: int
    created_utc: datetime
    runtime_seconds: float

    def to_table(self) -> pa.Table:
        """The one-row table, built from its columns' buffers (`pa.Table.from_pylist`, like
        every conversion of Python values, imports pandas: 0.3 s of every run)."""
        import numpy as np
        import pyarrow as pa

        from apesim.results.numpy_view import from_numpy, from_strings
        from apesim.results.schema import METADATA_SCHEMA

        row = asdict(self)
        created = self.created_utc
        created = created if created.tzinfo is not None else created.replace(tzinfo=UTC)
        row["created_utc"] = (created - _EPOCH) // timedelta(microseconds=1)
        columns = [
            from_strings([row[f.name]])
            if pa.types.is_string(f.type)
            else from_numpy(np.array([row[f.name]]), f.type)
            for f in METADATA_SCHEMA
        ]
        return pa.Table.from_arrays(columns, schema=METADATA_SCHEMA)

    @classmethod
    def from_table(cls, table: pa.Table) -> SimulationMetadata:
        if table.num_rows != 1:
            raise ValueError(f"metadata must have exactly one row, not {table.num_rows}")
        column = table.column("created_utc")
        if str(column.type) == "timestamp[us, tz=UTC]":  # read as a count of microseconds:
            # converting a zoned timestamp, pyarrow loads pandas (0.3 s of an import)
            import pyarrow as pa

            ticks = column.cast(pa.int64())[0].as_py()
            row = table.drop_columns(["created_utc"]).to_pylist()[0]
            return cls(**row, created_utc=_EPOCH + timedelta(microseconds=ticks))
        row = table.to_pylist()[0]
        created = row["created_utc"]
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        return cls(**{**row, "created_utc": created.astimezone(UTC)})

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["created_utc"] = iso_utc(self.created_utc)
        return out


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with a Z, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
