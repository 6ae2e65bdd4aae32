"""The Parquet footer and page-header checks that run before Arrow decodes a stranger's file:
each rule on its own (on the generic road the earlier APE's tables take), a process that
never dies on a forged file, and fuzzed footers that only ever give a PackageError."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apesim.errors import PackageError, PackageFormatError, PackageLimitError
from apesim.package import format as fmt
from apesim.package import import_package
from apesim.package.content import read_parquet
from apesim.package.parquet_layout import check_layout
from apesim.package.thrift import MAX_CONTAINER, Reader, ThriftError
from apesim.workspace import Workspace
from tests.conftest import SHARED
from tests.package.conftest import snapshot
from tests.package.corpus import members, rebuild
from tests.package.parquet_forge import I32, I64, STRUCT, Forged, V, forge
from tests.package.test_legacy import rebuild as legacy_rebuild

LIMITS = fmt.ReadLimits()
APE = str(Path(sys.executable).parent / "ape")
LEGACY_SMALL = SHARED / "fixtures" / "ape-legacy" / "small_100p_2y_abs.zip"


def _table() -> pa.Table:
    """A small table with the column kinds the format uses: required and optional ints,
    dictionary text, plain text."""
    n = 3000
    return pa.table(
        {
            "id": pa.array(range(n), pa.int32()),
            "day": pa.array([None if i % 3 == 0 else i for i in range(n)], pa.int32()),
            "state": pa.array(["STABLE", "ACTIVE", "NAIVE"] * (n // 3)).dictionary_encode(),
            "note": pa.array([f"n{i}" for i in range(n)]),
        },
        schema=pa.schema(
            [
                pa.field("id", pa.int32(), nullable=False),
                pa.field("day", pa.int32()),
                pa.field("state", pa.dictionary(pa.int8(), pa.string())),
                pa.field("note", pa.string()),
            ]
        ),
    )


def _parquet(**options: object) -> bytes:
    sink = io.BytesIO()
    pq.write_table(_table(), sink, **options)  # type: ignore[arg-type]
    return sink.getvalue()


def _check(data: bytes) -> None:
    check_layout("t.parquet", memoryview(data), LIMITS, max_rows=LIMITS.max_rows)


def _refused(data: bytes, code: str) -> str:
    with pytest.raises(PackageError) as caught:
        _check(data)
    assert caught.value.code == code, caught.value
    assert str(caught.value).startswith("t.parquet: ")
    return str(caught.value)


def test_valid_files_pass_in_every_layout_arrow_writes() -> None:
    for options in (
        {},
        {"compression": "zstd"},
        {"compression": "none"},
        {"data_page_version": "2.0"},
        {"row_group_size": 1000},
        {"write_page_index": True},
        {"column_encoding": {"id": "DELTA_BINARY_PACKED"}, "use_dictionary": ["state"]},
    ):
        data = _parquet(**options)
        _check(data)
        table = read_parquet("t.parquet", memoryview(data), LIMITS)
        assert table.equals(_table()), options


def test_only_text_a_row_may_repeat_bounds_the_decode_batches() -> None:
    """A dictionary value (or a DELTA_BYTE_ARRAY prefix) may be copied into many rows, so the
    largest such page sizes the batches; plain text decodes to its own size."""
    long_note = pa.table({"note": pa.array(["x" * 5000 + str(i) for i in range(50)])})
    plain = io.BytesIO()
    pq.write_table(long_note, plain, use_dictionary=False, compression="none")
    layout = check_layout("t.parquet", memoryview(plain.getvalue()), LIMITS, max_rows=100)
    assert layout.largest_text_page == 0
    for options in (
        {"use_dictionary": True},
        {"use_dictionary": False, "column_encoding": {"note": "DELTA_BYTE_ARRAY"}},
    ):
        sink = io.BytesIO()
        pq.write_table(long_note, sink, compression="none", **options)  # type: ignore[arg-type]
        layout = check_layout("t.parquet", memoryview(sink.getvalue()), LIMITS, max_rows=100)
        assert layout.largest_text_page > 5000, options  # at least the longest value


def _set_schema(column: str, field: int, value: V) -> Callable[[Forged], None]:
    return lambda f: f.schema(column).__setitem__(field, value)


def test_required_column_with_a_definition_level_histogram_is_refused() -> None:
    message = _refused(forge(_parquet(), _set_schema("day", 3, V(I32, 0))), "parquet.layout")
    assert "definition level histogram" in message


def test_required_column_whose_v2_pages_carry_definition_levels_is_refused() -> None:
    def edit(f: Forged) -> None:
        f.schema("day")[3] = V(I32, 0)
        f.meta(0, 1).pop(16)  # no size statistics: the pages themselves must be checked

    message = _refused(forge(_parquet(data_page_version="2.0"), edit), "parquet.layout")
    assert "required, but a page carries definition levels" in message


def test_text_column_of_physical_type_int32_is_refused() -> None:
    def edit(f: Forged) -> None:
        f.schema("note")[1] = V(I32, 1)
        f.meta(0, 3)[1] = V(I32, 1)

    _refused(forge(_parquet(), edit), "parquet.schema")


def test_byte_array_sizes_on_an_int32_column_are_refused() -> None:
    def edit(f: Forged) -> None:
        f.meta(0, 0)[16] = V(STRUCT, {1: V(I64, 12)})

    assert "byte-array sizes" in _refused(forge(_parquet(), edit), "parquet.layout")


def test_chunk_type_differing_from_the_schema_is_refused() -> None:
    _refused(forge(_parquet(), lambda f: f.meta(0, 0).__setitem__(1, V(I32, 2))), "parquet.layout")


def test_repeated_column_is_refused() -> None:
    _refused(forge(_parquet(), _set_schema("id", 3, V(I32, 2))), "parquet.schema")


def test_integer_width_beyond_the_physical_type_is_refused() -> None:
    def edit(f: Forged) -> None:
        f.schema("id")[10] = V(STRUCT, {10: V(STRUCT, {1: V(3, 64), 2: V(1, True)})})

    _refused(forge(_parquet(), edit), "parquet.schema")


def test_unknown_codec_is_refused() -> None:
    _refused(forge(_parquet(), lambda f: f.meta(0, 0).__setitem__(4, V(I32, 3))), "parquet.layout")


def test_value_count_differing_from_the_rows_is_refused() -> None:
    _refused(forge(_parquet(), lambda f: f.meta(0, 2).__setitem__(5, V(I64, 1))), "parquet.layout")


def test_page_values_differing_from_the_chunk_are_refused() -> None:
    def edit(f: Forged) -> None:
        page = next(p for p in f.pages[0][0] if p.header[1].value == 0)
        page.header[5].value[1] = V(I32, 7)

    _refused(forge(_parquet(), edit), "parquet.layout")


def test_page_declaring_more_than_the_page_limit_is_refused_before_decoding() -> None:
    def edit(f: Forged) -> None:
        f.pages[0][3][0].header[2] = V(I32, LIMITS.max_parquet_page_bytes + 1)

    _refused(forge(_parquet(), edit), "limit.parquet_page")


def test_dictionary_page_after_a_data_page_is_refused() -> None:
    def edit(f: Forged) -> None:
        pages = f.pages[0][2]
        pages.append(pages[0])

    _refused(forge(_parquet(), edit), "parquet.layout")


def test_dictionary_encoded_page_without_a_dictionary_is_refused() -> None:
    def edit(f: Forged) -> None:
        f.pages[0][2] = f.pages[0][2][1:]

    _refused(forge(_parquet(), edit), "parquet.layout")


def test_chunk_running_past_the_data_is_refused() -> None:
    data = _parquet()
    forged = Forged.load(data)
    meta = forged.meta(0, 3)
    meta.pop(11, None)
    meta[9] = V(I64, len(data) - 20)  # the last chunk: from the footer on
    _refused(forged.with_footer(data), "parquet.layout")


def test_data_page_offset_off_the_first_data_page_is_refused() -> None:
    data = _parquet()
    forged = Forged.load(data)
    meta = forged.meta(0, 3)
    meta[9] = V(I64, meta[9].value + 1)
    _refused(forged.with_footer(data), "parquet.layout")


def test_overlapping_chunks_are_refused() -> None:
    data = _parquet(compression="none")
    forged = Forged.load(data)
    first = forged.meta(0, 0)
    second = forged.meta(0, 1)
    for field in (7, 9, 11):  # the second chunk: the first one's bytes again
        second[field] = first[field]
    assert "overlap" in _refused(forged.with_footer(data), "parquet.layout")


def test_too_many_row_groups_are_refused_from_the_footer() -> None:
    data = _parquet(row_group_size=10)  # 300 row groups
    with pytest.raises(PackageLimitError) as caught:
        check_layout(
            "t.parquet", memoryview(data), fmt.ReadLimits(max_row_groups=299), max_rows=10**6
        )
    assert caught.value.code == "limit.row_groups"


def test_declared_decode_beyond_the_budget_is_refused_before_decoding() -> None:
    data = _parquet(compression="zstd")
    limits = fmt.ReadLimits(max_ratio=1.0, min_parquet_budget=1)
    with pytest.raises(PackageLimitError) as caught:
        read_parquet("t.parquet", memoryview(data), limits)
    assert caught.value.code == "limit.ratio"


def test_not_a_parquet_file_is_refused() -> None:
    _refused(b"PAR1" + b"\x00" * 20 + b"PAR1", "parquet.layout")
    with pytest.raises(PackageFormatError) as caught:
        _check(b"PK\x03\x04")
    assert caught.value.code == "parquet.invalid"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_fuzzed_footers_give_only_package_errors(data: st.DataObject) -> None:
    """Any byte of the footer or of a page header changed: the checks pass or refuse with
    a PackageError, never another exception."""
    original = bytearray(_parquet(data_page_version=data.draw(st.sampled_from(["1.0", "2.0"]))))
    footer_start = len(original) - 8 - int.from_bytes(original[-8:-4], "little")
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(4, len(original) - 9))
        if data.draw(st.booleans()):  # favour the footer, where the structure is
            at = data.draw(st.integers(footer_start, len(original) - 9))
        original[at] = data.draw(st.integers(0, 255))
    with contextlib.suppress(PackageError):
        _check(bytes(original))


# -- The process survives: these files killed Arrow's C++ reader with SIGABRT. ------------


def _legacy_with_a_forged_required_column() -> bytes:
    """The earlier APE's patients table with an optional column declared REQUIRED."""
    if not LEGACY_SMALL.is_file():
        pytest.skip(f"{LEGACY_SMALL} is absent")
    files = members(LEGACY_SMALL.read_bytes())
    table = pq.read_table(io.BytesIO(files["data/patients.parquet"]), use_threads=False)
    optional = next(f.name for f in table.schema if f.nullable)
    files["data/patients.parquet"] = forge(
        files["data/patients.parquet"], _set_schema(optional, 3, V(I32, 0))
    )
    return legacy_rebuild(files)


def test_earlier_ape_table_with_a_forged_required_column_is_refused(tmp_path: Path) -> None:
    package = _legacy_with_a_forged_required_column()
    ws = Workspace(tmp_path / "ws")
    before = snapshot(tmp_path)
    with pytest.raises(PackageFormatError) as caught:
        import_package(ws, package, source_name="old.zip")
    assert caught.value.code == "parquet.layout"
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("kind", ["required_with_levels", "text_as_int32"])
def test_ape_verify_survives_the_files_that_aborted_arrow(
    kind: str, valid_package: bytes, tmp_path: Path
) -> None:
    from tests.package import corpus

    build = {
        "required_with_levels": corpus._forged(
            fmt.PATIENTS, corpus._required_but_levelled("discontinuation_day")
        ),
        "text_as_int32": corpus._forged(fmt.PATIENTS, corpus._text_as_int32("sex")),
    }[kind]
    path = tmp_path / "evil.zip"
    path.write_bytes(build(valid_package))
    done = subprocess.run(
        [APE, "verify", str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, "APE_WORKSPACE": str(tmp_path / "ws")},
        check=False,
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stderr.count("\n") == 1 and "parquet.schema" not in done.stdout
    assert "data/patients.parquet" in done.stderr


def test_rebuild_keeps_forged_bytes(valid_package: bytes) -> None:
    """The corpus helper really ships the forged file (guards the tests above)."""
    files = members(valid_package)
    forged = forge(files[fmt.PATIENTS], _set_schema("discontinuation_day", 3, V(I32, 0)))
    assert members(rebuild({**files, fmt.PATIENTS: forged}))[fmt.PATIENTS] == forged


# -- Found by review: sizes that do not show in the pages, and costly headers. -----------


def test_more_columns_than_the_limit_are_refused() -> None:
    table = pa.table({f"c{i}": pa.array([1], pa.int32()) for i in range(129)})
    sink = io.BytesIO()
    pq.write_table(table, sink)
    _refused(sink.getvalue(), "limit.parquet_columns")


def test_fixed_width_columns_beyond_the_budget_are_refused_before_decoding(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """All-null columns are a few bytes of levels on disk, but every row still decodes to
    its width: a million rows of 20 of them is 180 MB, refused from the footer."""
    rows = 1_000_000
    table = pa.table({f"c{i}": pa.nulls(rows, pa.int64()) for i in range(20)})
    sink = io.BytesIO()
    pq.write_table(table, sink)

    def never(*args: object, **kwargs: object) -> None:
        raise AssertionError("Arrow was asked to decode")

    monkeypatch.setattr("apesim.package.content.pq.ParquetFile", never)
    with pytest.raises(PackageLimitError) as caught:
        read_parquet("t.parquet", memoryview(sink.getvalue()), LIMITS)
    assert caught.value.code == "limit.ratio"


def test_a_page_header_over_a_mebibyte_is_refused() -> None:
    def edit(f: Forged) -> None:
        page = next(p for p in f.pages[0][0] if p.header[1].value == 0)
        page.header[5].value[5] = V(STRUCT, {1: V(8, b"x" * (2 << 20))})  # page statistics

    _refused(forge(_parquet(), edit), "parquet.layout")


def test_thrift_containers_and_values_are_capped() -> None:
    size = MAX_CONTAINER + 1
    huge_list = bytes([0x19, 0xF3]) + _varint(size) + bytes(size) + b"\x00"
    with pytest.raises(ThriftError, match="container of more than"):
        Reader(huge_list).read_struct()
    fields = b"".join(bytes([0x15, 0x02]) for _ in range(11)) + b"\x00"  # 11 i32 fields
    with pytest.raises(ThriftError, match="more than 10 values"):
        Reader(fields, max_values=10).read_struct()
    assert len(Reader(fields, max_values=11).read_struct()) == 11


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes([*out, n])


def test_an_empty_table_with_one_empty_row_group_is_read() -> None:
    sink = io.BytesIO()
    with pq.ParquetWriter(sink, _table().schema) as writer:
        writer.write_table(_table().slice(0, 0))
    data = sink.getvalue()
    assert pq.ParquetFile(pa.BufferReader(data)).metadata.num_row_groups == 1
    assert read_parquet("t.parquet", memoryview(data), LIMITS).num_rows == 0


def test_a_dictionary_offset_of_zero_follows_arrows_rule() -> None:
    """Older writers left the dictionary offset 0 and pointed the data page offset at the
    dictionary page: Arrow reads that, so APE does too."""
    data = _parquet()
    forged = Forged.load(data)
    meta = forged.meta(0, 2)  # the dictionary-encoded column
    meta[9] = V(I64, meta[11].value)
    meta[11] = V(I64, 0)
    table = read_parquet("t.parquet", memoryview(forged.with_footer(data)), LIMITS)
    assert table.equals(_table())


def _ids_table(values: list[str], rows: int) -> bytes:
    ids = pa.array([values[i % len(values)] for i in range(rows)])
    sink = io.BytesIO()
    pq.write_table(pa.table({"patient_id": ids}), sink)  # dictionary pages, as pandas writes
    return sink.getvalue()


def test_a_dictionary_bounds_batches_by_its_longest_value_not_its_size() -> None:
    """Earlier-APE tables hold text ids in dictionary pages of up to a mebibyte: sized by the
    page, a batch held 64 rows (a 5M-row table took 2.9 s instead of 0.1 s)."""
    values = [f"PATIENT_{i:06d}" for i in range(30_000)] + ["P" * 100]
    data = _ids_table(values, 200_000)
    layout = check_layout("t.parquet", memoryview(data), LIMITS, max_rows=LIMITS.max_rows)
    assert layout.largest_text_page == 100
    table = read_parquet("t.parquet", memoryview(data), LIMITS)
    assert table.column(0).num_chunks == 1


def test_a_dictionary_page_promising_more_values_than_it_holds_is_refused() -> None:
    def edit(f: Forged) -> None:
        page = f.pages[0][0][0]
        assert page.header[1].value == 2  # the dictionary page
        page.header[7].value[1] = V(I32, page.header[7].value[1].value + 1)

    _refused(forge(_ids_table(["a", "bb", "ccc"], 10), edit), "parquet.layout")
