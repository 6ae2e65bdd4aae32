"""`ape keys`, `ape sign`, and the signature and encryption options of export, verify,
inspect and import: exit codes, one-line errors, verdict lines."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from apesim.cli import main
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.package.conftest import snapshot


def ape(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


@pytest.fixture
def ws_args(workspace: Workspace) -> list[str]:
    return ["-w", str(workspace.root)]


def _export(
    capsys: pytest.CaptureFixture[str], sim: SimulationRecord, ws: list[str], out: Path, *extra: str
) -> Path:
    out.mkdir(exist_ok=True)
    code, stdout, err = ape(capsys, "export", sim.sim_id, *ws, "-o", str(out), "--json", *extra)
    assert code == 0, err
    return Path(json.loads(stdout)["file"])


def test_generate_sign_verify_untrust(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = ape(capsys, "keys", "generate", "alice", *ws_args)
    assert code == 0, err
    assert "ape-ed25519:" in out and "trusted in this workspace" in out
    code, out, _ = ape(capsys, "keys", "list", *ws_args, "--json")
    listed = json.loads(out)
    assert [k["name"] for k in listed["keys"]] == ["alice"]
    key_id = listed["keys"][0]["key_id"]
    assert [t["key_id"] for t in listed["trusted"]] == [key_id]

    package = _export(capsys, small_sim, ws_args, tmp_path / "out", "--sign", "alice")
    code, out, err = ape(capsys, "verify", str(package), *ws_args, "--require-signature")
    assert code == 0, err
    assert f"signed and trusted: alice (trusted), key {key_id[:16]}" in out

    code, out, _ = ape(capsys, "keys", "untrust", "alice", *ws_args)
    assert code == 0
    code, out, err = ape(capsys, "verify", str(package), *ws_args)
    assert code == 0
    assert "ape: warning: signed by an unknown key" in err and "ape keys trust ape-ed25519:" in err
    code, out, err = ape(capsys, "verify", str(package), *ws_args, "--require-signature")
    assert code == 2
    assert err.count("\n") == 1 and "trusted signature is required" in err


def test_verify_json_carries_the_signature_verdict(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ape(capsys, "keys", "generate", "alice", *ws_args)
    package = _export(capsys, small_sim, ws_args, tmp_path / "out", "--sign", "alice")
    code, out, _ = ape(capsys, "verify", str(package), *ws_args, "--json")
    verdict = json.loads(out)["signature"]
    assert code == 0 and verdict["status"] == "trusted"
    assert verdict["signatures"][0]["trusted_as"] == "alice"
    code, out, _ = ape(
        capsys, "verify", str(package), "--trust", str(tmp_path / "none.json"), "--json"
    )
    assert code == 2  # a trust file that does not exist is an error, not an empty list


def test_import_require_signature_refuses_an_unsigned_package_and_leaves_nothing(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = _export(capsys, small_sim, ws_args, tmp_path / "out")
    other = Workspace(tmp_path / "other")
    before = snapshot(other.root)
    code, _, err = ape(capsys, "import", str(package), "-w", str(other.root), "--require-signature")
    assert code == 2 and err.count("\n") == 1 and "not signed" in err
    assert snapshot(other.root) == before


def test_the_workspace_policy_requires_a_signature_unless_overridden(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    package = _export(capsys, small_sim, ws_args, tmp_path / "out")
    other = ["-w", str(tmp_path / "other")]
    code, out, _ = ape(capsys, "keys", "policy", "--require-signature", *other, "--json")
    assert code == 0 and json.loads(out)["require_signature"] is True
    code, _, err = ape(capsys, "import", str(package), *other)
    assert code == 2 and "signature is required" in err
    code, _, err = ape(capsys, "import", str(package), *other, "--allow-unsigned")
    assert code == 0, err
    assert "not signed" in err


def test_a_protected_key_signs_with_its_passphrase_file(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("hunter22\n")
    code, _, err = ape(
        capsys, "keys", "generate", "bob", "--passphrase-file", str(secret), *ws_args
    )
    assert code == 0, err
    package = _export(
        capsys,
        small_sim,
        ws_args,
        tmp_path / "out",
        "--sign",
        "bob",
        "--key-passphrase-file",
        str(secret),
    )
    code, out, _ = ape(capsys, "verify", str(package), *ws_args)
    assert code == 0 and "bob (trusted)" in out
    secret.write_text("wrong\n")
    code, _, err = ape(
        capsys,
        "export",
        small_sim.sim_id,
        *ws_args,
        "-o",
        str(tmp_path / "out" / "b.zip"),
        "--sign",
        "bob",
        "--key-passphrase-file",
        str(secret),
    )
    assert code == 2 and "passphrase of the key 'bob' is wrong" in err
    assert not (tmp_path / "out" / "b.zip").exists()


def test_countersign_lists_both_signers(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ape(capsys, "keys", "generate", "alice", *ws_args)
    ape(capsys, "keys", "generate", "reviewer", *ws_args)
    package = _export(capsys, small_sim, ws_args, tmp_path / "out", "--sign", "alice")
    code, out, err = ape(capsys, "sign", str(package), "--key", "reviewer")
    assert code == 0, err
    code, out, _ = ape(capsys, "inspect", str(package), *ws_args, "--json")
    signers = [s["trusted_as"] for s in json.loads(out)["signature"]["signatures"]]
    assert sorted(signers) == ["alice", "reviewer"]


def test_encrypt_for_a_keyring_identity_then_import_with_it(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, _ = ape(capsys, "keys", "generate", "team", "--age", *ws_args, "--json")
    recipient = json.loads(out)["public"]
    package = _export(capsys, small_sim, ws_args, tmp_path / "out", "--encrypt-to", recipient)
    assert package.name.endswith(".zip.age")
    other = ["-w", str(tmp_path / "other")]
    code, _, err = ape(capsys, "import", str(package), *other)
    assert code == 2 and "give its age identity" in err
    code, out, err = ape(capsys, "import", str(package), *other, "--identity", "team")
    assert code == 0, err
    assert package.name in out


def test_a_passphrase_package_is_inspected_with_its_passphrase_file(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    secret = tmp_path / "pass.txt"
    secret.write_text("open sesame\n")
    package = _export(
        capsys, small_sim, ws_args, tmp_path / "out", "--passphrase-file", str(secret)
    )
    code, out, err = ape(
        capsys, "inspect", str(package), *ws_args, "--passphrase-file", str(secret), "--json"
    )
    assert code == 0, err
    assert json.loads(out)["valid"] is True
    secret.write_text("open sesame!\n")
    code, _, err = ape(capsys, "verify", str(package), *ws_args, "--passphrase-file", str(secret))
    assert code == 2 and err.count("\n") == 1 and "cannot decrypt" in err


def test_signing_a_missing_package_is_one_line_with_exit_2(
    ws_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ape(capsys, "keys", "generate", "reviewer", *ws_args)
    code, _, err = ape(capsys, "sign", str(tmp_path / "nothere.zip"), "--key", "reviewer")
    assert code == 2 and err.count("\n") == 1 and "nothere.zip: no such file" in err, err


def test_signing_into_a_missing_folder_is_one_line_and_changes_nothing(
    small_sim: SimulationRecord,
    ws_args: list[str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ape(capsys, "keys", "generate", "reviewer", *ws_args)
    package = _export(capsys, small_sim, ws_args, tmp_path / "out")
    before = snapshot(tmp_path / "out")
    target = tmp_path / "nodir" / "signed.zip"
    code, _, err = ape(capsys, "sign", str(package), "--key", "reviewer", "-o", str(target))
    assert code == 2 and err.count("\n") == 1 and "no such directory" in err, err
    assert snapshot(tmp_path / "out") == before and not (tmp_path / "nodir").exists()
