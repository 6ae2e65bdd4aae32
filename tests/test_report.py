"""`ape report`: one self-contained HTML file of a stored simulation or a package: headline
results, charts, summary statistics, protocol, audit trail and checks, with nothing to
fetch and every text escaped. (Opened in a real browser, offline: tests/app.)"""

from __future__ import annotations

import html
import re
from pathlib import Path

import pytest

from apesim import analysis, api
from apesim.cli import main
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package
from apesim.package import format as fmt
from apesim.package.reader import STAGES
from apesim.report import CSP
from apesim.workspace import Workspace
from tests.package.corpus import edited

NAME = 'Trial <script>alert("x")</script> & co'


@pytest.fixture
def simulation(tmp_path: Path) -> tuple[Workspace, api.SimulationRecord]:
    ws = Workspace(tmp_path / "ws")
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(300, 2.0, 3), name=NAME
    )
    return ws, record


def _headline(page: str) -> dict[str, str]:
    found = re.findall(r'data-stat="([^"]+)">.*?<div class="value">([^<]*)</div>', page)
    return {key: html.unescape(value) for key, value in found}


def test_a_simulations_report_holds_everything_and_fetches_nothing(
    simulation: tuple[Workspace, api.SimulationRecord], tmp_path: Path
) -> None:
    ws, record = simulation
    written = api.write_report(record.sim_id, tmp_path / "report", ws=ws)
    assert written == tmp_path / "report.html"
    page = written.read_text(encoding="utf-8")
    summary = api.load_simulation(ws, record.sim_id).summary
    assert _headline(page) == {
        key: api.STATISTICS[key].shown(summary) for key, _ in analysis.HEADLINE_STATISTICS
    }
    assert f'content="{CSP}"' in page and "default-src 'none'" in CSP
    assert page.count("Plotly.newPlot") == 8, "every chart of the Overview"
    assert not re.search(r"<(script|img|link|iframe)[^>]+(src|href)=", page), "nothing to fetch"
    for heading in ("Summary statistics", "Protocol", "Audit trail", "Checks"):
        assert f"<h2>{heading}</h2>" in page
    assert page.count('class="passed"') == len(STAGES) + 1 and 'class="failed"' not in page
    assert "max_interval_days: 112" in page, "the protocol as run"
    assert html.escape(NAME) in page and NAME not in page, "text escaped"
    assert "exported" not in [e.action for e in api.audit_trail(ws, record.sim_id).events]


def test_a_packages_report_is_made_without_importing(
    simulation: tuple[Workspace, api.SimulationRecord], tmp_path: Path
) -> None:
    ws, record = simulation
    package = export_package(ws, record.sim_id, tmp_path / "p.zip").path
    assert package is not None
    empty = Workspace(tmp_path / "empty")
    page = api.write_report(package, tmp_path / "r.html", ws=empty).read_text(encoding="utf-8")
    assert f"Package p.zip (APE {fmt.PACKAGE_VERSION}, SHA-256" in page
    assert page.count('class="passed"') == len(STAGES) and page.count("Plotly.newPlot") == 8
    assert empty.list() == []


def test_an_invalid_packages_report_shows_the_failed_check_and_no_figures(
    simulation: tuple[Workspace, api.SimulationRecord], tmp_path: Path
) -> None:
    ws, record = simulation
    good = export_package(ws, record.sim_id, tmp_path / "p.zip").path
    assert good is not None
    bad = tmp_path / "bad.zip"
    bad.write_bytes(edited(fmt.SUMMARY, lambda d: d.replace(b"300", b"301", 1))(good.read_bytes()))
    page = api.write_report(bad, tmp_path / "r.html").read_text(encoding="utf-8")
    assert 'class="failed"' in page and "differs from the statistics recomputed" in page
    assert "Plotly.newPlot" not in page and "did not pass every check" in page
    assert "Headline results" not in page, "nothing of an invalid package is shown as data"


def test_cli_report(
    simulation: tuple[Workspace, api.SimulationRecord],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    ws, record = simulation
    with pytest.raises(SystemExit) as done:
        main(["report", record.sim_id, "-o", str(tmp_path / "r.html"), "-w", str(ws.root)])
    assert done.value.code == 0 and (tmp_path / "r.html").is_file()
    with pytest.raises(SystemExit) as done:
        main(["report", "no-such-sim", "-o", str(tmp_path / "x.html"), "-w", str(ws.root)])
    err = capsys.readouterr().err
    assert done.value.code == 2 and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "x.html").exists()


def test_cli_report_of_a_missing_package_names_it_and_creates_no_workspace(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("APE_WORKSPACE", str(tmp_path / "ws"))
    with pytest.raises(SystemExit) as done:
        main(["report", str(tmp_path / "gone.zip"), "-o", str(tmp_path / "r.html")])
    assert done.value.code == 2
    assert "gone.zip: no such package file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_signed_packages_report_and_view_give_the_signature_verdict(
    simulation: tuple[Workspace, api.SimulationRecord], tmp_path: Path
) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apesim.package.signature import SigningKey, key_id
    from apesim.package.view import PackageView

    ws, record = simulation
    alice = SigningKey("alice", Ed25519PrivateKey.from_private_bytes(bytes([1]) * 32))
    trust = {key_id(alice.private.public_key()): "Alice (trial lead)"}
    package = export_package(ws, record.sim_id, tmp_path / "signed.zip", sign=[alice]).path
    assert package is not None

    trusted = api.write_report(package, tmp_path / "t.html", trust=trust).read_text("utf-8")
    assert "Signatures: signed and trusted: Alice (trial lead) (trusted)" in trusted
    unknown = api.write_report(package, tmp_path / "u.html").read_text("utf-8")
    assert "Signatures: signed by an unknown key" in unknown
    view = PackageView.open(package, trust=trust)
    assert view.report.verdict is not None and view.report.verdict.trusted
