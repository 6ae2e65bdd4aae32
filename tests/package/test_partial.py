"""Partial import (`ape import PKG --only summary|protocol`): each validates the package,
takes only its part, and is recorded; a summary-only simulation says so wherever it is
listed, refuses what needs its tables, and is replaced by the full import."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from apesim import api
from apesim.errors import (
    DuplicateImportError,
    PackageIntegrityError,
    StorageError,
    WorkspaceError,
)
from apesim.package import format as fmt
from apesim.package import import_package
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace
from tests.package.conftest import snapshot
from tests.package.corpus import members, rebuild
from tests.test_cli import ape, ape_json


@pytest.fixture
def package_file(valid_package: bytes, tmp_path: Path) -> Path:
    path = tmp_path / "pkg.zip"
    path.write_bytes(valid_package)
    return path


def test_a_summary_only_import_keeps_no_tables_and_says_so(
    valid_package: bytes, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    record = import_package(ws, valid_package, source_name="big.zip", only="summary")
    assert record.summary_only and record.origin == "imported (summary only)"
    files = {p.name for p in ws.path(record).iterdir()}
    assert "patients.parquet" not in files and "visits.parquet" not in files
    sim = api.load_simulation(ws, record.sim_id)
    assert sim.summary["patients"] == record.patients  # the statistics are there
    with pytest.raises(WorkspaceError) as info:
        _ = sim.patients
    assert info.value.code == "simulation.summary_only" and "big.zip" in str(info.value)
    with pytest.raises(WorkspaceError) as info:
        api.export_package(ws, record.sim_id, tmp_path)
    assert info.value.code == "simulation.summary_only"
    imported = sim.audit_events()[-1]
    assert imported.action == "imported" and imported.details["only"] == "summary"


def test_summary_only_simulations_are_marked_in_list_and_compare(
    valid_package: bytes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "ws")
    own = api.run_simulation(ws, "aflibercept_treat_and_extend", api.SimulationParameters(20, 1, 1))
    partial = import_package(ws, valid_package, only="summary")
    code, out, _ = ape(capsys, "list", "-w", str(ws.root))
    assert code == 0 and "imported (summary only)" in out
    comparison = api.compare_simulations(ws, [own.sim_id, partial.sim_id])
    origin = dict(comparison.rows)["Origin"]
    assert origin[0] == "run here" and origin[1].startswith("imported (summary only)")


def test_the_full_import_replaces_the_summary(valid_package: bytes, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    partial = import_package(ws, valid_package, only="summary")
    with pytest.raises(DuplicateImportError):
        import_package(ws, valid_package, only="summary")
    full = import_package(ws, valid_package)
    assert full.sim_id == partial.sim_id and not full.summary_only
    assert [r.sim_id for r in ws.list()] == [full.sim_id]
    sim = api.load_simulation(ws, full.sim_id)
    assert sim.patients.num_rows == full.patients
    assert sim.audit_events()[-1].details["replaces_summary_only"] == partial.sim_id


def test_a_full_import_that_fails_to_install_keeps_the_summary_only_copy(
    valid_package: bytes, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ws = Workspace(tmp_path / "ws")
    partial = import_package(ws, valid_package, only="summary")
    before = snapshot(ws.root / "sims")

    real = os.replace

    def fail(src: str, dst: str) -> None:  # the disk fills as the folder is moved into place
        if Path(dst).parent == ws.root / "sims":
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(StorageError):
        import_package(ws, valid_package)
    monkeypatch.undo()
    assert [r.sim_id for r in ws.list()] == [partial.sim_id]
    assert ws.get(partial.sim_id).summary_only
    assert snapshot(ws.root / "sims") == before, "the summary-only copy is untouched"
    assert api.load_simulation(ws, partial.sim_id).summary["patients"] == partial.patients


def test_a_protocol_only_import_adds_a_protocol_and_no_simulation(
    valid_package: bytes, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    info = api.import_protocol(ws, valid_package, source_name="colleague.zip")
    sim_id = json.loads(members(valid_package)[fmt.MANIFEST])["sim_id"]
    assert info.key == f"imported_{sim_id}"
    assert info.key not in shipped_protocols()
    assert ws.list() == []
    saved = (ws.protocols_dir / f"{info.key}.yaml").read_bytes()
    assert saved == members(valid_package)[fmt.PROTOCOL]
    assert api.get_protocol(info.key, ws).fingerprint == info.fingerprint
    event = ws.workspace_events()[-1]
    assert event.action == "protocol_imported"
    assert event.details["protocol_key"] == info.key and event.details["sim_id"] == sim_id
    again = api.import_protocol(ws, valid_package)
    assert again.key == info.key  # the same text is found, not copied


@pytest.mark.parametrize("only", ["summary", "protocol"])
def test_a_partial_import_validates_the_package_first(
    valid_package: bytes, tmp_path: Path, only: str
) -> None:
    """A table altered after export (its checksum no longer matches) is refused even when
    the tables are not taken, and nothing is written."""
    files = members(valid_package)
    files[fmt.VISITS] = files[fmt.VISITS][:-1] + b"\x00"
    altered = rebuild(files, refresh=False)
    ws = Workspace(tmp_path / "ws")
    before = snapshot(ws.root)
    with pytest.raises(PackageIntegrityError) as info:
        if only == "protocol":
            api.import_protocol(ws, altered)
        else:
            import_package(ws, altered, only=only)
    assert info.value.code == "checksum.sha256"
    assert snapshot(ws.root) == before


def test_the_cli_takes_only_what_it_is_asked(
    package_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = str(tmp_path / "ws")
    shown = ape_json(capsys, "import", str(package_file), "--only", "summary", "-w", ws)
    assert shown["simulation"]["partial"] == "summary"
    info = ape_json(capsys, "import", str(package_file), "--only", "protocol", "-w", ws)
    assert info["key"].startswith("imported_")
    code, _, err = ape(capsys, "import", str(package_file), "--only", "tables", "-w", ws)
    assert code == 2 and "--only" in err and err.count("\n") == 1
    code, out, _ = ape(capsys, "import", str(package_file), "-w", ws)
    assert code == 0 and "imported" in out
    listed = ape_json(capsys, "list", "-w", ws)
    assert [r["partial"] for r in listed] == [None]
