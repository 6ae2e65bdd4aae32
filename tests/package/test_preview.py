"""results_preview.csv: no cell is a spreadsheet formula, the exporter's preview is the one
import accepts, and any other preview is refused (the corpus has the hostile packages)."""

from __future__ import annotations

import io
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.errors import PackageIntegrityError
from apesim.package import export_package, inspect_package, writer
from apesim.package import format as fmt
from apesim.package.preview import check_preview, may_fit, preview_csv, smallest_size
from apesim.results.schema import DISCONTINUATION_REASONS, PATIENTS_SCHEMA, SEX_VALUES, dictionary
from apesim.workspace import Workspace
from tests.package.conftest import CREATED
from tests.package.corpus import members, rebuild

_FORMULA_START = (b"=", b"+", b"-", b"@", b"\t", b"\r")


def _patients(n: int, seed: int, sexes: tuple[str, ...] = SEX_VALUES) -> pa.Table:
    """A patients table of the format's schema with values anywhere in their types' ranges."""
    rng = np.random.default_rng(seed)
    arrays: list[pa.Array] = []
    for field in PATIENTS_SCHEMA:
        mask = rng.random(n) < 0.3 if field.nullable else None
        if field.name == "sex":
            words: tuple[str, ...] = sexes
        elif field.name == "discontinuation_reason":
            words = DISCONTINUATION_REASONS
        else:
            info = np.iinfo(field.type.to_pandas_dtype())
            values = rng.integers(info.min, info.max, n, endpoint=True)
            arrays.append(pa.array(values.astype(info.dtype), field.type, mask=mask))
            continue
        indices = pa.array(rng.integers(0, len(words), n).astype(np.int8), mask=mask)
        arrays.append(pa.DictionaryArray.from_arrays(indices, dictionary(words)))
    return pa.Table.from_arrays(arrays, schema=PATIENTS_SCHEMA)


def _cells(csv: bytes) -> list[bytes]:
    return [cell for line in csv.splitlines()[1:] for cell in line.split(b",")]


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_no_cell_is_a_formula_and_the_preview_checks(n: int, seed: int) -> None:
    patients = _patients(n, seed)
    csv = preview_csv(patients)
    assert csv is not None
    for cell in _cells(csv):
        if cell.startswith(_FORMULA_START):
            assert cell[:1] == b"-" and cell[1:].isdigit(), cell  # a negative integer only
    check_preview(csv, patients)


def test_text_that_is_not_a_word_gets_no_preview() -> None:
    patients = _patients(10, 1, sexes=("F", "=1+1"))
    assert preview_csv(patients) is None
    with pytest.raises(PackageIntegrityError) as caught:
        check_preview(b"patient_id\n", patients)
    assert caught.value.code == "consistency.preview"


def test_a_preview_over_the_limit_is_not_written() -> None:
    patients = _patients(400_000, 2)  # about 20 MB of CSV
    assert preview_csv(patients) is None


def test_the_exported_preview_is_accepted_and_the_preview_is_optional(
    valid_package: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A package with the preview is valid, and so is one its writer wrote without (as for
    a population too large for it): the self-description of format 1.1 lists what is there."""
    assert fmt.PREVIEW in members(valid_package)
    ws = Workspace(tmp_path / "ws")
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(50, 1.0, 3), name="small"
    )
    monkeypatch.setattr(writer, "may_fit", lambda rows, schema: False)
    sink = io.BytesIO()
    export_package(ws, record.sim_id, sink, created=CREATED)
    report = inspect_package(sink.getvalue())
    assert report.ok, report.error
    with zipfile.ZipFile(sink) as zf:
        assert fmt.PREVIEW not in zf.namelist()


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d[:-1],
        lambda d: d + b'0,0,0,"F",0,0,0,0,,,\n',
        lambda d: d.replace(b"\n", b"\r\n"),
        lambda d: d.replace(b'"patient_id"', b"patient_id", 1),
    ],
    ids=["cut_short", "extra_row", "crlf_line_ends", "header_unquoted"],
)
def test_any_other_preview_is_refused(
    valid_package: bytes, change: Callable[[bytes], bytes]
) -> None:
    files = members(valid_package)
    files[fmt.PREVIEW] = change(files[fmt.PREVIEW])
    report = inspect_package(rebuild(files))
    assert report.error is not None and report.error.code == "consistency.preview"


def test_smallest_size_never_exceeds_the_real_preview() -> None:
    """The estimate that skips building a preview is a true lower bound, and tight enough to
    rule out a million patients before their table is decoded."""
    table = _patients(3000, 8)
    built = preview_csv(table)
    assert built is not None
    assert smallest_size(table.num_rows, table.schema) <= len(built)
    assert not may_fit(1_000_000, table.schema)
    assert may_fit(100_000, table.schema)
