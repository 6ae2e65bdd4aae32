"""The metadata record's one-row table, built from buffers, is the table Arrow's own
conversion gives (which imports pandas), and reads back as the same record."""

from __future__ import annotations

from dataclasses import asdict
from datetime import UTC, datetime

import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim.results.metadata import SimulationMetadata
from apesim.results.schema import METADATA_SCHEMA

texts = st.text(max_size=40)


@settings(deadline=None)
@given(
    texts,
    texts,
    texts,
    st.integers(1, 10**9),
    st.floats(0.01, 100.0),
    st.integers(0, 2**63 - 1),
    st.datetimes(datetime(1970, 1, 1), datetime(2200, 1, 1)),
    st.floats(0.0, 1e6),
)
def test_the_table_is_what_arrow_converts_and_reads_back(
    sim_id: str,
    name: str,
    protocol: str,
    patients: int,
    years: float,
    seed: int,
    created: datetime,
    runtime: float,
) -> None:
    record = SimulationMetadata(
        sim_id, name, protocol, "1.0", "f" * 64, "2.0.0", patients, years, seed,
        created.replace(tzinfo=UTC), runtime,
    )  # fmt: skip
    table = record.to_table()
    table.validate(full=True)
    assert table.equals(pa.Table.from_pylist([asdict(record)], schema=METADATA_SCHEMA))
    assert SimulationMetadata.from_table(table) == record
