"""The package viewer and the HTML report in a real browser (Playwright + Debian's chromium).

`ape view PACKAGE` is started as a user starts it, with no workspace anywhere (its user data
folder is empty before and after): the browser shows the package's Analysis Overview with
its headline numbers, every tab and its checks, and asks nothing of any other machine. The
report written by `ape report PACKAGE` is opened from disk with the browser offline: its
numbers and all eight charts show, and it makes no request but for itself.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from apesim import analysis, api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package
from apesim.package.reader import STAGES
from apesim.workspace import Workspace
from tests.app.browser import (
    MARKS,
    TIMEOUT_MS,
    WIDTH,
    OffMachine,
    Shots,
    free_port,
    settle,
    wait_healthy,
)
from tests.app.test_browser import _metrics

if TYPE_CHECKING:
    from playwright.sync_api import Browser, Page

APE = str(Path(sys.executable).with_name("ape"))

pytestmark = MARKS


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, api.Summary]:
    """A package of 1,500 patients x 3 years, made elsewhere, and its summary."""
    ws = Workspace(tmp_path_factory.mktemp("sender"))
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(1500, 3.0, 8), name="Shared"
    )
    package = export_package(ws, record.sim_id, tmp_path_factory.mktemp("mail") / "shared.zip")
    assert package.path is not None
    return package.path, api.load_simulation(ws, record.sim_id).summary


def _expected(summary: api.Summary) -> dict[str, str]:
    return {
        title: api.STATISTICS[key].shown(summary) for key, title in analysis.HEADLINE_STATISTICS
    }


def _environment(home: Path) -> dict[str, str]:
    """A user with no workspace: nothing set, an empty home and data folder."""
    env = {k: v for k, v in os.environ.items() if k != "APE_WORKSPACE"}
    env.update(HOME=str(home), XDG_DATA_HOME=str(home / "data"), TMPDIR=str(home / "tmp"))
    (home / "tmp").mkdir(parents=True)
    return env


def test_view_and_report_in_a_browser(
    shared: tuple[Path, api.Summary],
    chromium: Browser,
    browser_page: Page,
    off_machine: OffMachine,
    tmp_path: Path,
) -> None:
    package, summary = shared
    home = tmp_path / "home"
    env = _environment(home)
    port = free_port()
    log = (tmp_path / "view.log").open("wb")
    viewer = subprocess.Popen(
        [APE, "view", str(package), "--port", str(port)], env=env, stdout=log, stderr=log
    )
    report = tmp_path / "report.html"
    done = subprocess.run(
        [APE, "report", str(package), "-o", str(report)], env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    shots = Shots(tmp_path / "screenshots")
    try:
        url = f"http://127.0.0.1:{port}"
        wait_healthy(url, viewer, "ape view", timeout=90)
        page = browser_page

        # -- The viewer: the package's own Overview, read-only, and its checks.
        page.goto(url)
        assert _metrics(page) == _expected(summary)
        page.get_by_text("Viewing a package, read-only").wait_for()
        page.get_by_text("Every check passed").wait_for()
        page.get_by_text("unsigned: no signature in the package").wait_for()
        shots.take(page, "10_view_vision")
        assert page.locator(".js-plotly-plot").count() == 3
        page.get_by_role("tab", name="Treatment patterns").click()
        page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 5")
        settle(page)
        page.get_by_role("tab", name="Patients").click()
        page.get_by_text("Outcome:").wait_for()
        page.get_by_role("tab", name="Checks").click()
        table = page.get_by_test_id("stTable").last
        table.get_by_text("Tables, metadata and summary statistics agree").wait_for()
        assert table.get_by_text("✓ passed").count() == len(STAGES)
        shots.take(page, "11_view_checks")
        assert off_machine.requested == [], off_machine.requested

        # -- The report, from disk, with the network off.
        offline = chromium.new_context(viewport={"width": WIDTH, "height": 1000})
        offline.set_offline(True)
        requests: list[str] = []
        offline.on("request", lambda request: requests.append(request.url))
        page = offline.new_page()
        page.goto(report.as_uri())
        page.wait_for_function(
            "() => document.querySelectorAll('.js-plotly-plot .main-svg').length >= 8",
            timeout=TIMEOUT_MS,
        )
        shown = {
            page.locator(f'[data-stat="{key}"] .label').inner_text(): page.locator(
                f'[data-stat="{key}"] .value'
            ).inner_text()
            for key, _ in analysis.HEADLINE_STATISTICS
        }
        assert shown == _expected(summary)
        assert page.locator("td.passed").count() == len(STAGES)
        assert page.locator("h2", has_text="Audit trail").count() == 1
        page.screenshot(path=str(tmp_path / "screenshots" / "12_report.png"))
        assert requests == [report.as_uri()], requests
    finally:
        viewer.terminate()
        try:
            viewer.wait(timeout=10)
        except subprocess.TimeoutExpired:
            viewer.kill()
            viewer.wait()
        log.close()
    assert not (home / "data").exists(), "no workspace was created"
    assert list((home / "tmp").iterdir()) == [], "nothing was extracted"
