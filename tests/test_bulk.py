"""Many packages at once: `ape export` of several simulations into a folder or a batch, and
`ape import` of files, folders, globs and batches, each package on its own."""

from __future__ import annotations

import json
import shutil
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apesim import api
from apesim.bulk import import_many
from apesim.cli import main
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package
from apesim.package.format import ReadLimits
from apesim.workspace import Workspace
from tests.package.conftest import snapshot

CREATED = datetime(2026, 5, 6, tzinfo=UTC)
TINY = SimulationParameters(patients=2, years=0.5, seed=0)


def ape(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


@pytest.fixture(scope="session")
def hundred(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder of 100 packages of 100 tiny simulations (2 patients x 6 months each)."""
    ws = Workspace(tmp_path_factory.mktemp("ws-100"))
    folder = tmp_path_factory.mktemp("packages-100")
    for seed in range(100):
        params = SimulationParameters(patients=2, years=0.5, seed=seed)
        record = api.run_simulation(ws, "prn_monthly", params)
        export_package(ws, record.sim_id, folder, created=CREATED)
    return folder


def corrupt_three(folder: Path) -> dict[str, str]:
    """Damage three packages in three ways; returns file name -> the finding expected."""
    files = sorted(folder.glob("*.zip"))
    truncated, flipped, appended = files[10], files[50], files[90]
    truncated.write_bytes(truncated.read_bytes()[:-100])
    with zipfile.ZipFile(flipped) as zf:
        info = zf.getinfo("data/visits.parquet")
    data = bytearray(flipped.read_bytes())
    data[info.header_offset + 100] ^= 0xFF  # inside the stored table: its CRC fails
    flipped.write_bytes(bytes(data))
    appended.write_bytes(appended.read_bytes() + b"not part of the package")
    return {
        truncated.name: "zip.truncated",
        flipped.name: "zip.crc",
        appended.name: "zip.appended",
    }


@pytest.mark.slow
def test_of_100_packages_with_3_corrupt_97_are_imported_and_3_explained(
    hundred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "packages"
    shutil.copytree(hundred, folder)
    expected = corrupt_three(folder)
    ws = tmp_path / "ws"
    code, out, _ = ape(capsys, "import", str(folder), "-w", str(ws), "--json")
    report = json.loads(out)
    assert code == 2  # something failed: never a silent success
    assert (report["imported"], report["duplicates"], report["failed"]) == (97, 0, 3)
    failed = {Path(i["source"]).name: i["code"] for i in report["items"] if i["status"] == "failed"}
    assert failed == expected
    assert all(i["message"] for i in report["items"] if i["status"] == "failed")
    assert len(Workspace(ws).list()) == 97


@pytest.mark.slow
def test_a_batch_of_100_with_3_corrupt_imports_97(
    hundred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The damaged packages are in the batch with their own digests in the index, so the
    batch is sound and each damaged package fails its own validation."""
    folder = tmp_path / "packages"
    shutil.copytree(hundred, folder)
    expected = corrupt_three(folder)
    batch = tmp_path / "all.apebatch"
    from apesim.package.batch import BatchWriter, batch_file

    with batch_file(batch) as fh:
        writer = BatchWriter(fh, CREATED)
        for path in sorted(folder.glob("*.zip")):
            sim_id = path.name.removeprefix("APE_simulation_").rsplit("_", 1)[0]
            writer.add(path.name, sim_id, path.read_bytes())
        writer.finish()
    ws = Workspace(tmp_path / "ws")
    report = import_many(ws, [str(batch)])
    assert (report.count("ok"), report.count("failed")) == (97, 3)
    failed = {i.source.rsplit(":", 1)[1]: i.code for i in report.items if i.status == "failed"}
    assert failed == expected
    again = import_many(ws, [str(batch)])  # everything that got in is now a duplicate
    assert (again.count("duplicate"), again.count("failed")) == (97, 3)
    assert {i.code for i in again.items if i.status == "duplicate"} == {"duplicate.package"}


def test_fail_fast_stops_at_the_first_failure(
    hundred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(hundred.glob("*.zip"))[:3]
    bad = tmp_path / "a_bad.zip"
    bad.write_bytes(b"not a zip")
    ws = tmp_path / "ws"
    args = ["import", str(bad), *map(str, files), "-w", str(ws), "--json", "--fail-fast"]
    code, out, _ = ape(capsys, *args)
    report = json.loads(out)
    assert code == 2 and report["stopped"]
    assert [i["status"] for i in report["items"]] == ["failed"]
    assert report["items"][0]["code"] == "zip.not_zip"
    assert not (ws / "registry.sqlite").exists() or Workspace(ws).list() == []


def test_without_fail_fast_it_goes_on_past_a_bad_one(hundred: Path, tmp_path: Path) -> None:
    files = sorted(hundred.glob("*.zip"))[:2]
    bad = tmp_path / "a_bad.zip"
    bad.write_bytes(b"not a zip")
    report = import_many(Workspace(tmp_path / "ws"), [str(bad), *map(str, files)])
    assert [i.status for i in report.items] == ["failed", "ok", "ok"]
    assert not report.ok and not report.stopped


def test_duplicates_are_skipped_by_hash_before_validation(hundred: Path, tmp_path: Path) -> None:
    file = sorted(hundred.glob("*.zip"))[0]
    ws = Workspace(tmp_path / "ws")
    first = import_many(ws, [str(file), str(file)])
    assert [i.status for i in first.items] == ["ok", "duplicate"]
    assert first.items[1].code == "duplicate.package" and first.ok
    assert first.items[1].sim_id == first.items[0].sim_id


def test_globs_and_missing_paths_each_get_a_line(
    hundred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    for file in sorted(hundred.glob("*.zip"))[:2]:
        shutil.copy(file, tmp_path)
    pattern = str(tmp_path / "APE_simulation_*_2026*.zip")
    missing = str(tmp_path / "nowhere.zip")
    nothing = str(tmp_path / "none-*.zip")
    report = import_many(Workspace(tmp_path / "ws"), [missing, nothing, pattern])
    assert [i.code for i in report.items[:2]] == ["source.missing", "source.missing"]
    assert report.count("ok") == 2 and len(report.items) == 4


def test_a_failed_import_leaves_the_workspace_as_it_was(hundred: Path, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    import_many(ws, [str(sorted(hundred.glob("*.zip"))[0])])
    before = snapshot(ws.root)
    bad = tmp_path / "bad.zip"
    data = bytearray(sorted(hundred.glob("*.zip"))[1].read_bytes())
    data[-30] ^= 0xFF
    bad.write_bytes(bytes(data))
    assert import_many(ws, [str(bad)]).count("failed") == 1
    assert snapshot(ws.root) == before


def test_the_text_report_has_one_line_per_package(
    hundred: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = sorted(hundred.glob("*.zip"))[:2]
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x05\x06" + b"\x00" * 18)
    code, out, _ = ape(capsys, "import", *map(str, files), str(bad), "-w", str(tmp_path / "w"))
    lines = out.strip().splitlines()
    assert code == 2
    assert lines[0].startswith("✓ ok ") and lines[1].startswith("✓ ok ")
    assert lines[2].startswith("✗ failed ") and "bad.zip" in lines[2]
    assert lines[3] == "2 imported, 0 duplicate(s), 1 failed"


# -- export -----------------------------------------------------------------------------------


@pytest.fixture
def three(workspace: Workspace) -> list[str]:
    ids = []
    for seed, protocol in enumerate(("prn_monthly", "prn_monthly", "aflibercept_fixed_8_weekly")):
        params = SimulationParameters(patients=2, years=0.5, seed=seed)
        ids.append(api.run_simulation(workspace, protocol, params).sim_id)
    return ids


def test_export_all_into_a_batch_and_import_it_elsewhere(
    three: list[str], workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    batch = tmp_path / "all.apebatch"
    code, out, err = ape(
        capsys, "export", "--all", "-o", str(batch), "-w", str(workspace.root), "--json"
    )
    assert code == 0, err
    shown = json.loads(out)
    assert sorted(p["sim_id"] for p in shown["packages"]) == sorted(three)
    assert shown["batch"]["size"] == batch.stat().st_size
    other = tmp_path / "other"
    code, out, _ = ape(capsys, "import", str(batch), "-w", str(other), "--json")
    assert code == 0 and json.loads(out)["imported"] == 3
    assert sorted(r.sim_id for r in Workspace(other).list()) == sorted(three)


def test_export_by_protocol_selects_its_simulations(
    three: list[str], workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = ape(
        capsys,
        "export",
        "--protocol",
        "prn_monthly",
        "-o",
        str(tmp_path),
        "-w",
        str(workspace.root),
        "--json",
    )
    assert code == 0
    assert sorted(p["sim_id"] for p in json.loads(out)["packages"]) == sorted(three[:2])
    assert len(list(tmp_path.glob("APE_simulation_*.zip"))) == 2


def test_export_of_several_named_simulations_into_a_folder(
    three: list[str], workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", three[0], three[2], "-o", str(tmp_path), "-w", str(workspace.root)]
    code, out, _ = ape(capsys, *args)
    assert code == 0 and out.count("✓") == 2


def test_several_simulations_into_one_zip_name_are_refused(
    three: list[str], workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = ["export", *three, "-o", str(tmp_path / "one.zip"), "-w", str(workspace.root)]
    code, _, err = ape(capsys, *args)
    assert code == 2 and "several simulations" in err and err.count("\n") == 1
    assert list(tmp_path.glob("*.zip")) == []


def test_a_batch_is_never_written_over_a_different_file(
    three: list[str], workspace: Workspace, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "out").mkdir()
    target = tmp_path / "out" / "all.apebatch"
    target.write_bytes(b"someone else's")
    code, _, err = ape(capsys, "export", "--all", "-o", str(target), "-w", str(workspace.root))
    assert code == 2 and "--force" in err
    assert target.read_bytes() == b"someone else's"
    assert [p.name for p in target.parent.iterdir()] == ["all.apebatch"]  # no partial left


def test_export_with_nothing_to_select_is_refused(
    workspace: Workspace, small_sim: object, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = ape(capsys, "export", "--protocol", "no_such", "-w", str(workspace.root))
    assert code == 2 and "no simulation with protocol no_such" in err


def test_a_signed_batch_is_reported_with_its_signer_and_trust(
    three: list[str], workspace: Workspace, tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apesim.bulk import export_many, select_simulations
    from apesim.package.signature import SigningKey, key_id

    alice = SigningKey("alice", Ed25519PrivateKey.generate())
    batch = tmp_path / "signed.apebatch"
    records = select_simulations(workspace, three)
    export_many(workspace, records, str(batch), created=CREATED, sign=[alice])
    kid = key_id(alice.private.public_key())
    report = import_many(Workspace(tmp_path / "other"), [str(batch)], trust={kid: "Alice"})
    assert report.count("ok") == 3
    [seen] = report.batches
    [sig] = seen["signatures"]
    assert (sig["key_id"], sig["signer"], sig["trusted_as"]) == (kid, "alice", "Alice")
    # each package inside was signed too, and its import records the verdict
    imported = Workspace(tmp_path / "other")
    trail = api.audit_trail(imported, three[0]).events[-1].details
    assert trail["signature"]["status"] == "trusted"


def test_a_package_file_that_never_ends_fails_at_the_size_limit(
    endless: Path, tmp_path: Path
) -> None:
    ws = Workspace(tmp_path / "ws")
    report = import_many(ws, [str(endless)], limits=ReadLimits(max_total_bytes=1024))
    assert [item.code for item in report.items] == ["limit.total_size"]
    assert ws.list() == []
