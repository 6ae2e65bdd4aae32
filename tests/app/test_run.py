"""Run Simulation: run with a progress bar and land on the overview; disabled (and why)
while an imported simulation is being viewed."""

from __future__ import annotations

import io
from pathlib import Path

from apesim import api
from apesim.package import export_package, import_package
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import RUN, OpenPage, button, run_small, texts, visible


def test_runs_a_simulation_and_opens_its_overview(open_page: OpenPage, ws: Workspace) -> None:
    at = open_page(RUN)
    assert not button(at, "Run simulation").disabled
    at.selectbox(key="run_protocol").set_value("v1_prn_monthly")
    at.number_input(key="run_patients").set_value(120)
    at.number_input(key="run_years").set_value(1.5)
    at.number_input(key="run_seed").set_value(5)
    at.text_input(key="run_name").set_value("my PRN run")
    button(at, "Run simulation").click().run()
    assert not at.exception, at.exception
    [record] = ws.list()
    assert (record.name, record.patients, record.years, record.seed) == ("my PRN run", 120, 1.5, 5)
    assert record.protocol_name == api.get_protocol("v1_prn_monthly").protocol.name
    assert not record.imported
    assert at.session_state["sim_id"] == record.sim_id
    assert visible(at.title[0].value) == "my PRN run"  # the Analysis Overview


def test_run_is_disabled_while_viewing_an_imported_simulation(
    open_page: OpenPage, ws: Workspace, imported: SimulationRecord
) -> None:
    at = open_page(RUN, sim_id=imported.sim_id)
    run = button(at, "Run simulation")
    assert run.disabled
    assert "imported simulations are read-only" in run.help
    shown = texts(at)
    assert "Run is disabled" in shown and "imported" in shown
    assert f"Viewing imported simulation from {imported.created_utc[:10]}" in shown
    # the disabled form shows the imported simulation's settings, and none can be edited
    fields = {w.label: w for w in [*at.number_input, *at.text_input, *at.selectbox]}
    assert fields["Patients"].value == imported.patients
    assert fields["Years"].value == imported.years
    assert fields["Seed"].value == imported.seed
    assert fields["Name"].value == imported.name
    assert fields["Protocol"].value == "v1_prn_monthly"
    assert all(fields[f].disabled for f in ("Protocol", "Patients", "Years", "Seed", "Name"))
    # its protocol is a shipped one: no need to add it
    assert not [b for b in at.button if b.label == "Add its protocol to my protocols"]
    # starting a new simulation enables the button, with the imported settings copied
    button(at, "Start a new simulation").click().run()
    assert not at.exception
    assert not button(at, "Run simulation").disabled
    assert "Viewing imported simulation" not in texts(at)
    assert at.selectbox(key="run_protocol").value == "v1_prn_monthly"
    assert at.number_input(key="run_patients").value == imported.patients
    assert at.number_input(key="run_years").value == imported.years
    assert at.number_input(key="run_seed").value == imported.seed
    button(at, "Run simulation").click().run()
    assert not at.exception
    runs = [r for r in ws.list() if not r.imported]
    assert len(runs) == 1
    assert runs[0].protocol_fingerprint == imported.protocol_fingerprint
    assert visible(at.title[0].value) == runs[0].name


def test_an_imported_protocol_can_be_added_to_run_it(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    """An imported simulation whose protocol the workspace does not have."""
    custom = tmp_path / "custom.yaml"
    text = shipped_protocols()["v1_prn_monthly"]
    name = api.get_protocol("v1_prn_monthly").protocol.name
    custom.write_text(text.replace(f"name: {name}", "name: Custom PRN", 1), encoding="utf-8")
    other = Workspace(tmp_path / "other")
    record = run_small(other, protocol=str(custom))
    buffer = io.BytesIO()
    export_package(other, record.sim_id, buffer)
    imported = import_package(ws, buffer.getvalue(), source_name="custom.zip")

    at = open_page(RUN, sim_id=imported.sim_id)
    assert "Custom PRN 1.0, is not among your protocols" in texts(at)
    [shown] = [s for s in at.selectbox if s.label == "Protocol"]
    assert shown.value == "Custom PRN 1.0" and shown.disabled
    button(at, "Add its protocol to my protocols").click().run()
    assert not at.exception, at.exception
    assert "Added Custom PRN" in texts(at)
    [added] = [p for p in api.list_protocols(ws) if p.source == "workspace"]
    assert added.fingerprint == imported.protocol_fingerprint
    button(at, "Start a new simulation").click().run()
    assert at.selectbox(key="run_protocol").value == added.key


def test_run_is_enabled_while_viewing_a_simulation_run_here(
    open_page: OpenPage, ran: SimulationRecord
) -> None:
    at = open_page(RUN, sim_id=ran.sim_id)
    assert not button(at, "Run simulation").disabled
    assert "Run is disabled" not in texts(at)


def test_adding_an_imported_protocol_never_overwrites_one_of_the_users(
    open_page: OpenPage, ws: Workspace, tmp_path: Path
) -> None:
    """A package whose protocol has the name of one of the user's protocols: the user's
    file is kept byte for byte, the package's protocol gets a fresh key, and the app says so."""
    text = shipped_protocols()["v1_prn_monthly"]
    name = api.get_protocol("v1_prn_monthly").protocol.name
    mine = text.replace(f"name: {name}", "name: Custom PRN", 1).replace(
        "description: >", "description: >\n  Mine, tuned by hand.", 1
    )
    (ws.protocols_dir / "Custom_PRN.yaml").write_text(mine, encoding="utf-8")
    theirs = tmp_path / "custom.yaml"
    theirs.write_text(text.replace(f"name: {name}", "name: Custom PRN", 1), encoding="utf-8")
    other = Workspace(tmp_path / "other")
    record = run_small(other, protocol=str(theirs))
    buffer = io.BytesIO()
    export_package(other, record.sim_id, buffer)
    imported = import_package(ws, buffer.getvalue(), source_name="custom.zip")

    at = open_page(RUN, sim_id=imported.sim_id)
    button(at, "Add its protocol to my protocols").click().run()
    assert not at.exception, at.exception
    assert (ws.protocols_dir / "Custom_PRN.yaml").read_text(encoding="utf-8") == mine
    added = api.get_protocol("Custom_PRN_2", ws)
    assert added.fingerprint == imported.protocol_fingerprint
    said = texts(at)
    assert "Added Custom PRN 1.0 as Custom_PRN_2" in said
    assert "already saved as Custom_PRN; it was kept" in said
