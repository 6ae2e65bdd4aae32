"""Packages and batches in S3 and GCS, against real API servers on loopback (moto,
gcp-storage-emulator): publish once and create-only, list, import (downloads re-verified
by SHA-256), inspect from byte ranges, and the faults."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from apesim import api
from apesim.cli import main
from apesim.engine.simulate import SimulationParameters
from apesim.remote.objects import filesystem
from apesim.remote.urls import parse_remote
from apesim.workspace import Workspace

CREATED = "2026-07-08"


def ape(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def objects(url: str) -> dict[str, bytes]:
    """Every object under `url`, read straight from the store: key -> bytes."""
    where = parse_remote(url)
    fs = filesystem(where.scheme)
    return {p: fs.cat_file(p) for p in sorted(fs.find(where.path))}


@pytest.fixture
def two(workspace: Workspace) -> list[str]:
    return [
        api.run_simulation(
            workspace, "prn_monthly", SimulationParameters(patients=20, years=1.0, seed=s)
        ).sim_id
        for s in (1, 2)
    ]


def export(capsys: pytest.CaptureFixture[str], ws: Workspace, *args: str) -> tuple[int, dict, str]:
    code, out, err = ape(
        capsys, "export", *args, "--created", CREATED, "-w", str(ws.root), "--json"
    )
    return code, (json.loads(out) if out.strip() else {}), err


def test_round_trip_through_a_bucket(
    bucket_url: str,
    two: list[str],
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, shown, err = export(capsys, workspace, *two, "-o", bucket_url)
    assert code == 0, err
    assert [p["status"] for p in shown["packages"]] == ["uploaded", "uploaded"]
    stored = objects(bucket_url)
    assert len(stored) == 2
    for p in shown["packages"]:  # what the store holds is what was exported, byte for byte
        key = parse_remote(p["file"]).path
        assert hashlib.sha256(stored[key]).hexdigest() == p["sha256"]

    code, out, _ = ape(capsys, "list-remote", bucket_url, "--json")
    listed = json.loads(out)
    assert code == 0 and sorted(o["url"] for o in listed) == sorted(
        p["file"] for p in shown["packages"]
    )

    other = Workspace(tmp_path / "other")
    code, out, err = ape(capsys, "import", bucket_url, "-w", str(other.root), "--json")
    assert code == 0, err
    assert json.loads(out)["imported"] == 2
    imported = {r.sim_id: r for r in other.list()}
    assert sorted(imported) == sorted(two)
    for p in shown["packages"]:
        assert imported[p["sim_id"]].source_sha256 == p["sha256"]
        original = api.load_simulation(workspace, p["sim_id"])
        again = api.load_simulation(other, p["sim_id"])
        assert again.visits.equals(original.visits)


def test_publishing_the_same_package_again_is_a_no_op(
    bucket_url: str, two: list[str], workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    assert export(capsys, workspace, two[0], "-o", bucket_url)[0] == 0
    before = objects(bucket_url)
    code, shown, _ = export(capsys, workspace, two[0], "-o", bucket_url)
    assert code == 0 and shown["packages"][0]["status"] == "unchanged"
    assert objects(bucket_url) == before


def test_a_different_object_under_the_name_is_never_replaced(
    bucket_url: str, two: list[str], workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    code, shown, _ = export(capsys, workspace, two[0], "-o", bucket_url)
    url = shown["packages"][0]["file"]
    where = parse_remote(url)
    filesystem(where.scheme).rm(where.path)
    filesystem(where.scheme).pipe_file(where.path, b"someone else's object")
    code, _, err = export(capsys, workspace, two[0], "-o", bucket_url)
    assert code == 2 and url in err and "never replaced" in err
    assert objects(bucket_url)[where.path] == b"someone else's object"


def test_a_batch_object_round_trip(
    bucket_url: str,
    two: list[str],
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = bucket_url + "both.apebatch"
    code, shown, err = export(capsys, workspace, "--all", "-o", target)
    assert code == 0, err
    assert shown["batch"]["file"] == target
    code, out, err = ape(capsys, "import", target, "-w", str(tmp_path / "o"), "--json")
    assert code == 0, err
    assert json.loads(out)["imported"] == 2


def test_a_download_that_does_not_match_is_refused(
    bucket_url: str,
    two: list[str],
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A table's bytes changed in the store: the download is checked by its own SHA-256s
    (the manifest's, recomputed here), not by what the store says about it."""
    code, shown, _ = export(capsys, workspace, two[0], "-o", bucket_url)
    where = parse_remote(shown["packages"][0]["file"])
    fs = filesystem(where.scheme)
    data = bytearray(fs.cat_file(where.path))
    data[2000] ^= 0x01
    fs.rm(where.path)
    fs.pipe_file(where.path, bytes(data))
    ws = tmp_path / "o"
    code, out, _ = ape(capsys, "import", bucket_url, "-w", str(ws), "--json")
    report = json.loads(out)
    assert code == 2 and report["failed"] == 1
    assert report["items"][0]["code"] in {"zip.crc", "checksum.sha256"}
    assert not (ws / "sims").exists() or not any((ws / "sims").iterdir())


def test_inspect_reads_only_the_ranges_it_needs(
    bucket_url: str, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = api.run_simulation(
        workspace, "aflibercept_treat_and_extend", SimulationParameters(20000, 5.0, 5)
    )
    code, shown, _ = export(capsys, workspace, sim.sim_id, "-o", bucket_url)
    url = shown["packages"][0]["file"]
    code, out, err = ape(capsys, "inspect", url, "--json")
    peek = json.loads(out)
    assert code == 0, err
    assert peek["manifest"]["sim_id"] == sim.sim_id
    assert peek["tables"]["data/patients.parquet"]["rows"] == 20000
    visits = peek["tables"]["data/visits.parquet"]
    assert visits["rows"] == visits["manifest_rows"] > 20000
    share = peek["bytes_read"] / peek["size"]
    assert peek["size"] > 500_000 and share < 0.15 and peek["requests"] <= 6
    code, out, _ = ape(capsys, "inspect", url, "--full", "--json")
    assert code == 0 and json.loads(out)["valid"]
    print(f"inspect read {peek['bytes_read']:,} of {peek['size']:,} bytes ({share:.1%})")


def test_inspect_of_a_missing_object_names_it(
    bucket_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    url = bucket_url + "nothing.zip"
    code, _, err = ape(capsys, "inspect", url)
    assert code == 2 and err == f"ape: error: {url}: no such object or bucket\n"


def test_verify_of_a_url_checks_the_whole_package(
    bucket_url: str, workspace: Workspace, capsys: pytest.CaptureFixture[str]
) -> None:
    sim = api.run_simulation(
        workspace, "aflibercept_treat_and_extend", SimulationParameters(300, 2.0, 5)
    )
    _, shown, _ = export(capsys, workspace, sim.sim_id, "-o", bucket_url)
    url = shown["packages"][0]["file"]
    code, out, err = ape(capsys, "verify", url, "--json")
    verdict = json.loads(out)
    assert code == 0, err
    assert verdict["valid"] and verdict["file"] == url
    assert verdict["signature"]["status"] == "unsigned"
    code, _, err = ape(capsys, "verify", url, "--require-signature")
    assert code == 2 and "sign" in err
    missing = bucket_url + "nothing.zip"
    code, _, err = ape(capsys, "verify", missing)
    assert code == 2 and err == f"ape: error: {missing}: no such object or bucket\n"
