"""The package commands of `ape`: export, inspect, verify and import, with their exit codes."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from apesim.cli import main
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.package.conftest import snapshot
from tests.package.corpus import _metadata_text, members, rebuild

APE = str(Path(sys.executable).with_name("ape"))


def ape(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


@pytest.fixture
def exported(
    small_sim: SimulationRecord,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> Path:
    code, out, err = ape(
        capsys, "export", small_sim.sim_id, "-w", str(workspace.root), "-o", str(tmp_path), "--json"
    )
    assert code == 0, err
    return Path(json.loads(out)["file"])


def test_export_names_the_file_by_id_and_date(exported: Path, small_sim) -> None:
    assert exported.name.startswith(f"APE_simulation_{small_sim.sim_id}_")
    assert exported.suffix == ".zip"


def test_verify_valid_and_invalid(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert ape(capsys, "verify", str(exported))[0] == 0
    broken = tmp_path / "broken.zip"
    broken.write_bytes(exported.read_bytes()[:-10])
    code, _out, err = ape(capsys, "verify", str(broken))
    assert code == 2
    assert err.startswith("ape: error: broken.zip: ") and err.count("\n") == 1
    assert "Traceback" not in err


def test_inspect_json_reports_every_check(
    exported: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = ape(capsys, "inspect", str(exported), "--json")
    report = json.loads(out)
    assert code == 0 and report["valid"] and report["format"] == "APE 1.1"
    assert [c["passed"] for c in report["checks"]] == [True] * 11
    assert report["manifest"]["package_version"] == "1.1"
    assert report["signature"] == {"status": "unsigned", "signatures": []}
    assert report["summary"]["patients"] == 200


def test_inspect_of_a_bad_package_exits_2_with_the_failed_check(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(exported.read_bytes() + b"trailing")
    code, out, _ = ape(capsys, "inspect", str(bad), "--json")
    report = json.loads(out)
    assert code == 2 and not report["valid"]
    assert report["error"]["code"] == "zip.appended"


def test_import_then_show_same_summary(
    exported: Path,
    small_sim,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = str(tmp_path / "target")
    code, out, err = ape(capsys, "import", str(exported), "-w", target, "--json")
    assert code == 0, err
    imported = json.loads(out)
    assert imported["simulation"]["imported"] is True
    code, out, _ = ape(capsys, "show", small_sim.sim_id, "-w", str(workspace.root), "--json")
    assert json.loads(out)["summary"] == imported["summary"]
    code, _, err = ape(capsys, "import", str(exported), "-w", target)
    assert code == 2 and "already imported as" in err


def test_max_unpacked_limit_is_configurable(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = ape(
        capsys, "import", str(exported), "-w", str(tmp_path / "t"), "--max-unpacked-gib", "0.00001"
    )
    assert code == 2 and "limit" in err
    assert Workspace(tmp_path / "t").list() == []


def test_newer_minor_version_is_accepted_with_a_warning(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    files = members(exported.read_bytes())
    files["extras/future.json"] = b'{"new": true}'

    def newer(manifest: dict) -> None:
        manifest["package_version"] = "1.7"
        manifest["future_key"] = {"anything": 1}
        manifest["files"]["extras/future.json"] = {
            "size": 13,
            "sha256": __import__("hashlib").sha256(b'{"new": true}').hexdigest(),
        }

    newer_pkg = tmp_path / "newer.zip"
    newer_pkg.write_bytes(rebuild(files, manifest_edit=newer))
    code, _out, err = ape(capsys, "verify", str(newer_pkg))
    assert code == 0, err
    assert "ape: warning: package format 1.7 is newer" in err


def test_newer_major_version_names_what_is_needed(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    newer = tmp_path / "major.zip"
    newer.write_bytes(
        rebuild(
            members(exported.read_bytes()), manifest_edit=lambda m: m.update(package_version="2.1")
        )
    )
    code, _, err = ape(capsys, "verify", str(newer))
    assert code == 2
    assert "package format 2.1 needs a newer APE" in err


def test_import_as_a_process_leaves_nothing_on_failure(exported: Path, tmp_path: Path) -> None:
    target = tmp_path / "proc-ws"
    Workspace(target)
    before = snapshot(target)
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"\x00" * 64 + exported.read_bytes())
    done = subprocess.run(
        [APE, "import", str(bad)],
        capture_output=True,
        text=True,
        env={**os.environ, "APE_WORKSPACE": str(target)},
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("ape: error: bad.zip:") and done.stderr.count("\n") == 1
    assert snapshot(target) == before


def test_rerunning_an_imported_simulation_is_refused(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    target = str(tmp_path / "target")
    code, out, _ = ape(capsys, "import", str(exported), "-w", target, "--json")
    sim_id = json.loads(out)["simulation"]["sim_id"]
    code, _, err = ape(capsys, "rerun", sim_id, "-w", target)
    assert code == 2
    assert (
        err == f"ape: error: {sim_id}: imported simulations are read-only; run the "
        "protocol as a new simulation instead\n"
    )
    assert len(Workspace(target).list()) == 1


def test_created_option_gives_byte_identical_packages(
    small_sim: SimulationRecord,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = []
    for i in (1, 2):
        target = tmp_path / f"copy{i}.zip"
        code, _, err = ape(
            capsys,
            "export",
            small_sim.sim_id,
            "-w",
            str(workspace.root),
            "-o",
            str(target),
            "--created",
            "2026-01-02T03:04:05Z",
        )
        assert code == 0, err
        paths.append(target)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    code, _, err = ape(
        capsys,
        "export",
        small_sim.sim_id,
        "-w",
        str(workspace.root),
        "-o",
        str(tmp_path),
        "--created",
        "2026-01-02 03:04",
    )
    assert code == 2 and "--created: give a time zone" in err


def test_bad_export_arguments_exit_2_with_one_line(
    small_sim: SimulationRecord,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws = str(workspace.root)
    for args, words in (
        (["--created", "0001-01-01T00:00:00+01:00"], "ZIP dates run from 1980"),
        (["-o", f"{tmp_path}/missing/"], "no such directory"),
    ):
        code, _, err = ape(capsys, "export", small_sim.sim_id, "-w", ws, *args)
        assert code == 2 and words in err and err.count("\n") == 1, err
    assert not (tmp_path / "missing").exists()
    code, _, err = ape(capsys, "inspect", "x.zip", "--max-unpacked-gib", "inf")
    assert code == 2 and "--max-unpacked-gib" in err


def test_exported_package_is_readable_by_others(
    small_sim: SimulationRecord,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = ape(
        capsys, "export", small_sim.sim_id, "-w", str(workspace.root), "-o", str(tmp_path), "--json"
    )
    mode = Path(json.loads(out)["file"]).stat().st_mode & 0o777
    assert code == 0 and mode == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_inspect_prints_a_hostile_package_escaped_and_its_error_in_one_line(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The metadata of a refused package is still shown (escaped), and so is its file name."""
    hostile = "evil\x1b[2J\x9b31m\u202e[red]markup[/red]\nape: error: forged"
    bad = tmp_path / "sent\x1b[31m.zip"
    bad.write_bytes(_metadata_text("name", hostile)(exported.read_bytes()))
    ws = str(tmp_path / "ws")
    for argv in (["inspect", str(bad)], ["verify", str(bad)], ["import", str(bad), "-w", ws]):
        code, out, err = ape(capsys, *argv)
        assert code == 2
        for raw in ("\x1b", "\x9b", "\u202e", "\nape: error: forged"):
            assert raw not in out + err, f"{argv[0]}: {raw!r} printed raw"
        assert err.count("\n") == 1, f"{argv[0]}: not one line: {err!r}"
        assert "sent\\x1b[31m.zip" in err
    code, out, _ = ape(capsys, "inspect", str(bad))
    assert "evil\\x1b[2J\\x9b31m\\u202e[red]markup[/red]\\nape: error: forged" in out


# -- archival safety of export (issue 9) -------------------------------------------------


def export_args(small_sim: SimulationRecord, workspace: Workspace, *args: str) -> list[str]:
    return ["export", small_sim.sim_id, "-w", str(workspace.root), *args]


def test_a_second_export_never_replaces_a_different_package_without_force(
    small_sim: SimulationRecord,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    out_dir = f"{folder}/"
    code, out, err = ape(
        capsys,
        *export_args(small_sim, workspace, "-o", out_dir, "--created", "2026-01-02T03:04:05Z"),
        "--json",
    )
    assert code == 0, err
    first = Path(json.loads(out)["file"])
    original = first.read_bytes()
    # The same day, another time: the same name, different bytes.
    code, out, err = ape(
        capsys,
        *export_args(small_sim, workspace, "-o", out_dir, "--created", "2026-01-02T09:00:00Z"),
    )
    assert (code, out) == (2, "") and err.count("\n") == 1, err
    assert f"{first}: a different file of that name exists already" in err and "--force" in err
    assert first.read_bytes() == original
    assert sorted(p.name for p in folder.iterdir()) == [first.name]  # no partial left
    # The same bytes again (the same --created) leave the file as it is.
    code, _, err = ape(
        capsys,
        *export_args(small_sim, workspace, "-o", out_dir, "--created", "2026-01-02T03:04:05Z"),
    )
    assert code == 0, err
    assert first.read_bytes() == original
    # --force replaces it.
    code, out, err = ape(
        capsys,
        *export_args(small_sim, workspace, "-o", out_dir, "--created", "2026-01-02T09:00:00Z"),
        "--force",
        "--json",
    )
    assert code == 0, err
    assert Path(json.loads(out)["file"]) == first and first.read_bytes() != original


def test_an_output_file_name_without_zip_gets_the_suffix(
    small_sim: SimulationRecord,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    folder = tmp_path / "packages"
    folder.mkdir()
    code, out, err = ape(
        capsys, *export_args(small_sim, workspace, "-o", str(folder / "mypkg")), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["file"] == str(folder / "mypkg.zip")
    assert sorted(p.name for p in folder.iterdir()) == ["mypkg.zip"]
    code, out, err = ape(
        capsys, *export_args(small_sim, workspace, "-o", str(folder / "other.ZIP")), "--json"
    )
    assert code == 0 and json.loads(out)["file"] == str(folder / "other.ZIP")


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs Linux's /proc")
@pytest.mark.parametrize("target", ["/proc/", "/proc/pkg.zip"])
def test_an_unwritable_target_is_one_line_naming_the_path(
    small_sim: SimulationRecord,
    workspace: Workspace,
    capsys: pytest.CaptureFixture[str],
    target: str,
) -> None:
    code, out, err = ape(capsys, *export_args(small_sim, workspace, "-o", target))
    assert (code, out) == (2, ""), err
    assert err.startswith("ape: error: /proc/") and err.count("\n") == 1, err
    assert "cannot write the package there" in err and "choose another location" in err
    assert not [p for p in Path("/proc").iterdir() if p.name.startswith(".ape-export-")]


def test_created_takes_a_plain_date_and_its_hint_is_a_value_that_works(
    small_sim: SimulationRecord,
    workspace: Workspace,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    def export(created: str, name: str) -> tuple[int, str]:
        code, _, err = ape(
            capsys,
            *export_args(small_sim, workspace, "-o", str(tmp_path / name), "--created", created),
        )
        return code, err

    assert export("2026-01-02", "plain.zip") == (0, "")
    assert export("2026-01-02T00:00:00Z", "explicit.zip") == (0, "")
    assert (tmp_path / "plain.zip").read_bytes() == (tmp_path / "explicit.zip").read_bytes()
    code, err = export("2026-01-02 03:04", "naive.zip")
    assert code == 2 and err.count("\n") == 1
    hint = err.split("e.g. ")[1].split(" ")[0]
    assert hint == "2026-01-02T03:04:00Z"
    assert export(hint, "hinted.zip") == (0, "")
    code, err = export("next tuesday", "bad.zip")
    assert code == 2 and "2026-01-02T03:04:05Z" in err
    assert export(err.split("e.g. ")[1].split(",")[0], "example.zip") == (0, "")


@pytest.mark.skipif(shutil.which("zip") is None, reason="needs Info-ZIP's zip")
def test_a_package_rezipped_with_zip_r_says_how_to_zip_it_and_the_hint_works(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    unpacked = tmp_path / "unpacked"
    with zipfile.ZipFile(exported) as zf:
        zf.extractall(unpacked)
    rezipped = tmp_path / "rezipped.zip"
    subprocess.run(["zip", "-q", "-r", str(rezipped), "."], cwd=unpacked, check=True)
    code, out, err = ape(capsys, "verify", str(rezipped))
    assert (code, out) == (2, "") and err.count("\n") == 1
    assert "entry 'data/' is a directory entry" in err
    hint = err.split("run `")[1].split("`")[0]
    assert hint == "zip -r -D NEW.zip ."
    subprocess.run([*hint.split()[:3], str(tmp_path / "NEW.zip"), "."], cwd=unpacked, check=True)
    code, _, err = ape(capsys, "verify", str(tmp_path / "NEW.zip"))
    assert code == 0, err


def test_verify_json_gives_the_verdict_and_keeps_the_exit_code(
    exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = ape(capsys, "verify", str(exported), "--json")
    assert (code, err) == (0, "")
    verdict = json.loads(out)
    assert verdict == {
        "file": exported.name,
        "valid": True,
        "format": "APE 1.1",
        "size": exported.stat().st_size,
        "sha256": hashlib.sha256(exported.read_bytes()).hexdigest(),
        "error": None,
        "warnings": [],
        "signature": {"status": "unsigned", "signatures": []},
    }
    broken = tmp_path / "broken.zip"
    broken.write_bytes(exported.read_bytes() + b"trailing")
    code, out, err = ape(capsys, "verify", str(broken), "--json")
    assert (code, err) == (2, "")
    verdict = json.loads(out)
    assert verdict["valid"] is False and verdict["error"]["code"] == "zip.appended"
    assert verdict["error"]["message"].startswith("broken.zip: ")


@pytest.mark.parametrize("command", ["verify", "inspect"])
def test_a_batch_given_as_one_package_is_named_a_batch(
    command: str, exported: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from datetime import UTC, datetime

    from apesim.package.batch import BatchWriter

    batch = tmp_path / "two.apebatch"
    with batch.open("wb") as out:
        writer = BatchWriter(out, datetime(2026, 1, 1, tzinfo=UTC))
        writer.add(exported.name, "sim-0", exported.read_bytes())
        writer.finish()
    code, out_text, err = ape(capsys, command, str(batch))
    assert code == 2 and out_text == ""
    assert err == (
        f"ape: error: {batch}: a batch of packages (.apebatch), not one package: `ape import` "
        "validates each of its packages before it imports them\n"
    )


def test_import_of_a_missing_file_with_file_options_says_no_such_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "missing.zip.age"
    code, _, err = ape(capsys, "import", str(missing), "--identity", str(tmp_path / "me.age"))
    assert code == 2 and err == f"ape: error: {missing}: no such file\n"
