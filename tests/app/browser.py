"""Driving the app in a real browser (Playwright + Debian's chromium), for the browser tests:
the chromium they launch, the app's server on a free port of this machine, the recording of
every request off the machine, screenshots, and waiting for a page to settle. The browser and
page fixtures are in conftest.py."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

from tests.app.apptools import HOME

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 60_000
WIDTH = 1400

MARKS = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason="Debian's chromium is not installed at /usr/bin/chromium (`make browser`)",
    ),
]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(
    url: str, process: subprocess.Popen[bytes], what: str, timeout: float = 60
) -> None:
    """Wait until the Streamlit server at `url` answers its health check; fail if `process`
    exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{what} exited with {process.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"{what} did not become healthy on {url}")


class Server:
    """`streamlit run` of the app on 127.0.0.1, on its own workspace."""

    def __init__(self, workspace: Path, user: str, log: Path) -> None:
        self.workspace = workspace
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "APE_WORKSPACE": str(workspace), "APE_USER": user}
        self.log_path = log
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                str(HOME),
                "--server.headless",
                "true",
                "--server.address",
                "127.0.0.1",
                "--server.port",
                str(self.port),
                "--browser.gatherUsageStats",
                "false",
                "--server.fileWatcherType",
                "none",
            ],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        wait_healthy(self.url, self.process, "streamlit", timeout)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


class OffMachine:
    """Every request the browser makes, recorded: those to an address off this machine
    (anything but loopback) are kept in `requested` and stopped before they leave."""

    LOOPBACK = ("127.0.0.1", "localhost", "[::1]", "::1")

    def __init__(self) -> None:
        self.requested: list[str] = []
        self.seen = 0

    def local(self, url: str) -> bool:
        parsed = urllib.parse.urlsplit(url)
        if parsed.scheme in ("data", "blob", "about", "chrome", "devtools"):
            return True
        host = parsed.hostname or ""
        return host in self.LOOPBACK or host.startswith("127.")

    def record(self, request) -> None:  # type: ignore[no-untyped-def]
        self.seen += 1
        if not self.local(request.url) and request.url not in self.requested:
            self.requested.append(request.url)

    def route(self, route, request) -> None:  # type: ignore[no-untyped-def]
        if self.local(request.url):
            route.continue_()
        else:
            route.abort("blockedbyclient")


class Shots:
    """Full-page screenshots into the test's folder (and $APE_SCREENSHOTS if set)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        extra = os.environ.get("APE_SCREENSHOTS")
        self.extra = Path(extra) if extra else None
        self.taken: list[Path] = []

    def take(self, page, name: str) -> None:  # type: ignore[no-untyped-def]
        settle(page)
        height = page.evaluate(
            "() => { const main = document.querySelector('[data-testid=\"stMain\"]');"
            " const blocks = main.querySelectorAll('[data-testid=\"stMainBlockContainer\"] > *');"
            " let bottom = 0; for (const b of blocks) {"
            " bottom = Math.max(bottom, b.getBoundingClientRect().bottom + main.scrollTop); }"
            " return bottom; }"
        )
        page.set_viewport_size({"width": WIDTH, "height": max(700, min(int(height) + 60, 4000))})
        page.evaluate("() => document.querySelector('[data-testid=\"stMain\"]').scrollTo(0, 0)")
        page.wait_for_timeout(600)  # let Plotly redraw at the new size
        path = self.folder / f"{name}.png"
        page.screenshot(path=str(path))
        page.set_viewport_size({"width": WIDTH, "height": 1000})
        self.taken.append(path)
        if self.extra is not None:
            self.extra.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, self.extra / path.name)


def settle(page) -> None:  # type: ignore[no-untyped-def]
    """Wait until the script has finished running and the charts have been drawn."""
    page.wait_for_selector(
        '[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=TIMEOUT_MS
    )
    page.wait_for_function(
        "() => [...document.querySelectorAll('.js-plotly-plot')]"
        ".every(p => p.querySelector('.main-svg'))",
        timeout=TIMEOUT_MS,
    )
