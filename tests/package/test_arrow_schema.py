"""The Arrow columns export reads from a Parquet footer without pyarrow are the ones pyarrow
reports for the file, type by type; anything not decoded gives None (pyarrow is asked)."""

from __future__ import annotations

import base64
import io

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apesim.package.arrow_schema import ArrowColumn, arrow_columns
from apesim.package.footer import footer_facts
from apesim.results.schema import METADATA_SCHEMA, PATIENTS_SCHEMA, VISITS_SCHEMA

DECODED = [
    *(pa.int8(), pa.int16(), pa.int32(), pa.int64()),
    *(pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()),
    *(pa.float16(), pa.float32(), pa.float64(), pa.bool_(), pa.null(), pa.date32()),
    *(pa.string(), pa.large_string(), pa.binary(), pa.large_binary()),
    *(pa.timestamp("ms"), pa.timestamp("us", tz="UTC"), pa.timestamp("ms", tz="Europe/Paris")),
    pa.dictionary(pa.int8(), pa.string()),
    pa.dictionary(pa.int16(), pa.string(), ordered=True),
    pa.dictionary(pa.uint8(), pa.binary()),
]
# Read back from Parquet as another type, or not flat: pyarrow decides.
NOT_DECODED = [
    pa.timestamp("s"),
    pa.date64(),
    pa.dictionary(pa.int32(), pa.large_string()),
    pa.dictionary(pa.int8(), pa.int32()),
    pa.list_(pa.int8()),
    pa.struct([pa.field("x", pa.int8())]),
    pa.decimal128(5, 2),
]


def parquet_of(schema: pa.Schema) -> bytes:
    sink = io.BytesIO()
    pq.write_table(schema.empty_table(), sink)
    return sink.getvalue()


def pyarrow_columns(data: bytes) -> list[ArrowColumn]:
    schema = pq.ParquetFile(pa.BufferReader(data)).schema_arrow
    return [ArrowColumn(f.name, str(f.type), f.nullable) for f in schema]


@pytest.mark.parametrize("schema", [PATIENTS_SCHEMA, VISITS_SCHEMA, METADATA_SCHEMA])
def test_the_format_tables_columns_are_pyarrows(schema: pa.Schema) -> None:
    data = parquet_of(schema)
    facts = footer_facts(data)
    assert facts is not None
    assert facts.columns == pyarrow_columns(data)


@pytest.mark.parametrize("kind", DECODED, ids=str)
@pytest.mark.parametrize("nullable", [True, False])
def test_each_decoded_type_is_named_as_pyarrow_names_it(kind: pa.DataType, nullable: bool) -> None:
    nullable = nullable or kind == pa.null()  # (a null column is always nullable)
    data = parquet_of(pa.schema([pa.field("a", kind, nullable), pa.field("b", pa.int32())]))
    facts = footer_facts(data)
    assert facts is not None and facts.columns is not None
    assert facts.columns == pyarrow_columns(data)


@pytest.mark.parametrize("kind", NOT_DECODED, ids=str)
def test_a_type_read_back_otherwise_is_left_to_pyarrow(kind: pa.DataType) -> None:
    facts = footer_facts(parquet_of(pa.schema([pa.field("a", kind)])))
    assert facts is not None
    assert facts.columns is None


def test_the_row_count_is_the_footers() -> None:
    table = pa.table({"a": pa.array(range(1234), pa.int32())})
    sink = io.BytesIO()
    pq.write_table(table, sink, row_group_size=500)
    facts = footer_facts(sink.getvalue())
    assert facts is not None and facts.rows == 1234


def test_bytes_that_are_not_parquet_give_nothing() -> None:
    assert footer_facts(b"PAR1 not really PAR1") is None
    assert footer_facts(b"") is None


@given(st.binary(max_size=400))
def test_any_bytes_decode_or_give_none_without_raising(message: bytes) -> None:
    columns = arrow_columns(message)
    assert columns is None or all(isinstance(c, ArrowColumn) for c in columns)


@given(st.data())
def test_a_damaged_schema_message_never_raises(data: st.DataObject) -> None:
    stored = pq.ParquetFile(pa.BufferReader(parquet_of(PATIENTS_SCHEMA))).metadata.metadata
    message = bytearray(base64.b64decode(stored[b"ARROW:schema"]))
    at = data.draw(st.integers(0, len(message) - 1))
    message[at] = data.draw(st.integers(0, 255))
    columns = arrow_columns(bytes(message))
    assert columns is None or all(isinstance(c, ArrowColumn) for c in columns)
