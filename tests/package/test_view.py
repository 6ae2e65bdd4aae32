"""A package opened for viewing: validated first, its tables read in place from the ZIP (a
window of the file's bytes, checked against the manifest), nothing extracted or imported."""

from __future__ import annotations

import tempfile
import zipfile
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from apesim.errors import PackageError
from apesim.package import format as fmt
from apesim.package.view import PackageView
from tests.package.corpus import edited


@pytest.fixture
def package(valid_package: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "shared.zip"
    path.write_bytes(valid_package)
    return path


def test_tables_are_read_in_place_and_equal_the_members(
    package: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    before = sorted(p.name for p in tmp_path.iterdir())
    view = PackageView.open(package)
    assert view.ok and view.report.format == f"APE {fmt.PACKAGE_VERSION}"
    with zipfile.ZipFile(package) as zf:
        for name, table in ((fmt.PATIENTS, view.patients), (fmt.VISITS, view.visits)):
            with zf.open(name) as member:
                assert table.equals(pq.read_table(member, use_threads=False))
    assert view.visit_columns(["patient_id", "day"]).column_names == ["patient_id", "day"]
    assert view.metadata.patients == view.patients.num_rows == 200
    assert view.summary["patients"] == 200
    assert "name:" in view.protocol_text and view.parameters["patients"] == 200
    assert view.audit_events[0].action == "protocol_loaded"
    view.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == before, "nothing written beside it"
    assert list(scratch.iterdir()) == [], "nothing extracted to a temporary folder"


def test_the_validated_files_are_not_kept_in_memory(package: Path) -> None:
    view = PackageView.open(package)
    assert view.report.validated is not None
    assert "patients.parquet" not in view.report.validated.folder_files
    assert "visits.parquet" not in view.report.validated.folder_files


def test_a_package_changed_after_its_validation_is_not_read(package: Path) -> None:
    view = PackageView.open(package)
    data = bytearray(package.read_bytes())
    at = data.find(b"PAR1", 100) + 40  # inside the first Parquet member
    data[at] ^= 0xFF
    package.write_bytes(bytes(data))
    with pytest.raises(PackageError) as caught:
        view.table(fmt.PATIENTS)
    assert caught.value.code == "checksum.sha256"


def test_an_invalid_package_shows_its_checks_and_no_data(
    valid_package: bytes, tmp_path: Path
) -> None:
    path = tmp_path / "bad.zip"
    path.write_bytes(edited(fmt.SUMMARY, lambda d: d.replace(b"200", b"201", 1))(valid_package))
    view = PackageView.open(path)
    assert not view.ok
    failed = [c for c in view.report.checks if c.passed is False]
    assert [c.code for c in failed] == ["consistency"]
    with pytest.raises(PackageError):
        view.patients  # noqa: B018


def test_a_differential_package_is_viewed_on_its_base(tmp_path: Path) -> None:
    """Its tables are not in its ZIP: the view holds the ones rebuilt on the base file."""
    from apesim import api
    from apesim.engine.simulate import SimulationParameters
    from apesim.package import export_differential, export_package
    from apesim.workspace import Workspace

    ws = Workspace(tmp_path / "ws")
    protocol = "aflibercept_treat_and_extend"
    base = api.run_simulation(ws, protocol, SimulationParameters(120, 1.0, 2))
    export_package(ws, base.sim_id, tmp_path / "base.zip")
    more = api.run_simulation(ws, protocol, SimulationParameters(130, 1.0, 2))
    export_differential(ws, more.sim_id, tmp_path / "d.zip", base.sim_id, max_share=1.0)

    assert not PackageView.open(tmp_path / "d.zip").ok, "no base, no view"
    view = PackageView.open(tmp_path / "d.zip", base=tmp_path / "base.zip")
    assert view.ok and view.report.format == "APE 1.1 differential"
    assert view.patients.equals(api.load_simulation(ws, more.sim_id).patients)
    assert view.visits.equals(api.load_simulation(ws, more.sim_id).visits)
