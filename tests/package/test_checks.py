"""The checks shared by the format handlers: table agreement (each finding, and the same
findings as a plain sort-and-search reference on random tables), value ranges, schemas and
`first_difference`."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apesim.errors import PackageFormatError, PackageIntegrityError
from apesim.package.checks import (
    check_patient_ids,
    check_schema,
    check_tables_agree,
    first_difference,
)
from apesim.results.schema import PATIENTS_SCHEMA, VISITS_SCHEMA


def _patients(ids: list[int], visits: list[int]) -> pa.Table:
    return pa.table(
        {"patient_id": pa.array(ids, pa.int32()), "visits": pa.array(visits, pa.int16())}
    )


def _visits(ids: list[int], days: list[int], chunk: int = 0) -> pa.Table:
    """A visits table, in chunks of `chunk` rows (one chunk when 0)."""
    table = pa.table({"patient_id": pa.array(ids, pa.int32()), "day": pa.array(days, pa.int32())})
    if chunk:
        return pa.Table.from_batches(table.to_batches(max_chunksize=chunk), table.schema)
    return table


def _finding(patients: pa.Table, visits: pa.Table) -> tuple[str, str] | None:
    try:
        check_tables_agree(patients, visits)
    except PackageIntegrityError as exc:
        return exc.code, str(exc)
    return None


def _reference(patients: pa.Table, visits: pa.Table) -> tuple[str, str] | None:
    """The same rules by sorting and searching (APE's earlier implementation)."""
    pid = patients.column("patient_id").to_numpy().astype(np.int64)
    n = pid.size
    if n and (pid.min() != 0 or pid.max() != n - 1):
        return (
            "consistency.values",
            "data/patients.parquet: patient_id must run from 0 to patients - 1",
        )
    if pid.size and np.any(np.diff(np.sort(pid)) == 0):
        return "consistency.duplicate_patient", "data/patients.parquet: patient_id is not unique"
    v_pid = visits.column("patient_id").to_numpy().astype(np.int64)
    v_day = visits.column("day").to_numpy().astype(np.int64)
    if v_pid.size:
        step = np.diff(v_pid)
        if np.any(step < 0) or np.any((step == 0) & (np.diff(v_day) <= 0)):
            return (
                "consistency.order",
                "data/visits.parquet: rows are not sorted by patient_id and day",
            )
    sorted_pid = np.sort(pid)
    pos = np.searchsorted(sorted_pid, v_pid)
    found = (
        (pos < n) & (sorted_pid[np.minimum(pos, max(n - 1, 0))] == v_pid)
        if n
        else np.zeros(v_pid.size, bool)
    )
    if not np.all(found):
        return (
            "consistency.orphan_visit",
            f"data/visits.parquet: visits of patient {int(v_pid[~found][0])}, who is not in "
            "data/patients.parquet",
        )
    counts = np.bincount(pos, minlength=n)
    declared = patients.column("visits").to_numpy()[np.argsort(pid, kind="stable")]
    if not np.array_equal(counts, declared):
        return (
            "consistency.visits",
            "data/patients.parquet: visit counts differ from data/visits.parquet",
        )
    return None


GOOD_PATIENTS = _patients([2, 0, 1, 3], [2, 1, 0, 3])
GOOD_VISITS = ([0, 2, 2, 3, 3, 3], [5, 1, 9, 0, 7, 8])


@pytest.mark.parametrize("chunk", [0, 1, 2, 4])
def test_tables_that_agree_pass_in_any_chunking(chunk: int) -> None:
    assert _finding(GOOD_PATIENTS, _visits(*GOOD_VISITS, chunk)) is None


@pytest.mark.parametrize("chunk", [0, 1, 4])
@pytest.mark.parametrize(
    ("patients", "ids", "days", "code", "words"),
    [
        (
            _patients([0, 1, 1, 3], [1, 0, 0, 0]),
            [0],
            [1],
            "consistency.duplicate_patient",
            "unique",
        ),
        (_patients([0, 1, 5], [1, 0, 0]), [0], [1], "consistency.values", "0 to patients - 1"),
        (GOOD_PATIENTS, [0, 2, 3, 2, 3, 3], [5, 1, 0, 9, 7, 8], "consistency.order", "sorted"),
        (GOOD_PATIENTS, [0, 2, 2, 3, 3, 3], [5, 9, 9, 0, 7, 8], "consistency.order", "sorted"),
        (GOOD_PATIENTS, [0, 2, 2, 3, 3, 3], [5, 9, 1, 0, 7, 8], "consistency.order", "sorted"),
        (GOOD_PATIENTS, [-4, 0, 2, 2, 3], [0, 5, 1, 9, 0], "consistency.orphan_visit", "-4,"),
        (GOOD_PATIENTS, [0, 2, 2, 3, 7, 9], [5, 1, 9, 0, 1, 1], "consistency.orphan_visit", "7,"),
        (GOOD_PATIENTS, [0, 2, 3, 3, 3], [5, 1, 0, 7, 8], "consistency.visits", "counts"),
        (GOOD_PATIENTS, [1, 2, 2, 3, 3, 3], [5, 1, 9, 0, 7, 8], "consistency.visits", "counts"),
    ],
)
def test_each_disagreement_is_its_finding(
    patients: pa.Table, ids: list[int], days: list[int], code: str, words: str, chunk: int
) -> None:
    found = _finding(patients, _visits(ids, days, chunk))
    assert found is not None and found[0] == code and words in found[1]
    assert found == _reference(patients, _visits(ids, days))


def test_no_visits_and_no_patients() -> None:
    assert _finding(_patients([0, 1], [0, 0]), _visits([], [])) is None
    assert _finding(_patients([], []), _visits([], [])) is None
    found = _finding(_patients([], []), _visits([3], [1]))
    assert found == _reference(_patients([], []), _visits([3], [1]))
    assert found is not None and found[0] == "consistency.orphan_visit"


def test_random_tables_give_the_reference_findings() -> None:
    rng = np.random.default_rng(8)
    outcomes = set()
    for _ in range(400):
        n = int(rng.integers(1, 6))
        ids = rng.permutation(n)
        if rng.random() < 0.15:
            ids[rng.integers(n)] = ids[rng.integers(n)]
        rows = int(rng.integers(0, 12))
        v_pid = np.sort(rng.integers(-1 if rng.random() < 0.2 else 0, n + 1, rows))
        v_day = np.arange(rows) if rng.random() < 0.7 else rng.integers(0, 4, rows)
        if rows > 1 and rng.random() < 0.1:
            v_pid = rng.permutation(v_pid)
        counts = np.bincount(v_pid[(v_pid >= 0) & (v_pid < n)], minlength=n)[ids]
        if rng.random() < 0.2:
            counts[rng.integers(n)] += 1
        patients = _patients(ids.tolist(), counts.tolist())
        visits = _visits(v_pid.tolist(), v_day.tolist(), int(rng.integers(0, 4)))
        expected = _reference(patients, _visits(v_pid.tolist(), v_day.tolist()))
        assert _finding(patients, visits) == expected
        outcomes.add(None if expected is None else expected[0])
    assert len(outcomes) == 6  # every finding, and agreement, were reached


def test_patient_ids_must_run_from_zero() -> None:
    check_patient_ids(_patients([1, 0], [0, 0]))
    with pytest.raises(PackageIntegrityError, match="0 to patients - 1"):
        check_patient_ids(_patients([1, 2], [0, 0]))


def test_schema_comparison_names_the_first_difference() -> None:
    check_schema("t", PATIENTS_SCHEMA, PATIENTS_SCHEMA)
    with pytest.raises(PackageFormatError, match="missing column 'patient_id'") as exc:
        check_schema("t", VISITS_SCHEMA.remove(0), VISITS_SCHEMA)
    assert exc.value.code == "parquet.schema"
    with pytest.raises(PackageFormatError, match="column 'day' is int64"):
        check_schema("t", VISITS_SCHEMA.set(1, pa.field("day", pa.int64(), False)), VISITS_SCHEMA)


def test_first_difference() -> None:
    assert first_difference({"a": {"b": 1.0}}, {"a": {"b": 1}}) is None
    assert first_difference({"a": {"b": 1.5}}, {"a": {"b": 1}}) == "a.b"
    assert first_difference({"a": 1}, {"a": 1, "z": 2}) == "z"
    assert first_difference({"a": True}, {"a": 1}) == "a"
    assert first_difference(float("nan"), float("nan")) is None


@given(st.lists(st.lists(st.one_of(st.none(), st.integers(-(2**15), 2**15 - 1)), max_size=30)))
def test_bounds_are_the_smallest_and_largest_value_not_null(chunks: list[list[int | None]]) -> None:
    from apesim.package.checks import _bounds

    table = pa.table({"x": pa.chunked_array([pa.array(c, pa.int16()) for c in chunks], pa.int16())})
    present = [v for c in chunks for v in c if v is not None]
    assert _bounds(table, "x") == ((min(present), max(present)) if present else (None, None))
