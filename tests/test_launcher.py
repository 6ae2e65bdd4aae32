"""`ape app`: the command it builds for an installed APE, and a real server started through
the installed `ape` script, answering its health check on a loopback port, then stopped as
Ctrl-C stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from pathlib import Path

import pytest

from apesim import launcher
from apesim.cli import main

APE = Path(sys.executable).with_name("ape")
ROOT = Path(__file__).resolve().parents[1]


def options(argv: list[str]) -> dict[str, str]:
    """The `--key value` pairs after the script in a `streamlit run` command."""
    flags = argv[argv.index("run") + 2 :]
    assert len(flags) % 2 == 0 and all(f.startswith("--") for f in flags[::2])
    return {
        key.removeprefix("--"): value for key, value in zip(flags[::2], flags[1::2], strict=True)
    }


def test_the_command_runs_the_installed_home_page_with_apes_options() -> None:
    argv = launcher.app_command(port=8765, host="127.0.0.1")
    assert argv[:4] == [sys.executable, "-m", "streamlit", "run"]
    home = Path(argv[4])
    assert home == launcher.home_script() and home.is_file() and home.name == "Home.py"
    assert home.parent == Path(launcher.__file__).parent / "app"
    assert options(argv) == {
        "server.headless": "true",
        "browser.gatherUsageStats": "false",
        "client.toolbarMode": "viewer",
        "server.fileWatcherType": "none",
        "server.address": "127.0.0.1",
        "server.port": "8765",
    }
    assert options(launcher.app_command())["server.address"] == "127.0.0.1"  # this machine only


def test_the_pages_are_package_data() -> None:
    """A pip-installed APE has the pages the launcher starts (pyproject's package data)."""
    data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    declared = data["tool"]["setuptools"]["package-data"]["apesim"]
    assert {"app/*.py", "app/pages/*.py"} <= set(declared)
    pages = sorted(p.name for p in (launcher.home_script().parent / "pages").glob("*.py"))
    assert pages and all(p[0].isdigit() for p in pages)


def test_the_workspace_reaches_the_server_through_its_environment(tmp_path: Path) -> None:
    env = launcher.app_environment(tmp_path / "ws", {"PATH": "/bin", "APE_WORKSPACE": "old"})
    assert env == {"PATH": "/bin", "APE_WORKSPACE": str(tmp_path / "ws")}


def test_ape_app_starts_the_launcher_on_the_chosen_workspace(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from apesim import api

    calls = []

    def fake_run_app(workspace: Path, *, port: int, host: str) -> int:
        calls.append((workspace, port, host))
        return 0

    monkeypatch.setattr(api, "run_app", fake_run_app)
    with pytest.raises(SystemExit) as done:
        main(["app", "--port", "8600", "-w", str(tmp_path / "ws")])
    assert done.value.code == 0
    assert calls == [(tmp_path / "ws", 8600, "127.0.0.1")]
    err = capsys.readouterr().err
    assert "http://localhost:8600" in err and f"{tmp_path / 'ws'} (from --workspace)" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.status == 200 and response.read().strip() == b"ok"
    except OSError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(os.name != "posix", reason="stops the server with a process group's SIGINT")
def test_a_real_server_starts_answers_its_health_check_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "app.log").open("wb")
    process = subprocess.Popen(
        [str(APE), "app", "--port", str(port), "--workspace", str(tmp_path / "ws")],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
    )
    try:
        deadline = time.monotonic() + 90
        while not _healthy(url):
            assert process.poll() is None, (tmp_path / "app.log").read_text()
            assert time.monotonic() < deadline, "the app did not become healthy"
            time.sleep(0.3)
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=30) == 0
        assert not _healthy(url)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        log.close()
    assert f"APE app on http://localhost:{port}" in (tmp_path / "app.log").read_text()


def _children(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(p) for p in (task / "children").read_text().split()]
    return found


@pytest.mark.slow
@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="reads /proc")
def test_a_terminated_ape_app_takes_its_server_with_it(tmp_path: Path) -> None:
    """SIGTERM (a service manager's stop, a test's terminate()) reaches `ape`, not its
    server: `ape` passes it on, so no Streamlit server is left behind."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = (tmp_path / "app.log").open("wb")
    process = subprocess.Popen(
        [str(APE), "app", "--port", str(port), "--workspace", str(tmp_path / "ws")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    server: list[int] = []
    try:
        deadline = time.monotonic() + 90
        while not _healthy(url):
            assert process.poll() is None, (tmp_path / "app.log").read_text()
            assert time.monotonic() < deadline, "the app did not become healthy"
            time.sleep(0.3)
        server = _children(process.pid)
        assert server, "the server is a child of ape"
        process.terminate()
        process.wait(timeout=30)
        for pid in server:
            deadline = time.monotonic() + 30
            while Path(f"/proc/{pid}").exists() and "Z" not in _state(pid):
                assert time.monotonic() < deadline, "the server outlived ape"
                time.sleep(0.2)
        assert not _healthy(url)
    finally:
        for pid in server:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        if process.poll() is None:
            process.kill()
            process.wait()
        log.close()


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, IndexError):
        return "Z"


def home_caption(monkeypatch: pytest.MonkeyPatch) -> str:
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(launcher.home_script()), default_timeout=60).run()
    assert not at.exception, at.exception
    [caption] = [c.value for c in at.caption if c.value.startswith("Workspace:")]
    return str(caption)


def test_home_shows_the_workspace_and_where_it_came_from(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`make run` (./workspace through APE_WORKSPACE) and the CLI's default may differ: Home
    says which folder the app uses and why."""
    monkeypatch.setenv("APE_WORKSPACE", str(tmp_path / "checkout" / "workspace"))
    caption = home_caption(monkeypatch)
    assert f"`{tmp_path / 'checkout' / 'workspace'}`" in caption
    assert "(from APE_WORKSPACE;" in caption
    monkeypatch.delenv("APE_WORKSPACE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    caption = home_caption(monkeypatch)
    assert f"`{tmp_path / 'data'}" in caption and "(the default;" in caption


def test_the_viewer_is_its_own_page_with_the_apps_options_and_no_workspace(
    tmp_path: Path,
) -> None:
    command = launcher.viewer_command(port=8600)
    script = Path(command[command.index("run") + 1])
    assert script == launcher.viewer_script() and script.is_file()
    assert not (script.parent / "pages").exists(), "no workspace page beside the viewer"
    assert options(command) == options(launcher.app_command(port=8600))
    env = launcher.viewer_environment(
        tmp_path / "p.zip", None, {"APE_WORKSPACE": "/somewhere", "PATH": "/bin"}
    )
    assert env == {"PATH": "/bin", launcher.VIEW_PACKAGE: str(tmp_path / "p.zip")}


def test_ape_view_of_a_missing_file_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["view", str(tmp_path / "nothing.zip")])
    assert done.value.code == 2
    assert "nothing.zip: no such file" in capsys.readouterr().err
