"""Analysis Overview: every tab, for a simulation run here and for an imported one."""

from __future__ import annotations

import json

from apesim import analysis, api
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.app.apptools import (
    OVERVIEW,
    OpenPage,
    charts,
    open_tab,
    run_small,
    texts,
    visible,
    visible_frame,
)


def test_empty_workspace_says_so(open_page: OpenPage) -> None:
    at = open_page(OVERVIEW)
    assert "no simulations in this workspace yet" in texts(at)
    assert not charts(at)


def test_without_a_choice_it_shows_the_latest(open_page: OpenPage, ws: Workspace,
                                              ran: SimulationRecord) -> None:  # fmt: skip
    at = open_page(OVERVIEW)
    assert at.session_state["sim_id"] == ran.sim_id
    assert visible(at.title[0].value) == ran.name


def test_vision_outcomes(open_page: OpenPage, ws: Workspace, ran: SimulationRecord) -> None:
    at = open_page(OVERVIEW, sim_id=ran.sim_id)
    summary = api.load_simulation(ws, ran.sim_id).summary
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Vision change at end"] == (
        analysis.format_value(summary["vision_change"]["end"]["mean"], "+1f") + " letters"
    )
    assert metrics["Discontinued"] == analysis.format_value(
        summary["discontinuation"]["rate"], "pct"
    )
    table = visible_frame(at.table[0].value)
    assert table.loc["Patients", "value"] == f"{ran.patients:,}"
    titles = [c.proto.spec for c in charts(at)]
    assert len(titles) == 3
    assert "Mean vision over time" in titles[0] and "ETDRS letters" in titles[0]
    assert "Months since enrolment" in titles[0]


def test_treatment_patterns(open_page: OpenPage, ran: SimulationRecord) -> None:
    at = open_tab(open_page(OVERVIEW, sim_id=ran.sim_id), "Treatment patterns")
    specs = [c.proto.spec for c in charts(at)]
    assert len(specs) == 5
    joined = "\n".join(specs)
    for title in ("Injections per patient in each year", "Time between injections",
                  "Visits per patient in each year", "Discontinuations by reason"):  # fmt: skip
        assert title in joined


def test_patients(open_page: OpenPage, ws: Workspace, ran: SimulationRecord) -> None:
    at = open_tab(open_page(OVERVIEW, sim_id=ran.sim_id), "Patients")
    at.number_input(key="patient_id").set_value(3).run()
    assert not at.exception
    sim = api.load_simulation(ws, ran.sim_id)
    record = analysis.patient_record(sim.patients, 3)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Baseline vision"] == f"{record['baseline_vision']} letters"
    assert metrics["Injections / visits"] == f"{record['injections']} / {record['visits']}"
    [chart] = charts(at)
    assert "Patient 3: vision, injections and disease state" in chart.proto.spec
    assert len(at.dataframe[0].value) == record["visits"]


def test_audit_trail_and_package_download(
    open_page: OpenPage, ws: Workspace, ran: SimulationRecord
) -> None:
    events = api.load_simulation(ws, ran.sim_id).audit_events()
    before = [e.action for e in events]
    at = open_tab(open_page(OVERVIEW, sim_id=ran.sim_id), "Audit Trail")
    assert at.dataframe[0].value["action"].tolist() == before
    assert "simulation_run" in before
    assert "Estimated size" in texts(at)
    # one click: the download button is there at once, and nothing is made before the click
    assert not [b for b in at.button if b.label == "Prepare package"]
    [download] = at.get("download_button")
    assert download.proto.label == "Download Simulation Package"
    assert download.proto.type == "primary"
    assert [e.action for e in api.load_simulation(ws, ran.sim_id).audit_events()] == before


def test_audit_trail_shows_whole_times_and_details(
    open_page: OpenPage, ws: Workspace, imported: SimulationRecord
) -> None:
    """Times in one form, to the second (events record seconds or microseconds), and every
    event's details whole, in an expander, with the exact time and the chain's hash."""
    events = api.load_simulation(ws, imported.sim_id).audit_events()
    assert any("." in e.time for e in events) and any("." not in e.time for e in events)
    at = open_tab(open_page(OVERVIEW, sim_id=imported.sim_id), "Audit Trail")
    table = at.dataframe[0].value
    assert table["time (UTC)"].tolist() == [e.time[:19].replace("T", " ") for e in events]
    assert "details" not in table
    labels = [visible(e.label) for e in at.expander if "UTC ·" in e.label]
    assert labels == [
        f"Event {n} · {e.action} · {e.time[:19].replace('T', ' ')} UTC · {e.user}"
        for n, e in enumerate(events, start=1)
    ]
    shown = [c.value for c in at.code]
    assert len(shown) == len(events)
    for event, text in zip(events, shown, strict=True):
        assert json.loads(text) == event.details  # whole: every key, every value
    run = next(e for e in events if e.action == "simulation_run")
    assert run.details["protocol_fingerprint"] in shown[events.index(run)]
    assert all(e.prev_sha256 in texts(at) for e in events)


def test_imported_simulation(open_page: OpenPage, imported: SimulationRecord) -> None:
    at = open_page(OVERVIEW, sim_id=imported.sim_id)
    assert f"Viewing imported simulation from {imported.created_utc[:10]}" in texts(at)
    assert visible(at.title[0].value) == imported.name
    at = open_tab(at, "Audit Trail")
    shown = texts(at)
    assert "Imported" in shown and "colleague.zip" in shown
    actions = at.dataframe[0].value["action"].tolist()
    assert "simulation_run" in actions and actions[-1] == "imported"
    # an imported simulation can be shared on: its package keeps its whole trail
    assert at.get("download_button")


def test_the_audit_trail_tab_reproduces_a_simulation_without_changing_it(
    open_page: OpenPage, ws: Workspace, imported: SimulationRecord
) -> None:
    mine = run_small(ws, name="calendar", protocol="aflibercept_treat_and_extend")
    for record in (mine, imported):
        before = [e.action for e in api.load_simulation(ws, record.sim_id).audit_events()]
        at = open_tab(open_page(OVERVIEW, sim_id=record.sim_id), "Audit Trail")
        [button] = [b for b in at.button if b.label == "Re-simulate and compare"]
        at = button.click().run()
        assert any("Identical: 150 patients" in s.value for s in at.success), record.name
        after = [e.action for e in api.load_simulation(ws, record.sim_id).audit_events()]
        assert after == before and len(ws.list()) == 2


def test_vision_outcomes_show_all_patients_and_those_on_treatment(
    open_page: OpenPage, ws: Workspace
) -> None:
    mine = run_small(ws, name="calendar", protocol="aflibercept_treat_and_extend")
    at = open_page(OVERVIEW, sim_id=mine.sim_id)
    assert "**All patients and patients on treatment**" in [m.value for m in at.markdown]
    [frame] = [d.value for d in at.dataframe if "on treatment" in d.value.columns]
    assert frame["at"].tolist() == ["1 year", "2 years"]
    assert (frame["on treatment"] <= frame["all patients"]).all()
