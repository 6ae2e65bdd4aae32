"""Export then import gives the same simulation: same tables (values, types, schema), same
summary statistics, and the original audit trail kept byte for byte."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apesim import api, audit
from apesim.cli import main
from apesim.engine.simulate import SimulationParameters
from apesim.errors import DuplicateImportError, ReadOnlySimulationError
from apesim.package import estimate_package_size, export_package, import_package
from apesim.package import format as fmt
from apesim.protocol import parse_protocol
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace

CREATED = datetime(2026, 5, 6, 7, 8, 9, tzinfo=UTC)


def _protocol(**replacements: str) -> api.LoadedProtocol:
    text = shipped_protocols()["v1_aflibercept_treat_and_extend"]
    for old, new in replacements.items():
        assert old in text
        text = text.replace(old, new)
    return parse_protocol(text, "edited.yaml")


NO_STOPPING = {
    "  stable_at_max_interval: {consecutive_visits: 3, probability: 0.2}\n": "",
    "  poor_vision: {threshold_letters: 20, probability: 0.5}\n": "",
    "premature_annual_probability: 0.05": "premature_annual_probability: 0.0",
}
EVERYONE_DIES = {"annual_probability: 0.04": "annual_probability: 1.0"}

CASES = {
    "one_patient": ("v1_aflibercept_treat_and_extend", SimulationParameters(1, 2.0, 3)),
    "typical": ("v1_prn_monthly", SimulationParameters(500, 3.0, 4, recruitment_months=6)),
    "nobody_discontinued": (_protocol(**NO_STOPPING), SimulationParameters(300, 2.0, 5)),
    "everybody_dead_early": (_protocol(**EVERYONE_DIES), SimulationParameters(300, 2.0, 6)),
    # Model 2.0: follow-up after stopping, deaths after it, loss to follow-up.
    "calendar_treat_and_extend": (
        "aflibercept_treat_and_extend",
        SimulationParameters(500, 6.0, 7, recruitment_months=6),
    ),
    "calendar_natural_history": (
        "no_treatment_quarterly_visits",
        SimulationParameters(200, 2.0, 8),
    ),
}


def _cli_json(args: list[str], capsys: pytest.CaptureFixture[str]) -> dict:
    with pytest.raises(SystemExit) as done:
        main(args)
    assert done.value.code == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.parametrize("case", sorted(CASES))
def test_round_trip_is_exact(case: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    protocol, params = CASES[case]
    origin, target = Workspace(tmp_path / "origin"), Workspace(tmp_path / "target")
    record = api.run_simulation(origin, protocol, params)
    original = api.load_simulation(origin, record.sim_id)
    if case == "nobody_discontinued":
        assert original.patients.column("discontinuation_day").null_count == params.patients
    if case == "everybody_dead_early":
        assert original.patients.column("death_day").null_count == 0

    exported = export_package(origin, record.sim_id, tmp_path, created=CREATED)
    imported = import_package(target, exported.path)
    copy = api.load_simulation(target, imported.sim_id)

    assert copy.patients.schema.equals(original.patients.schema, check_metadata=True)
    assert copy.visits.schema.equals(original.visits.schema, check_metadata=True)
    assert copy.patients.equals(original.patients)
    assert copy.visits.equals(original.visits)
    assert copy.metadata == original.metadata
    assert copy.protocol_text == original.protocol_text
    shown_original = _cli_json(["show", record.sim_id, "-w", str(origin.root), "--json"], capsys)
    shown_copy = _cli_json(["show", imported.sim_id, "-w", str(target.root), "--json"], capsys)
    assert shown_copy["summary"] == shown_original["summary"]
    assert imported.imported and not record.imported


def test_audit_trail_kept_byte_for_byte_with_imported_event(tmp_path: Path) -> None:
    origin, target = Workspace(tmp_path / "origin"), Workspace(tmp_path / "target")
    record = api.run_simulation(origin, "v1_prn_monthly", SimulationParameters(50, 1.0, 1))
    before_export = (origin.path(record) / "audit_log.json").read_bytes()
    exported = export_package(origin, record.sim_id, tmp_path, created=CREATED)

    origin_events = api.load_simulation(origin, record.sim_id).audit_events()
    assert origin_events[-1].action == "exported"
    assert origin_events[-1].details["package_sha256"] == exported.sha256

    imported = import_package(target, exported.path)
    after = (target.path(imported) / "audit_log.json").read_bytes()
    assert after.startswith(before_export[: -len(b"\n]\n")])
    events = audit.parse(after)
    last = events[-1]
    assert last.action == "imported"
    assert last.details["package_sha256"] == exported.sha256
    assert last.details["source_file"] == exported.filename
    assert last.details["original_created_by"] == "tester@example.org"
    assert last.details["original_created_date"] == "2026-05-06T07:08:09Z"


def test_export_is_reproducible(
    tmp_path: Path, small_sim, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = io.BytesIO(), io.BytesIO()
    export_package(workspace, small_sim.sim_id, first, created=CREATED)
    export_package(workspace, small_sim.sim_id, second, created=CREATED)
    assert first.getvalue() == second.getvalue()
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(CREATED.timestamp())))
    third = export_package(workspace, small_sim.sim_id, tmp_path)
    assert third.path is not None and third.path.read_bytes() == first.getvalue()
    assert third.filename == f"APE_simulation_{small_sim.sim_id}_20260506.zip"


def test_layout_stores_parquet_and_deflates_text(small_sim, workspace: Workspace) -> None:
    sink = io.BytesIO()
    export_package(workspace, small_sim.sim_id, sink, created=CREATED)
    with zipfile.ZipFile(sink) as zf:
        infos = zf.infolist()
        names = [i.filename for i in infos]
        manifest = json.loads(zf.read(fmt.MANIFEST))
    assert names == [n for n in fmt.ENTRY_ORDER if n in names]
    assert set(names) == set(fmt.KNOWN_FILES)
    for info in infos:
        expected = (
            zipfile.ZIP_STORED if info.filename.endswith(".parquet") else zipfile.ZIP_DEFLATED
        )
        assert info.compress_type == expected, info.filename
    assert manifest["package_version"] == fmt.PACKAGE_VERSION == "1.1"
    assert manifest["created_date"] == "2026-05-06T07:08:09Z"
    assert manifest["files"][fmt.PATIENTS]["rows"] == 200
    assert set(manifest["files"]) == set(names) - {fmt.MANIFEST}


def test_preview_left_out_when_too_large(
    small_sim, workspace: Workspace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fmt, "PREVIEW_MAX_BYTES", 100)
    sink = io.BytesIO()
    export_package(workspace, small_sim.sim_id, sink, created=CREATED)
    with zipfile.ZipFile(sink) as zf:
        assert fmt.PREVIEW not in zf.namelist()
    assert import_package(Workspace(workspace.root.parent / "other"), sink).sim_id


def test_estimate_is_close(small_sim, workspace: Workspace) -> None:
    sink = io.BytesIO()
    export_package(workspace, small_sim.sim_id, sink)
    actual = len(sink.getvalue())
    assert 0.7 * actual <= estimate_package_size(workspace, small_sim.sim_id) <= 1.3 * actual


def test_importing_twice_names_the_simulation(
    small_sim, workspace: Workspace, tmp_path: Path
) -> None:
    exported = export_package(workspace, small_sim.sim_id, tmp_path, created=CREATED)
    target = Workspace(tmp_path / "target")
    first = import_package(target, exported.path)
    with pytest.raises(DuplicateImportError) as again:
        import_package(target, exported.path)
    assert again.value.existing_sim_id == first.sim_id
    assert first.sim_id in str(again.value)
    with pytest.raises(DuplicateImportError):  # its own export, into its own workspace
        import_package(workspace, exported.path)


def test_imported_simulation_is_read_only(small_sim, workspace: Workspace, tmp_path: Path) -> None:
    exported = export_package(workspace, small_sim.sim_id, tmp_path, created=CREATED)
    target = Workspace(tmp_path / "target")
    record = import_package(target, exported.path)
    with pytest.raises(ReadOnlySimulationError, match="read-only"):
        target.ensure_writable(record)
    workspace.ensure_writable(small_sim)  # the original is not


def test_reimported_export_of_an_import_round_trips(
    small_sim, workspace: Workspace, tmp_path: Path
) -> None:
    first = export_package(workspace, small_sim.sim_id, tmp_path, created=CREATED)
    middle = Workspace(tmp_path / "middle")
    imported = import_package(middle, first.path)
    second = export_package(middle, imported.sim_id, tmp_path / "again.zip", created=CREATED)
    last = import_package(Workspace(tmp_path / "last"), second.path)
    assert api.load_simulation(Workspace(tmp_path / "last"), last.sim_id).visits.equals(
        api.load_simulation(workspace, small_sim.sim_id).visits
    )
    trail = api.load_simulation(Workspace(tmp_path / "last"), last.sim_id).audit_events()
    assert [e.action for e in trail][-2:] == ["imported", "imported"]


def test_the_manifest_is_the_readers_model_as_json(small_sim, workspace: Workspace) -> None:
    """The exporter writes manifest.json without pydantic: its bytes are exactly what the
    reader's model (`manifest.Manifest`) gives for what it parses from them."""
    from apesim.package.manifest import columns_of, parse_manifest
    from apesim.results.schema import PATIENTS_SCHEMA

    sink = io.BytesIO()
    export_package(workspace, small_sim.sim_id, sink, created=CREATED)
    with zipfile.ZipFile(sink) as zf:
        written = zf.read(fmt.MANIFEST)
    manifest = parse_manifest(json.loads(written))
    assert manifest.to_json().encode("utf-8") == written
    assert manifest.files[fmt.PATIENTS].columns == columns_of(PATIENTS_SCHEMA)


EXPORT_WITHOUT_ARROW = """
import io, sys
from apesim import api
from apesim.package import format as fmt
fmt.PREVIEW_MAX_BYTES = 10  # no preview: no table to decode
sink = io.BytesIO()
api.export_package(api.Workspace(sys.argv[1]), sys.argv[2], sink)
assert sink.getvalue()[:2] == b"PK"
print(sorted(m for m in ("pyarrow", "numpy", "pandas", "pydantic") if m in sys.modules))
"""


def test_an_export_without_a_preview_loads_no_arrow_numpy_or_pydantic(
    small_sim, workspace: Workspace
) -> None:
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", EXPORT_WITHOUT_ARROW, str(workspace.root), small_sim.sim_id],
        capture_output=True,
        text=True,
        check=True,
    )
    assert done.stdout.strip() == "[]"
