"""Faults of an object store: an upload cut off on the wire leaves no object, and a server
that answers with errors gives exit 2 and one line naming the URL."""

from __future__ import annotations

from pathlib import Path

import pytest

from apesim import api
from apesim.cli import main
from apesim.engine.simulate import SimulationParameters
from apesim.remote.objects import filesystem
from apesim.workspace import Workspace
from tests.remote.conftest import GCS_BUCKET, point_s3_at
from tests.remote.servers import cutting_proxy, failing_server


def ape(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """Exit code, stdout, and APE's own lines on stderr (the servers in this process log
    there too)."""
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    ours = [line for line in captured.err.splitlines() if line.startswith("ape:")]
    return int(done.value.code or 0), captured.out, "".join(f"{line}\n" for line in ours)


@pytest.fixture
def sim(workspace: Workspace) -> str:
    params = SimulationParameters(patients=50, years=1.0, seed=3)
    return api.run_simulation(workspace, "prn_monthly", params).sim_id


def test_an_interrupted_s3_upload_leaves_no_object(
    s3_endpoint: str,
    sim: str,
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    point_s3_at(monkeypatch, s3_endpoint, tmp_path)
    filesystem("s3").mkdir("ape-cut")
    with cutting_proxy(s3_endpoint) as proxy:
        monkeypatch.setenv("AWS_ENDPOINT_URL", proxy)
        code, _, err = ape(
            capsys, "export", sim, "-o", "s3://ape-cut/p/", "-w", str(workspace.root)
        )
    assert code == 2 and err.startswith("ape: error: s3://ape-cut/p/APE_simulation_"), err
    assert err.count("\n") == 1
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    assert filesystem("s3").find("ape-cut") == []


def test_an_interrupted_gcs_upload_leaves_no_object(
    gcs_endpoint: str,
    sim: str,
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NO_GCE_CHECK", "true")
    with cutting_proxy(gcs_endpoint) as proxy:
        monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy)
        url = f"gs://{GCS_BUCKET}/cut/"
        code, _, err = ape(capsys, "export", sim, "-o", url, "-w", str(workspace.root))
    assert code == 2 and err.startswith(f"ape: error: {url}APE_simulation_")
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs_endpoint)
    assert filesystem("gs").find(f"{GCS_BUCKET}/cut/") == []


@pytest.mark.parametrize("command", ["export", "import", "inspect", "list-remote"])
def test_a_failing_s3_server_gives_exit_2_with_the_url(
    command: str,
    sim: str,
    workspace: Workspace,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    with failing_server() as endpoint:
        point_s3_at(monkeypatch, endpoint, tmp_path)
        url = "s3://ape-down/p/" + ("x.zip" if command == "inspect" else "")
        args = {
            "export": ["export", sim, "-o", url, "-w", str(workspace.root)],
            "import": ["import", url, "-w", str(tmp_path / "ws2")],
            "inspect": ["inspect", url],
            "list-remote": ["list-remote", url],
        }[command]
        code, out, err = ape(capsys, *args)
    assert code == 2
    if command == "import":  # the failure is the report's line for that URL
        assert out.startswith("✗ failed s3://ape-down/p/  remote.error: s3://ape-down/p/")
        return
    assert err.startswith("ape: error: s3://ape-down/p/") and err.count("\n") == 1
