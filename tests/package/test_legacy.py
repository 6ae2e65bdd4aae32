"""Packages of the earlier APE: the four samples its exporter wrote import, convert into our
data model, agree with their own summary statistics and keep their original files; doctored
variants are refused with the workspace unchanged; variations in the Arrow types that
exporter's library versions produce are read the same way."""

from __future__ import annotations

import hashlib
import io
import json
import math
import tempfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim import api, audit
from apesim.errors import (
    PackageError,
    PackageFormatError,
    PackageIntegrityError,
    PackageSecurityError,
    PackageVersionError,
)
from apesim.package import export_package, import_package, inspect_package
from apesim.package import format as fmt
from apesim.package.legacy import IMPORT_NOTE, LABEL
from apesim.protocol import parse_protocol
from apesim.protocol.convert import convert_protocol_text
from apesim.protocol.schema import STATES
from apesim.workspace import Workspace, layout
from tests.conftest import SHARED

LEGACY = SHARED / "fixtures" / "ape-legacy"
SAMPLES = (
    "small_100p_2y_abs.zip",
    "medium_1000p_5y_abs.zip",
    "medium_1000p_5y_des.zip",
    "timebased_1000p_5y_abs.zip",
)
TIME_BASED = "timebased_1000p_5y_abs.zip"
SMALL = "small_100p_2y_abs.zip"


def sample(name: str) -> Path:
    path = LEGACY / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the earlier-APE samples come from ../shared/fixtures")
    return path


def members(data: bytes | Path) -> dict[str, bytes]:
    source = io.BytesIO(data) if isinstance(data, bytes) else data
    with zipfile.ZipFile(source) as zf:
        return {info.filename: zf.read(info) for info in zf.infolist()}


def rebuild(files: dict[str, bytes], *, refresh: bool = True) -> bytes:
    """A ZIP of `files`; with `refresh`, the manifest's checksums match the files again."""
    files = dict(files)
    if refresh:
        manifest = json.loads(files["manifest.json"])
        manifest["file_checksums"] = {
            name: hashlib.sha256(files[name]).hexdigest()
            for name in manifest["file_checksums"]
            if name in files
        }
        manifest["total_files"] = len(manifest["file_checksums"])
        files["manifest.json"] = json.dumps(manifest, indent=2).encode()
    sink = io.BytesIO()
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return sink.getvalue()


def read_parquet(data: bytes) -> pa.Table:
    return pq.read_table(pa.BufferReader(data), use_threads=False)


def parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def replace_column(data: bytes, column: str, array: pa.Array | list[Any]) -> bytes:
    table = read_parquet(data)
    i = table.column_names.index(column)
    return parquet(
        table.set_column(i, column, pa.array(array) if isinstance(array, list) else array)
    )


def snapshot(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


@pytest.fixture(scope="module")
def imported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Workspace, dict[str, str]]:
    """Every sample imported once into one workspace: file name -> sim_id."""
    ws = Workspace(tmp_path_factory.mktemp("legacy-ws"))
    ids = {}
    for name in SAMPLES:
        if (LEGACY / name).is_file():
            ids[name] = import_package(ws, LEGACY / name, source_name=name).sim_id
    return ws, ids


def loaded(imported: tuple[Workspace, dict[str, str]], name: str) -> api.SimulationResults:
    sample(name)
    ws, ids = imported
    return api.load_simulation(ws, ids[name])


# -- the samples ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", SAMPLES)
def test_inspect_names_the_earlier_format(name: str) -> None:
    report = inspect_package(sample(name))
    assert report.ok, report.error
    assert report.format == LABEL == "earlier APE 1.0"
    assert all(check.passed for check in report.checks)
    assert report.metadata is not None and report.metadata["patients"] > 0


def _mean_sd(values: np.ndarray, ddof: int) -> tuple[float, float]:
    return float(values.mean()), float(values.std(ddof=ddof))


@pytest.mark.parametrize("name", SAMPLES)
def test_statistics_agree_with_the_earlier_summary(imported: Any, name: str) -> None:
    sim = loaded(imported, name)
    theirs = json.loads(members(sample(name))["data/summary_stats.json"])
    patients, visits = sim.patients, sim.visits
    n = patients.num_rows
    assert n == theirs["total_patients"] == theirs["patient_count"]
    assert visits.num_rows == theirs["total_visits"] == sim.summary["visits"]
    injections = int(pc.sum(visits.column("injected").cast(pa.int64())).as_py())
    assert injections == theirs["total_injections"] == sim.summary["injections"]["total"]
    assert math.isclose(visits.num_rows / n, theirs["mean_visits_per_patient"], rel_tol=1e-12)
    # Their discontinuation rate counts deaths; ours keeps them apart.
    stopped = patients.column("discontinuation_day").is_valid()
    died = patients.column("death_day").is_valid()
    rate = int(pc.sum(pc.or_(stopped, died).cast(pa.int64())).as_py()) / n
    assert math.isclose(rate, theirs["discontinuation_rate"], rel_tol=1e-12)
    # Final vision: every patient, sample sd (visit-based engines); patients seen at least
    # once, population sd (time-based engine, numpy's np.std).
    final = patients.column("final_vision").to_numpy().astype(float)
    seen = patients.column("visits").to_numpy() > 0
    mean, sd = _mean_sd(final[seen], 0) if name == TIME_BASED else _mean_sd(final, 1)
    assert math.isclose(mean, theirs["mean_final_vision"], rel_tol=1e-12)
    assert math.isclose(sd, theirs["std_final_vision"], rel_tol=1e-12)
    if name != TIME_BASED:  # where the definitions coincide, so does our own summary
        end = sim.summary["vision"]["end"]
        assert math.isclose(end["mean"], theirs["mean_final_vision"], rel_tol=1e-12)
        assert math.isclose(end["sd"], theirs["std_final_vision"], rel_tol=1e-12)
        assert sim.summary["discontinuation"]["rate"] == theirs["discontinuation_rate"]


@pytest.mark.parametrize("name", SAMPLES)
def test_states_ids_and_days_map(imported: Any, name: str) -> None:
    sim = loaded(imported, name)
    files = members(sample(name))
    their_patients = read_parquet(files["data/patients.parquet"]).to_pandas()
    their_visits = read_parquet(files["data/visits.parquet"]).to_pandas()
    extra = pq.read_table(sim.folder / layout.EXTRA_PATIENTS)
    ours = sim.patients.to_pandas()
    # Ids: 0..n-1 in the earlier table's order, the original kept alongside.
    assert ours["patient_id"].tolist() == list(range(len(their_patients)))
    assert extra.column("earlier_patient_id").to_pylist() == their_patients["patient_id"].tolist()
    assert ours["enrol_day"].tolist() == their_patients["enrollment_time_days"].tolist()
    assert ours["baseline_vision"].tolist() == their_patients["baseline_vision"].tolist()
    # Visits: day = enrolment day + their days since enrolment; "DiseaseState.X" -> X.
    number = {pid: i for i, pid in enumerate(their_patients["patient_id"])}
    their_visits["pid"] = their_visits["patient_id"].map(number)
    their_visits = their_visits.sort_values(["pid", "time_days"], kind="stable")
    enrol = their_patients["enrollment_time_days"].to_numpy()
    visits = sim.visits.to_pandas()
    assert visits["patient_id"].tolist() == their_visits["pid"].tolist()
    expected_days = enrol[their_visits["pid"].to_numpy()] + their_visits["time_days"].to_numpy()
    assert visits["day"].tolist() == expected_days.tolist()
    expected_states = [s.removeprefix("DiseaseState.") for s in their_visits["disease_state"]]
    assert visits["state"].astype(str).tolist() == expected_states
    assert set(expected_states) <= set(STATES)
    assert visits["vision"].tolist() == their_visits["vision"].tolist()
    assert visits["injected"].tolist() == their_visits["injected"].tolist()
    assert (visits.groupby("patient_id")["visit"].min() == 0).all()


@pytest.mark.parametrize("name", SAMPLES)
def test_discontinuations_and_deaths_map(imported: Any, name: str) -> None:
    sim = loaded(imported, name)
    theirs = read_parquet(members(sample(name))["data/patients.parquet"]).to_pandas()
    ours = sim.patients.to_pandas()
    kind = theirs["discontinuation_type"]
    died = theirs["discontinued"] & (kind == "death")
    stopped = theirs["discontinued"] & ~died
    assert ours["death_day"].notna().tolist() == died.tolist()
    assert ours["discontinuation_day"].notna().tolist() == stopped.tolist()
    assert (ours["discontinuation_day"][stopped] == theirs["discontinuation_time"][stopped]).all()
    reasons = dict(
        zip(kind[stopped], ours["discontinuation_reason"][stopped].astype(str), strict=True)
    )
    expected = {
        "planned": "stable_at_max_interval",
        "treatment_decision_stable": "stable_at_max_interval",
        "deterioration": "poor_vision",
        "treatment_decision_no_improvement": "poor_vision",
        "attrition": "premature",
        "administrative": "premature",
    }
    assert reasons == {k: expected[k] for k in reasons}
    extra = pq.read_table(sim.folder / layout.EXTRA_PATIENTS).to_pandas()
    assert extra["discontinuation_type"].fillna("").tolist() == kind.fillna("").tolist()
    assert extra["retreatment_count"].tolist() == theirs["retreatment_count"].tolist()


@pytest.mark.parametrize("name", SAMPLES)
def test_original_files_are_kept_byte_for_byte(imported: Any, name: str) -> None:
    sim = loaded(imported, name)
    files = members(sample(name))
    for member, data in files.items():
        assert (sim.folder / layout.SOURCE_DIR / member).read_bytes() == data, member
    assert sim.source_protocol_text == files["protocol.yaml"].decode("utf-8")
    # The workspace protocol is ours, converted, and matches the metadata.
    converted = parse_protocol(sim.protocol_text)
    assert converted.fingerprint == sim.metadata.protocol_fingerprint
    assert sim.record.source_format == LABEL


@pytest.mark.parametrize("name", SAMPLES)
def test_audit_trail_is_converted_and_chained(imported: Any, name: str) -> None:
    sim = loaded(imported, name)
    theirs = json.loads(members(sample(name))["audit_log.json"])
    events = sim.audit_events()  # parses and verifies the hash chain
    assert audit.verify_chain(events) is None
    assert [e.action for e in events] == [*(e["event"] for e in theirs), "imported"]
    for ours, original in zip(events, theirs, strict=False):
        assert ours.details == {k: v for k, v in original.items() if k != "event"}
        assert ours.time.startswith(original["timestamp"][:19])
    assert events[-1].details["note"] == IMPORT_NOTE
    assert events[-1].details["unmapped_protocol_fields"]  # every sample has some
    assert events[-1].details["package_format"] == LABEL


def test_imported_event_states_the_conversion_in_structured_details(imported: Any) -> None:
    sim = loaded(imported, SMALL)
    files = members(sample(SMALL))
    earlier_id = json.loads(files["manifest.json"])["sim_id"]
    conversion = convert_protocol_text(files["protocol.yaml"], "protocol.yaml")
    details = sim.audit_events()[-1].details
    assert details["note"] == IMPORT_NOTE
    assert details["unmapped_protocol_fields"] == conversion.unmapped_fields != []
    assert details["sim_id"] == details["original_sim_id"] == earlier_id == sim.record.sim_id
    assert details["package_format"] == LABEL
    assert details["source_file"] == SMALL


@pytest.mark.parametrize("name", SAMPLES)
def test_export_round_trips_in_our_format(imported: Any, name: str, tmp_path: Path) -> None:
    ws, ids = imported
    sim = loaded(imported, name)
    sink = io.BytesIO()
    export_package(ws, ids[name], sink)
    report = inspect_package(sink.getvalue())
    assert report.ok, report.error
    assert report.format == f"APE {fmt.PACKAGE_VERSION}"
    other = Workspace(tmp_path / "second")
    record = import_package(other, sink.getvalue())
    again = api.load_simulation(other, record.sim_id)
    assert again.patients.equals(sim.patients)
    assert again.visits.equals(sim.visits)
    assert again.metadata == sim.metadata
    assert again.summary == sim.summary
    assert again.protocol_text == sim.protocol_text
    assert again.source_protocol_text is None  # our format carries the converted protocol only


# -- doctored packages ---------------------------------------------------------------------


def _set_meta(column: str, value: str) -> Callable[[dict[str, bytes]], bytes]:
    def change(files: dict[str, bytes]) -> bytes:
        files["data/metadata.parquet"] = replace_column(
            files["data/metadata.parquet"], column, [value]
        )
        return rebuild(files)

    return change


def _changed_byte(files: dict[str, bytes]) -> bytes:
    data = bytearray(files["data/visits.parquet"])
    data[len(data) // 2] ^= 0x01
    files["data/visits.parquet"] = bytes(data)
    return rebuild(files, refresh=False)


def _manifest(change: Callable[[dict[str, Any]], None], refresh: bool = False) -> Any:
    def mutate(files: dict[str, bytes]) -> bytes:
        manifest = json.loads(files["manifest.json"])
        change(manifest)
        files["manifest.json"] = json.dumps(manifest).encode()
        return rebuild(files, refresh=refresh)

    return mutate


def _drop(name: str, refresh: bool) -> Callable[[dict[str, bytes]], bytes]:
    def mutate(files: dict[str, bytes]) -> bytes:
        del files[name]
        return rebuild(files, refresh=refresh)

    return mutate


def _add(name: str, data: bytes) -> Callable[[dict[str, bytes]], bytes]:
    def mutate(files: dict[str, bytes]) -> bytes:
        files[name] = data
        return rebuild(files, refresh=False)

    return mutate


def _unlist(name: str) -> Any:
    def change(manifest: dict[str, Any]) -> None:
        del manifest["file_checksums"][name]
        manifest["total_files"] -= 1

    return _manifest(change)


def _replace(name: str, edit: Callable[[bytes], bytes]) -> Callable[[dict[str, bytes]], bytes]:
    def mutate(files: dict[str, bytes]) -> bytes:
        files[name] = edit(files[name])
        return rebuild(files)

    return mutate


def _summary(key: str, delta: float) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        summary = json.loads(data)
        summary[key] += delta
        return json.dumps(summary, indent=2).encode()

    return edit


def _patients(column: str, edit: Callable[[list[Any]], list[Any]]) -> Callable[[bytes], bytes]:
    def change(data: bytes) -> bytes:
        return replace_column(data, column, edit(read_parquet(data).column(column).to_pylist()))

    return change


def _first(value: Any) -> Callable[[list[Any]], list[Any]]:
    return lambda values: [value, *values[1:]]


def _not_utf8(data: bytes) -> bytes:
    """The first visit's patient id replaced by bytes that are not UTF-8 (pyarrow writes
    them without checking)."""
    table = read_parquet(data)
    ids = table.column("patient_id").combine_chunks()
    offsets = pa.array([0, 2], pa.int32()).buffers()[1]
    bad = pa.Array.from_buffers(pa.string(), 1, [None, offsets, pa.py_buffer(b"\xdd\xff")])
    column = pa.concat_arrays([bad, ids.slice(1)])
    return parquet(table.set_column(table.column_names.index("patient_id"), "patient_id", column))


TAMPERED = {
    "changed_byte": (_changed_byte, PackageIntegrityError, "checksum.sha256"),
    "traversal_sim_id_in_metadata": (
        _set_meta("sim_id", "../../evil"),
        PackageSecurityError,
        "name.unsafe_id",
    ),
    "traversal_memorable_name": (
        _set_meta("memorable_name", "../../evil"),
        PackageSecurityError,
        "name.unsafe_name",
    ),
    "traversal_sim_id_in_manifest": (
        _manifest(lambda m: m.update(sim_id="../../evil")),
        PackageSecurityError,
        "name.unsafe_id",
    ),
    "sim_id_differs": (
        _set_meta("sim_id", "sim_other"),
        PackageIntegrityError,
        "consistency.sim_id",
    ),
    "missing_file": (
        _drop("data/patient_index.parquet", refresh=False),
        PackageIntegrityError,
        "file.missing",
    ),
    "missing_file_unlisted": (
        _drop("data/patient_index.parquet", refresh=True),
        PackageFormatError,
        "file.missing",
    ),
    "extra_unknown_file": (_add("notes.txt", b"hello\n"), PackageSecurityError, "name.unknown"),
    "extra_unlisted_file": (_unlist("parameters.json"), PackageIntegrityError, "file.unlisted"),
    "unknown_name_in_manifest": (
        _manifest(
            lambda m: m.update(
                file_checksums={**m["file_checksums"], "../x": "0" * 64},
                total_files=m["total_files"] + 1,
            )
        ),
        PackageSecurityError,
        "name.unknown",
    ),
    "bad_checksum": (
        _manifest(lambda m: m["file_checksums"].update({"protocol.yaml": "a" * 64})),
        PackageIntegrityError,
        "checksum.sha256",
    ),
    "checksum_not_hex": (
        _manifest(lambda m: m["file_checksums"].update({"protocol.yaml": "xyz"})),
        PackageFormatError,
        "manifest.schema",
    ),
    "newer_version": (
        _manifest(lambda m: m.update(package_version="2.0")),
        PackageVersionError,
        "version.unknown",
    ),
    "summary_disagrees": (
        _replace("data/summary_stats.json", _summary("mean_final_vision", 0.01)),
        PackageIntegrityError,
        "consistency.summary",
    ),
    "injections_disagree": (
        _replace("data/patients.parquet", _patients("total_injections", _first(999))),
        PackageIntegrityError,
        "consistency.injections",
    ),
    "unknown_state": (
        _replace("data/visits.parquet", _patients("disease_state", _first("DiseaseState.DORMANT"))),
        PackageFormatError,
        "legacy.state",
    ),
    "orphan_visit": (
        _replace("data/visits.parquet", _patients("patient_id", _first("P9999"))),
        PackageIntegrityError,
        "consistency.orphan_visit",
    ),
    "text_not_utf8_in_parquet": (
        _replace("data/visits.parquet", _not_utf8),
        PackageFormatError,
        "parquet.invalid",
    ),
    "yaml_alias": (
        _replace("protocol.yaml", lambda d: d + b"extra: &a [1]\nagain: *a\n"),
        PackageSecurityError,
        "yaml.alias",
    ),
    "duplicate_json_key": (
        _replace("data/summary_stats.json", lambda d: d.replace(b"{", b'{"chunk_size": 1,', 1)),
        PackageFormatError,
        "json.duplicate_key",
    ),
    "audit_not_events": (
        _replace("audit_log.json", lambda d: b'{"event": "x"}'),
        PackageFormatError,
        "audit.invalid",
    ),
}


@pytest.mark.parametrize("case", sorted(TAMPERED))
def test_doctored_package_is_refused_and_nothing_written(case: str, workspace: Workspace) -> None:
    mutate, error, code = TAMPERED[case]
    doctored = mutate(members(sample(SMALL)))
    before = snapshot(workspace.root)
    with pytest.raises(error) as caught:
        import_package(workspace, doctored, source_name="doctored.zip")
    assert caught.value.code == code, caught.value
    assert snapshot(workspace.root) == before
    report = inspect_package(doctored)
    assert not report.ok and type(report.error) is type(caught.value)


def test_reimporting_the_same_package_is_a_duplicate(workspace: Workspace) -> None:
    import_package(workspace, sample(SMALL))
    before = snapshot(workspace.root)
    with pytest.raises(PackageError, match="already imported"):
        import_package(workspace, sample(SMALL))
    assert snapshot(workspace.root) == before


def test_an_id_that_is_not_ours_gets_a_safe_derived_one(workspace: Workspace) -> None:
    files = members(sample(SMALL))
    odd = "sim 2024:11 run #3"
    manifest = json.loads(files["manifest.json"])
    manifest["sim_id"] = odd
    files["manifest.json"] = json.dumps(manifest).encode()
    files["data/metadata.parquet"] = replace_column(files["data/metadata.parquet"], "sim_id", [odd])
    record = import_package(workspace, rebuild(files))
    assert record.sim_id.startswith("earlier-sim-2024-11-run-3-")
    sim = api.load_simulation(workspace, record.sim_id)
    assert sim.folder.parent == workspace.root / "sims"
    details = sim.audit_events()[-1].details
    assert details["original_sim_id"] == odd
    assert details["sim_id"] == record.sim_id
    assert details["note"] == IMPORT_NOTE


# -- variations of the earlier exporter's library versions ------------------------------


def _vary(table: pa.Table, tz: str | None) -> pa.Table:
    """Strings as large_string, timestamps in microseconds (zoned when `tz`), integers as
    doubles, an all-null column typed null, one optional column dropped."""
    columns, names = [], []
    for name, column in zip(table.column_names, table.columns, strict=True):
        t = column.type
        if pa.types.is_string(t):
            column = column.cast(pa.large_string())
        elif pa.types.is_timestamp(t):
            column = column.cast(pa.timestamp("us", tz=tz))
        elif pa.types.is_integer(t):
            column = column.cast(pa.float64())
        if name == "pre_discontinuation_vision":
            column = pa.nulls(len(column))
        if name == "retreatment_count":
            continue
        columns.append(column)
        names.append(name)
    return pa.table(columns, names=names)


@pytest.mark.parametrize("tz", [None, "Europe/London"])
@pytest.mark.parametrize("name", [SMALL, TIME_BASED])
def test_arrow_type_variations_convert_the_same(
    imported: Any, name: str, tz: str | None, tmp_path: Path
) -> None:
    original = loaded(imported, name)
    files = members(sample(name))
    for member in ("data/patients.parquet", "data/visits.parquet", "data/metadata.parquet"):
        varied = _vary(read_parquet(files[member]), tz)
        if member == "data/visits.parquet":  # state dictionary-encoded, as some writers do
            i = varied.column_names.index("disease_state")
            varied = varied.set_column(i, "disease_state", varied.column(i).dictionary_encode())
        files[member] = parquet(varied)
    schema = read_parquet(files["data/patients.parquet"]).schema
    assert schema.field("patient_id").type == pa.large_string()
    assert schema.field("enrollment_date").type == pa.timestamp("us", tz=tz)
    assert schema.field("pre_discontinuation_vision").type == pa.null()
    ws = Workspace(tmp_path / "ws")
    record = import_package(ws, rebuild(files))
    sim = api.load_simulation(ws, record.sim_id)
    assert sim.patients.equals(original.patients)
    assert sim.visits.equals(original.visits)
    assert sim.summary == original.summary
    extra = pq.read_table(sim.folder / layout.EXTRA_PATIENTS)
    assert "retreatment_count" not in extra.column_names


def test_nan_in_earlier_json_is_read_as_null(workspace: Workspace) -> None:
    files = members(sample(SMALL))
    params = files["parameters.json"].decode()
    files["parameters.json"] = params.replace(
        '"runtime_seconds": ', '"runtime_seconds": NaN, "x": '
    ).encode()
    trail = json.loads(files["audit_log.json"])
    trail[-1]["final_vision_std"] = "NAN_HERE"
    files["audit_log.json"] = json.dumps(trail).replace('"NAN_HERE"', "NaN").encode()
    record = import_package(workspace, rebuild(files))
    events = api.load_simulation(workspace, record.sim_id).audit_events()
    assert events[2].action == "simulation_complete"
    assert events[2].details["final_vision_std"] is None


def test_vision_outside_0_100_is_clipped_and_kept_as_written(workspace: Workspace) -> None:
    files = members(sample(SMALL))
    visits = read_parquet(files["data/visits.parquet"])
    vision = visits.column("vision").to_pylist()
    vision[0], vision[1] = 104.6, -3.0  # not the last visits of patient P0000
    i = visits.column_names.index("vision")
    files["data/visits.parquet"] = parquet(visits.set_column(i, "vision", pa.array(vision)))
    record = import_package(workspace, rebuild(files))
    sim = api.load_simulation(workspace, record.sim_id)
    assert sim.visits.column("vision").to_pylist()[:2] == [100, 0]
    extra = pq.read_table(sim.folder / layout.EXTRA_VISITS)
    assert extra.column("vision_as_written").to_pylist()[:2] == [104.6, -3.0]
    assert extra.column("patient_id").equals(sim.visits.column("patient_id"))
    assert extra.column("visit").equals(sim.visits.column("visit"))


def test_columns_without_a_place_in_our_model_are_kept(workspace: Workspace) -> None:
    files = members(sample(SMALL))
    patients = read_parquet(files["data/patients.parquet"])
    risk = pa.array([i / 10 for i in range(patients.num_rows)])
    files["data/patients.parquet"] = parquet(patients.append_column("risk_score", risk))
    visits = read_parquet(files["data/visits.parquet"])
    clinic = pa.array([f"clinic-{i % 3}" for i in range(visits.num_rows)], pa.large_string())
    files["data/visits.parquet"] = parquet(visits.append_column("clinic", clinic))
    record = import_package(workspace, rebuild(files))
    sim = api.load_simulation(workspace, record.sim_id)
    p_extra = pq.read_table(sim.folder / layout.EXTRA_PATIENTS)
    assert p_extra.column("risk_score").to_pylist() == risk.to_pylist()
    v_extra = pq.read_table(sim.folder / layout.EXTRA_VISITS).to_pandas()
    theirs = visits.append_column("clinic", clinic).to_pandas()
    theirs["pid"] = theirs["patient_id"].map(
        {pid: i for i, pid in enumerate(patients.column("patient_id").to_pylist())}
    )
    theirs = theirs.sort_values(["pid", "time_days"], kind="stable")
    assert v_extra["clinic"].tolist() == theirs["clinic"].tolist()
    assert v_extra["date"].tolist() == theirs["date"].tolist()


# -- values the format does not allow: refused, or converted and said so ------------------
# Everything in a workspace exports: an earlier package imports only with values that APE's
# format accepts (docs/package-format.md, "Values outside APE's format").


def _meta_and_parameters(key: str, value: Any) -> Callable[[dict[str, bytes]], bytes]:
    """One value the earlier package states twice (metadata row and parameters.json)."""

    def change(files: dict[str, bytes]) -> bytes:
        files["data/metadata.parquet"] = replace_column(
            files["data/metadata.parquet"], key, [value]
        )
        params = json.loads(files["parameters.json"])
        params[key] = value
        files["parameters.json"] = json.dumps(params, indent=2).encode()
        return rebuild(files)

    return change


def _first_enrolment(day: int) -> Callable[[dict[str, bytes]], bytes]:
    def change(files: dict[str, bytes]) -> bytes:
        files["data/patients.parquet"] = _patients("enrollment_time_days", _first(day))(
            files["data/patients.parquet"]
        )
        return rebuild(files)

    return change


def _first_visit_time(days: int) -> Callable[[dict[str, bytes]], bytes]:
    def change(files: dict[str, bytes]) -> bytes:
        files["data/visits.parquet"] = _patients("time_days", _first(days))(
            files["data/visits.parquet"]
        )
        return rebuild(files)

    return change


def _next_intervals(first: list[float | None]) -> Callable[[dict[str, bytes]], bytes]:
    """next_interval_days stated (28 days) for every visit, the first ones as given."""

    def change(files: dict[str, bytes]) -> bytes:
        visits = read_parquet(files["data/visits.parquet"])
        values = [*first, *([28.0] * (visits.num_rows - len(first)))]
        files["data/visits.parquet"] = replace_column(
            files["data/visits.parquet"], "next_interval_days", pa.array(values, pa.float64())
        )
        return rebuild(files)

    return change


OUTSIDE_THE_FORMAT = {
    "years_1000": (_meta_and_parameters("duration_years", 1000.0), "legacy.metadata"),
    "years_over_20": (_meta_and_parameters("duration_years", 20.5), "legacy.metadata"),
    "negative_seed": (_meta_and_parameters("seed", -42), "legacy.metadata"),
    "negative_enrolment_day": (_first_enrolment(-5), "legacy.range"),
    "visit_before_day_0": (_first_visit_time(-1), "legacy.range"),
}


@pytest.mark.parametrize("case", sorted(OUTSIDE_THE_FORMAT))
def test_values_outside_the_format_are_refused(case: str, workspace: Workspace) -> None:
    mutate, code = OUTSIDE_THE_FORMAT[case]
    doctored = mutate(members(sample(SMALL)))
    before = snapshot(workspace.root)
    with pytest.raises(PackageFormatError) as caught:
        import_package(workspace, doctored, source_name="earlier.zip")
    assert caught.value.code == code, caught.value
    assert str(caught.value).startswith("earlier.zip: ") and "\n" not in str(caught.value)
    assert snapshot(workspace.root) == before


def _exports_and_reimports(ws: Workspace, sim_id: str, tmp_path: Path) -> None:
    sink = io.BytesIO()
    export_package(ws, sim_id, sink)
    report = inspect_package(sink.getvalue())
    assert report.ok, report.error
    import_package(Workspace(tmp_path / "again"), sink.getvalue())


def test_next_intervals_outside_1_to_32767_become_null_and_are_said(
    workspace: Workspace, tmp_path: Path
) -> None:
    doctored = _next_intervals([0.0, -3.0, 40_000.0])(members(sample(SMALL)))
    record = import_package(workspace, doctored)
    sim = api.load_simulation(workspace, record.sim_id)
    extra = pq.read_table(sim.folder / layout.EXTRA_VISITS).to_pandas()
    written = extra["next_interval_days_as_written"]
    ours = sim.visits.column("next_interval").to_pylist()
    changed = [i for i, w in enumerate(written) if w in (0.0, -3.0, 40_000.0)]
    assert len(changed) == 3 and all(ours[i] is None for i in changed)
    assert all(v == 28 for i, v in enumerate(ours) if i not in changed)
    details = sim.audit_events()[-1].details
    assert details["converted_values"] == [
        "visits next_interval_days: 3 values outside 1..32767 are null "
        "(as written in visits_extra.parquet)"
    ]
    _exports_and_reimports(workspace, record.sim_id, tmp_path)


def test_a_package_with_nothing_to_convert_says_nothing(imported: Any) -> None:
    details = loaded(imported, SMALL).audit_events()[-1].details
    assert "converted_values" not in details


_EDITS = {
    "duration_years": lambda v: _meta_and_parameters("duration_years", float(v)),
    "seed": lambda v: _meta_and_parameters("seed", int(v)),
    "enrolment": lambda v: _first_enrolment(int(v)),
    "visit_time": lambda v: _first_visit_time(int(v)),
    "next_interval": lambda v: _next_intervals([float(v)]),
    "vision": lambda v: _replace("data/visits.parquet", _patients("vision", _first(int(v)))),
    "discontinuation_time": lambda v: _replace(
        "data/patients.parquet", _patients("discontinuation_time", _first(float(v)))
    ),
}


@settings(max_examples=30, deadline=None)
@given(
    edit=st.sampled_from(sorted(_EDITS)),
    value=st.one_of(
        st.integers(-(2**31), 2**31),
        st.sampled_from([0, -1, 1, 20, 21, 1000, 32_767, 32_768, 2**62]),
    ),
)
def test_everything_imported_exports(edit: str, value: int) -> None:
    """Property: an earlier package whose values are changed is refused, or imports into a
    simulation that exports as a valid package of our format."""
    doctored = _EDITS[edit](value)(members(sample(SMALL)))
    with tempfile.TemporaryDirectory() as tmp:
        ws = Workspace(Path(tmp) / "ws")
        try:
            record = import_package(ws, doctored)
        except PackageError:
            return
        _exports_and_reimports(ws, record.sim_id, Path(tmp))
