"""Text from a package shows as written on every page: a simulation's name, its creator and
its protocol's name are never Markdown (no remote image, link, formatting) nor chart HTML."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apesim import api
from apesim.package import export_package, import_package
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import (
    COMPARE,
    OVERVIEW,
    PROTOCOLS,
    RUN,
    OpenPage,
    button,
    charts,
    manage,
    open_tab,
    rendered,
    run_small,
    visible,
)

NAME = '![x](http://evil/x.png) [link](http://evil) **bold** <a href="http://evil">a</a>'
CREATOR = "**mallory** ![i](http://evil/i.png) www.evil.example :red[red] $x$"
PROTOCOL = "[Aflibercept](http://evil) _PRN_ `code`"


def _markdown_bodies(at: AppTest) -> list[str]:
    """Every Markdown body the page sends: text elements and every cell of every st.table."""
    bodies: list[str] = []
    for kind in ("title", "header", "subheader", "markdown", "caption"):
        bodies += [str(e.value) for e in getattr(at, kind)]
    for kind in ("info", "success", "warning", "error"):
        bodies += [str(e.value) for e in getattr(at, kind)]
    for table in at.table:
        frame = table.value
        bodies += [str(v) for v in frame.to_numpy().ravel() if isinstance(v, str)]
        bodies += [str(v) for v in (*frame.index, *frame.columns)]
    return bodies


def assert_literal(at: AppTest, *expected: str) -> None:
    """No page element renders an image or a link, and each expected text shows as written."""
    bodies = _markdown_bodies(at)
    for body in bodies:
        html = rendered(body)
        assert "<img" not in html and "<a " not in html, f"rendered as markup: {body!r}"
    seen = "\n".join(visible(body) for body in bodies)
    for text in expected:
        assert text in seen, f"{text!r} is not shown as written"


@pytest.fixture
def hostile(ws: Workspace, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> SimulationRecord:
    """A package from a stranger whose name, creator and protocol name are Markdown,
    imported into the app's workspace."""
    text = shipped_protocols()["v1_prn_monthly"]
    old = f"name: {api.get_protocol('v1_prn_monthly').protocol.name}"
    protocol = tmp_path / "theirs.yaml"
    protocol.write_text(text.replace(old, f"name: {json.dumps(PROTOCOL)}", 1), encoding="utf-8")
    other = Workspace(tmp_path / "stranger")
    record = run_small(other, name=NAME, protocol=str(protocol))
    monkeypatch.setenv("APE_USER", CREATOR)
    buffer = io.BytesIO()
    export_package(other, record.sim_id, buffer)
    monkeypatch.delenv("APE_USER")
    return import_package(ws, buffer.getvalue(), source_name="[file](http://evil).zip")


def test_the_overview_shows_package_text_as_written(
    open_page: OpenPage, hostile: SimulationRecord
) -> None:
    at = open_page(OVERVIEW, sim_id=hostile.sim_id)
    assert visible(at.title[0].value) == NAME
    assert_literal(at, NAME, CREATOR, PROTOCOL, "[file](http://evil).zip")
    at = open_tab(at, "Audit Trail")
    assert not at.exception, at.exception
    assert_literal(at, CREATOR, "[file](http://evil).zip")


def test_home_run_and_compare_show_package_text_as_written(
    open_page: OpenPage, ws: Workspace, hostile: SimulationRecord
) -> None:
    at = open_page(sim_id=hostile.sim_id)
    assert_literal(at, NAME, CREATOR)
    at.switch_page(RUN).run()
    assert not at.exception, at.exception
    assert_literal(at, NAME, f"Its protocol, {PROTOCOL} 1.0, is not among your protocols")
    button(at, "Add its protocol to my protocols").click().run()
    assert not at.exception, at.exception
    assert_literal(at, f"Added {PROTOCOL} 1.0 as")
    run_small(ws, name="mine")
    at.switch_page(COMPARE).run()
    assert not at.exception, at.exception
    assert_literal(at, NAME, PROTOCOL)
    [chart] = charts(at)
    names = [t["name"] for t in json.loads(chart.proto.spec)["data"]]
    assert not any("<a " in name for name in names), names  # Plotly would draw a link
    assert any("&lt;a href=" in name for name in names)


def test_the_import_preview_shows_package_text_as_written(
    open_page: OpenPage, ws: Workspace, hostile: SimulationRecord, tmp_path: Path
) -> None:
    buffer = io.BytesIO()
    export_package(ws, hostile.sim_id, buffer)  # the same text, in a package to preview
    at = open_page(PROTOCOLS)
    manage(at, "Import Simulation")
    at.file_uploader(key="package_upload").upload("**x**.zip", buffer.getvalue()).run()
    assert not at.exception, at.exception
    assert_literal(at, NAME, PROTOCOL, "**x**.zip")


def test_an_error_quoting_package_text_shows_it_as_written(
    open_page: OpenPage, ws: Workspace, hostile: SimulationRecord
) -> None:
    buffer = io.BytesIO()
    export_package(ws, hostile.sim_id, buffer)
    at = open_page(PROTOCOLS)
    manage(at, "Import Simulation")
    at.file_uploader(key="package_upload").upload("again.zip", buffer.getvalue()).run()
    assert not at.exception, at.exception
    assert at.warning, "the duplicate is reported in the preview, naming it"
    assert_literal(at, NAME)


def test_a_protocols_description_and_yaml_are_shown_as_written(
    open_page: OpenPage, ws: Workspace
) -> None:
    """A workspace protocol (one added from a package, say) with Markdown and a right-to-left
    override in its description: shown as text, the override visibly escaped."""
    text = shipped_protocols()["v1_prn_monthly"]
    old = f"name: {api.get_protocol('v1_prn_monthly').protocol.name}"
    description = "![x](http://evil/x.png) **bold** txt\u202eexe.yaml"
    block = text[text.index("description: >") : text.index("regimen:")]
    edited = text.replace(old, "name: Theirs", 1).replace(
        block, f"description: {json.dumps(description, ensure_ascii=False)}\n", 1
    )
    assert "\u202e" in edited  # raw in the YAML text too
    (ws.protocols_dir / "theirs.yaml").write_text(edited, encoding="utf-8")
    assert api.get_protocol("theirs", ws).protocol.description == description
    at = open_page(PROTOCOLS)
    at.selectbox(key="view_protocol").set_value("theirs").run()
    at.toggle(key="show_yaml").set_value(True).run()
    assert not at.exception, at.exception
    [shown] = [t.value for t in at.text]  # st.text: never Markdown
    assert shown == "![x](http://evil/x.png) **bold** txt\\u202eexe.yaml"
    [yaml] = [c.value for c in at.code]
    assert "\u202e" not in yaml and "txt\\u202eexe.yaml" in yaml
