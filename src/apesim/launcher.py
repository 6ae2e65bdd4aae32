"""Starting the app (`ape app`, `make run`): the Streamlit command for an installed APE.

The app's pages are package data (`apesim/app/*.py`), so a pip-installed APE starts them
from where they were installed, with Streamlit's options given on the command line: no
`.streamlit/config.toml` is needed, and none in the user's current folder is relied on.
The workspace reaches the app through APE_WORKSPACE in the server's environment.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from types import FrameType
from typing import Any

DEFAULT_PORT = 8501
DEFAULT_HOST = "127.0.0.1"  # this machine only; --host 0.0.0.0 serves the network too

# Streamlit's options for APE, whoever starts it (`ape app`, `make run`): no browser of its
# own to open and no prompt (headless), no usage statistics sent anywhere, the viewer's
# toolbar (no developer menu), and no watching of the installed pages for edits.
STREAMLIT_OPTIONS: dict[str, str] = {
    "server.headless": "true",
    "browser.gatherUsageStats": "false",
    "client.toolbarMode": "viewer",
    "server.fileWatcherType": "none",
}


def home_script() -> Path:
    """The app's entry page, where APE is installed."""
    return Path(str(resources.files("apesim.app") / "Home.py"))


def app_command(
    *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, python: str | None = None
) -> list[str]:
    """The command that serves the app on `host`:`port` with APE's Streamlit options."""
    options = {**STREAMLIT_OPTIONS, "server.address": host, "server.port": str(port)}
    flags = [part for key, value in options.items() for part in (f"--{key}", value)]
    return [python or sys.executable, "-m", "streamlit", "run", str(home_script()), *flags]


def app_environment(workspace: Path, base: Mapping[str, str] | None = None) -> dict[str, str]:
    """The server's environment: `base` (default: this process's) with APE_WORKSPACE set."""
    return {**(os.environ if base is None else base), "APE_WORKSPACE": str(workspace)}


def app_url(host: str, port: int) -> str:
    """Where a browser on this machine finds the app."""
    shown = "localhost" if host in ("127.0.0.1", "0.0.0.0", "::", "") else host
    return f"http://{shown}:{port}"


def run_app(workspace: Path, *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST) -> int:
    """Serve the app until it is stopped (Ctrl-C); its exit code."""
    return _serve(app_command(port=port, host=host), app_environment(workspace))


# `ape view PACKAGE`: the viewer, one page over a package file, with no workspace.
VIEW_PACKAGE = "APE_VIEW_PACKAGE"
VIEW_BASE = "APE_VIEW_BASE"
VIEW_TRUST = "APE_VIEW_TRUST"  # a trust file (trusted_keys.json) to judge signatures with


def viewer_script() -> Path:
    """The viewer's page, where APE is installed (a folder of its own: no pages beside it)."""
    return Path(str(resources.files("apesim.app") / "viewer" / "View.py"))


def viewer_command(
    *, port: int = DEFAULT_PORT, host: str = DEFAULT_HOST, python: str | None = None
) -> list[str]:
    """The command that serves the viewer on `host`:`port` with APE's Streamlit options."""
    command = app_command(port=port, host=host, python=python)
    command[command.index(str(home_script()))] = str(viewer_script())
    return command


def viewer_environment(
    package: Path,
    base: Path | None = None,
    env: Mapping[str, str] | None = None,
    trust: Path | None = None,
) -> dict[str, str]:
    """The viewer's environment: the package (and a differential one's base) to show, and
    no workspace."""
    out = {k: v for k, v in (os.environ if env is None else env).items() if k != "APE_WORKSPACE"}
    out[VIEW_PACKAGE] = str(package.absolute())
    if base is not None:
        out[VIEW_BASE] = str(base.absolute())
    if trust is not None:
        out[VIEW_TRUST] = str(trust.absolute())
    return out


def run_viewer(
    package: Path,
    *,
    base: Path | None = None,
    trust: Path | None = None,
    port: int = DEFAULT_PORT,
    host: str = DEFAULT_HOST,
) -> int:
    """Serve the viewer of `package` until it is stopped (Ctrl-C); its exit code. `trust`:
    a trust file whose keys judge the package's signatures."""
    env = viewer_environment(package, base, trust=trust)
    return _serve(viewer_command(port=port, host=host), env)


def _serve(command: list[str], env: dict[str, str]) -> int:
    """Run the server until it ends; a SIGTERM to `ape` is passed on to it (else the
    server would outlive the command that started it)."""
    process = subprocess.Popen(command, env=env)
    previous = _forward_sigterm(process)
    try:
        return process.wait()
    except KeyboardInterrupt:  # Streamlit got the Ctrl-C too: let it shut down
        try:
            return process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            return process.wait()
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _forward_sigterm(process: subprocess.Popen[bytes]) -> Any:
    """Install a SIGTERM handler that terminates `process`; the handler it replaced, or
    None where handlers cannot be set (not the main thread)."""

    def forward(signum: int, frame: FrameType | None) -> None:
        process.send_signal(signum)

    try:
        return signal.signal(signal.SIGTERM, forward)
    except ValueError:
        return None
