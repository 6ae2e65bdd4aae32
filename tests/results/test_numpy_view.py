"""Arrow columns read into numpy from their buffers are exactly what pyarrow's own
conversion gives (which loads pandas): integers and booleans, sliced, chunked, with nulls
filled."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim.results.numpy_view import from_numpy, from_strings, non_null, to_numpy

INTEGERS = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16()]


@st.composite
def columns(draw: st.DrawFn) -> tuple[pa.ChunkedArray, bool]:
    kind = draw(st.sampled_from([*INTEGERS, pa.bool_()]))
    nulls = draw(st.booleans())
    if kind == pa.bool_():
        value = st.booleans()
    else:
        info = np.iinfo(kind.to_pandas_dtype())
        value = st.integers(int(info.min), int(info.max))
    chunks = []
    for _ in range(draw(st.integers(1, 3))):
        values = draw(st.lists(st.none() | value if nulls else value, max_size=40))
        array = pa.array(values, kind)
        cut = draw(st.integers(0, len(values)))
        chunks.append(array.slice(cut // 2, len(values) - cut))  # an offset into the buffers
    return pa.chunked_array(chunks, kind), nulls


@given(columns())
def test_a_column_reads_as_pyarrow_reads_it(found: tuple[pa.ChunkedArray, bool]) -> None:
    column, nulls = found
    expected = column.fill_null(False if column.type == pa.bool_() else 0).to_numpy()
    got = to_numpy(column, 0) if nulls else to_numpy(column)
    assert got.tolist() == expected.tolist()
    if len(got):
        assert got.dtype == expected.dtype or column.type == pa.bool_()


def test_one_chunk_without_nulls_is_a_view() -> None:
    array = pa.array(np.arange(10, dtype=np.int32))
    view = to_numpy(array.slice(3, 4))
    assert view.tolist() == [3, 4, 5, 6] and not view.flags.owndata


@given(
    st.lists(st.lists(st.one_of(st.none(), st.integers(-(2**31), 2**31 - 1)), max_size=40)),
    st.integers(0, 5),
)
def test_non_null_gives_the_values_that_are_not_null(
    chunks: list[list[int | None]], cut: int
) -> None:
    column = pa.chunked_array([pa.array(c, pa.int32()) for c in chunks], pa.int32())
    for chunk in column.chunks:
        sliced = chunk.slice(min(cut, len(chunk)))  # an offset into the buffers
        assert non_null(sliced).tolist() == [v for v in sliced.to_pylist() if v is not None]


BUILT = [pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.float64(), pa.bool_()]


@st.composite
def built(draw: st.DrawFn) -> tuple[np.ndarray, pa.DataType, np.ndarray | None]:
    kind = draw(st.sampled_from(BUILT))
    size = draw(st.integers(0, 70))
    if kind == pa.bool_():
        values = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), bool)
    elif kind == pa.float64():
        floats = st.floats(allow_nan=False, width=64)
        values = np.array(draw(st.lists(floats, min_size=size, max_size=size)), np.float64)
    else:
        info = np.iinfo(kind.to_pandas_dtype())
        ints = st.integers(int(info.min), int(info.max))
        values = np.array(draw(st.lists(ints, min_size=size, max_size=size)), info.dtype)
    masked = draw(st.booleans())
    mask = np.array(draw(st.lists(st.booleans(), min_size=size, max_size=size)), bool)
    return values, kind, mask if masked else None


@settings(deadline=None)
@given(built())
def test_from_numpy_is_what_pa_array_gives(
    case: tuple[np.ndarray, pa.DataType, np.ndarray | None],
) -> None:
    values, kind, mask = case
    made = from_numpy(values, kind, mask=mask)
    made.validate(full=True)
    assert made.type == kind and made.equals(pa.array(values, kind, mask=mask))


@settings(deadline=None)
@given(st.lists(st.text(), max_size=10))
def test_from_strings_is_what_pa_array_gives(values: list[str]) -> None:
    made = from_strings(values)
    made.validate(full=True)
    assert made.equals(pa.array(values, pa.string()))
