"""Protocol Manager: protocols as tables and YAML, adding one, and Manage → Import
Simulation (preview with every check, confirm, land on the overview; invalid files and
duplicates import nothing)."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from apesim import api
from apesim.errors import ProtocolError
from apesim.protocol import parse_protocol
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import (
    OVERVIEW,
    PROTOCOLS,
    OpenPage,
    button,
    charts,
    manage,
    open_tab,
    texts,
    visible,
    visible_frame,
)
from tests.conftest import SHARED


def test_lists_and_shows_protocols(open_page: OpenPage) -> None:
    at = open_page(PROTOCOLS)
    listed = at.dataframe[0].value
    assert sorted(listed["key"]) == sorted(shipped_protocols())
    assert set(listed["source"]) == {"shipped"}
    headings = [m.value for m in at.markdown]
    assert "**Disease and vision (calendar time)**" in headings  # a model 2.0 protocol
    assert len(at.table) == 4
    assert not at.code
    at.toggle(key="show_yaml").set_value(True).run()
    shown = at.selectbox(key="view_protocol").value
    assert at.code[0].value == shipped_protocols()[shown].rstrip("\n")
    at.selectbox(key="view_protocol").set_value("v1_prn_monthly").run()
    assert at.code[0].value == shipped_protocols()["v1_prn_monthly"].rstrip("\n")
    headings = [m.value for m in at.markdown]
    assert "**Disease transitions per visit (probability)**" in headings  # model 1.0
    assert len(at.table) == 6
    regimen = visible_frame(at.table[0].value)["value"]
    assert regimen["Regimen"] == "PRN (as needed)"


def _upload_protocol(at: AppTest, name: str, text: str) -> AppTest:
    at.file_uploader[0].upload(name, text.encode("utf-8"), "application/x-yaml").run()
    assert not at.exception, at.exception
    return at


def test_adds_a_valid_protocol(open_page: OpenPage, ws: Workspace) -> None:
    text = shipped_protocols()["v1_prn_monthly"].replace(
        f"name: {api.get_protocol('v1_prn_monthly').protocol.name}", "name: My PRN variant", 1
    )
    at = _upload_protocol(open_page(PROTOCOLS), "my_prn.yaml", text)
    assert "my_prn.yaml is valid: My PRN variant" in texts(at)
    button(at, "Add to my protocols").click().run()
    assert not at.exception
    assert (ws.protocols_dir / "my_prn.yaml").read_text(encoding="utf-8") == text
    assert "Added My PRN variant" in texts(at)
    listed = at.dataframe[0].value
    assert listed[listed["source"] == "workspace"]["key"].tolist() == ["my_prn"]


def test_shows_protocol_errors_as_the_cli_words_them(open_page: OpenPage, ws: Workspace) -> None:
    text = shipped_protocols()["v1_prn_monthly"].replace(
        "regimen:\n  type: prn", "regimen:\n  type: x"
    )
    try:
        parse_protocol(text, "broken.yaml")
    except ProtocolError as exc:
        expected = str(exc)
    at = _upload_protocol(open_page(PROTOCOLS), "broken.yaml", text)
    assert [visible(e.value) for e in at.error] == [expected]
    assert expected.startswith("broken.yaml: regimen.type: unknown regimen 'x'")
    assert not [b for b in at.button if b.label == "Add to my protocols"]
    assert list(ws.protocols_dir.iterdir()) == []


def test_refuses_a_protocol_that_is_not_yaml(open_page: OpenPage, ws: Workspace) -> None:
    at = open_page(PROTOCOLS)
    at.file_uploader[0].upload("bad.yaml", b"\xff\xfe\x00", "application/x-yaml").run()
    assert [visible(e.value) for e in at.error] == ["bad.yaml: protocol file is not UTF-8 text"]
    at = _upload_protocol(open_page(PROTOCOLS), "list.yaml", "- just\n- a list\n")
    assert [visible(e.value) for e in at.error] == [
        "list.yaml: a protocol must be a YAML mapping of fields"
    ]


def test_the_manage_menu_opens_in_the_pages_flow(open_page: OpenPage) -> None:
    """Closed, it shows only its button; open, its choices sit under the title (in the page,
    not over the protocol table); a choice closes it."""
    at = open_page(PROTOCOLS)
    assert not [b for b in at.button if b.label in ("Import Simulation", "Protocols")]
    assert not at.get("popover")
    button(at, "Manage").click().run()
    assert [b.label for b in at.button if b.label in ("Import Simulation", "Protocols")] == [
        "Import Simulation",
        "Protocols",
    ]
    button(at, "Import Simulation").click().run()
    assert "Import Simulation" in [h.value for h in at.header]
    assert not [b for b in at.button if b.label == "Protocols"]  # closed again
    manage(at, "Protocols")
    assert at.dataframe  # the protocols again


def _open_import(open_page: OpenPage) -> AppTest:
    at = open_page(PROTOCOLS)
    manage(at, "Import Simulation")
    assert not at.exception
    assert "Import Simulation" in [h.value for h in at.header]
    return at


def test_imports_a_package_after_a_preview(
    open_page: OpenPage, ws: Workspace, package_bytes: bytes
) -> None:
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload(
        "colleague.zip", package_bytes, "application/zip"
    ).run()
    assert not at.exception, at.exception
    assert ws.list() == []  # nothing is imported before the confirm button
    assert "is a valid" in texts(at)
    # one file: the uploader gives way to the file's name and size, in the app's units
    assert not at.file_uploader
    assert f"colleague.zip · {len(package_bytes) / 1000:.1f} kB" in texts(at)
    facts = visible_frame(at.table[0].value)["value"]
    assert facts["Patients"] == "150"
    assert "from a colleague" in facts["Simulation"]
    assert facts["Created by"] == "tester@example.org"
    checks = visible_frame(at.table[1].value)
    assert len(checks) >= 5
    assert set(checks["result"]) == {"✓ passed"}
    assert "details" not in checks
    summary = visible_frame(at.table[2].value)
    assert summary.loc["Patients", "value"] == "150"

    button(at, "Import this simulation").click().run()
    assert not at.exception, at.exception
    [record] = ws.list()
    assert record.imported and record.source_file == "colleague.zip"
    # landed on the Analysis Overview of the imported simulation, with the banner
    assert at.session_state["sim_id"] == record.sim_id
    assert visible(at.title[0].value) == "from a colleague"
    assert f"Viewing imported simulation from {record.created_utc[:10]}" in texts(at)


def test_an_invalid_package_shows_only_why_and_imports_nothing(
    open_page: OpenPage, ws: Workspace, package_bytes: bytes
) -> None:
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("notes.zip", b"not a zip at all").run()
    assert not at.exception, at.exception
    [error] = at.error
    assert visible(error.value).startswith("This file cannot be imported.")
    assert "notes.zip" in visible(error.value)
    assert visible(error.value).endswith("Nothing was imported.")
    assert not at.table  # no "What it is" table of "–", no checks that never ran
    assert [h.value for h in at.subheader] == []
    assert not [b for b in at.button if b.label == "Import this simulation"]
    assert ws.list() == []
    # another file can be chosen
    button(at, "Choose another file").click().run()
    assert not at.exception, at.exception
    assert not at.error
    at.file_uploader(key="package_upload_1").upload("good.zip", package_bytes).run()
    assert "good.zip is a valid" in texts(at)


def test_a_tampered_package_fails_its_checks(
    open_page: OpenPage, ws: Workspace, package_bytes: bytes
) -> None:
    """A package whose summary was edited after export: the checksum check fails, and the
    error, alone, names the file."""
    source = zipfile.ZipFile(io.BytesIO(package_bytes))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            data = source.read(info)
            if info.filename == "summary_stats.json":
                data = data.replace(b'"deaths": ', b'"deaths": 1')
            target.writestr(info, data)
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("edited.zip", out.getvalue()).run()
    assert not at.exception, at.exception
    [error] = at.error
    assert "cannot be imported" in visible(error.value)
    assert "summary_stats.json" in visible(error.value)
    assert not at.table
    assert ws.list() == []


def test_importing_the_same_package_twice(
    open_page: OpenPage, ws: Workspace, imported: SimulationRecord, package_bytes: bytes
) -> None:
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("again.zip", package_bytes).run()
    assert not at.exception, at.exception
    # the preview says so, before any click, and offers no import
    [warning] = at.warning
    said = visible(warning.value)
    assert "already in this workspace" in said and imported.sim_id in said
    assert imported.name in said
    assert not [b for b in at.button if b.label == "Import this simulation"]
    assert len(ws.list()) == 1
    button(at, "Open the simulation already here").click().run()
    assert not at.exception
    assert at.session_state["sim_id"] == imported.sim_id
    assert visible(at.title[0].value) == imported.name


def test_importing_a_simulation_run_here_says_so_in_the_preview(
    open_page: OpenPage, ws: Workspace, ran: SimulationRecord
) -> None:
    buffer = io.BytesIO()
    api.export_package(ws, ran.sim_id, buffer)
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("mine.zip", buffer.getvalue()).run()
    [warning] = at.warning
    assert "already in this workspace" in visible(warning.value)
    assert "run here" in visible(warning.value)
    assert not [b for b in at.button if b.label == "Import this simulation"]


def test_imports_a_package_of_the_earlier_ape(open_page: OpenPage, ws: Workspace) -> None:
    """A package written by the earlier APE: previewed as such, imported, then every tab of
    its Analysis Overview works on the converted tables."""
    path = SHARED / "fixtures" / "ape-legacy" / "small_100p_2y_abs.zip"
    if not path.is_file():
        pytest.skip(f"{path} is absent: the earlier-APE samples come from ../shared/fixtures")
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload(path.name, path.read_bytes()).run()
    assert not at.exception, at.exception
    assert "is a valid earlier APE" in texts(at)
    assert visible_frame(at.table[0].value)["value"]["Patients"] == "100"
    button(at, "Import this simulation").click().run()
    assert not at.exception, at.exception
    [record] = ws.list()
    assert record.source_format and record.source_format.startswith("earlier APE")
    assert "Viewing imported simulation from" in texts(at)
    at.switch_page(OVERVIEW)  # AppTest reruns the page it was told to, not the one switched to
    for tab, count in (("Vision outcomes", 3), ("Treatment patterns", 5), ("Patients", 1)):
        assert len(charts(open_tab(at, tab))) == count
    actions = open_tab(at, "Audit Trail").dataframe[0].value["action"].tolist()
    assert actions[-1] == "imported"


def test_a_differential_package_on_a_base_here_previews_and_imports(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    """A differential package whose base this workspace holds: the preview rebuilds it on
    that base (every check passes) and the import installs the full simulation."""
    from apesim.engine.simulate import SimulationParameters
    from apesim.package import export_differential, export_package, import_package

    colleague = Workspace(tmp_path / "colleague")
    protocol = "aflibercept_treat_and_extend"
    base = api.run_simulation(colleague, protocol, SimulationParameters(200, 1.0, 4))
    base_package = tmp_path / "base.zip"
    export_package(colleague, base.sim_id, base_package)
    more = api.run_simulation(colleague, protocol, SimulationParameters(220, 1.0, 4))
    delta = io.BytesIO()
    made = export_differential(colleague, more.sim_id, delta, base.sim_id, max_share=1.0)
    assert made.differential
    import_package(ws, base_package)

    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload("delta.zip", delta.getvalue()).run()
    assert not at.exception, at.exception
    assert "delta.zip is a valid APE 1.1 differential simulation package." in texts(at)
    button(at, "Import this simulation").click().run()
    assert not at.exception, at.exception
    assert ws.get(more.sim_id).imported and ws.get(more.sim_id).patients == 220


def test_the_preview_offers_the_three_choices_and_imports_a_summary(
    open_page: OpenPage, ws: Workspace, package_bytes: bytes
) -> None:
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload(
        "colleague.zip", package_bytes, "application/zip"
    ).run()
    choice = at.radio(key="import_only")
    assert len(choice.options) == 3 and choice.value.startswith("The whole simulation")
    summary = next(o for o in choice.options if o.startswith("Summary only"))
    choice.set_value(summary).run()
    button(at, "Import this simulation").click().run()
    assert not at.exception, at.exception
    [record] = ws.list()
    assert record.summary_only
    # the overview says what it cannot show, and how to get it
    assert "Summary only" in texts(at) and not at.get("plotly_chart")


def test_the_preview_imports_the_protocol_only(
    open_page: OpenPage, ws: Workspace, package_bytes: bytes
) -> None:
    at = _open_import(open_page)
    at.file_uploader(key="package_upload").upload(
        "colleague.zip", package_bytes, "application/zip"
    ).run()
    choice = at.radio(key="import_only")
    choice.set_value(next(o for o in choice.options if o.startswith("Protocol only"))).run()
    button(at, "Import the protocol").click().run()
    assert not at.exception, at.exception
    assert ws.list() == []
    assert [p.source for p in api.list_protocols(ws)].count("workspace") == 1
    assert "Saved the protocol as" in texts(at)
