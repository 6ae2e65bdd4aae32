"""Run Simulation: choose a protocol and parameters, watch the progress, see the results."""

from __future__ import annotations

import streamlit as st

from apesim import api
from apesim.api import MAX_PATIENTS, MAX_YEARS, SimulationRecord
from apesim.app import common
from apesim.errors import ApeError
from apesim.text import printable

ws = common.setup("Run Simulation")
st.title("Run Simulation")

viewed = common.current(ws)
read_only = viewed is not None and viewed.imported
reason = (
    "The simulation being viewed was imported, and imported simulations are read-only: "
    "they are never re-run or overwritten. To run its protocol as a new simulation, "
    "click **Start a new simulation** first."
)

protocols = api.list_protocols(ws)


def start_new(record: SimulationRecord, protocol_key: str | None) -> None:
    """Stop viewing the imported simulation and copy its settings into the form."""
    st.session_state["run_patients"] = record.patients
    st.session_state["run_years"] = float(record.years)
    st.session_state["run_seed"] = record.seed
    if protocol_key is not None:
        st.session_state["run_protocol"] = protocol_key
    common.select(None)


keys = [p.key for p in protocols]
names = {p.key: printable(f"{p.name} {p.version} ({p.source})") for p in protocols}

note = st.session_state.pop("run_note", None)
if note:
    st.success(note)

if st.session_state.get("run_protocol") not in keys:
    st.session_state.pop("run_protocol", None)
for key, default in (("run_patients", 1_000), ("run_years", 2.0), ("run_seed", 42)):
    st.session_state.setdefault(key, default)

# The protocol of the simulation being viewed, among the user's (by fingerprint), if any.
match = (
    next((p.key for p in protocols if p.fingerprint == viewed.protocol_fingerprint), None)
    if viewed is not None
    else None
)


def show_settings(record: SimulationRecord) -> None:
    """The form's fields, disabled, holding the settings of the simulation being viewed
    (not the form's own values, which come back with Start a new simulation)."""
    if match is not None:
        st.selectbox("Protocol", [match], format_func=names.__getitem__, disabled=True)
    else:
        imported_protocol = printable(f"{record.protocol_name} {record.protocol_version}")
        st.selectbox("Protocol", [imported_protocol], disabled=True)
    left, right = st.columns(2)
    # No keys: a widget keyed by name would keep the first simulation's values.
    left.number_input("Patients", value=record.patients, step=1_000, disabled=True)
    right.number_input("Years", value=float(record.years), step=0.5, disabled=True)
    if 0 <= record.seed <= 2**53 - 1:
        left.number_input("Seed", value=record.seed, step=1, disabled=True)
    else:  # beyond what a browser's number field holds exactly
        left.text_input("Seed", value=str(record.seed), disabled=True)
    right.text_input("Name", value=printable(record.name), disabled=True)


with st.form("run"):
    if read_only:
        assert viewed is not None
        show_settings(viewed)
        submitted = st.form_submit_button(
            "Run simulation", type="primary", disabled=True, help=reason
        )
    else:
        protocol = st.selectbox("Protocol", keys, format_func=names.__getitem__, key="run_protocol")
        left, right = st.columns(2)
        patients = left.number_input(
            "Patients",
            min_value=1,
            max_value=MAX_PATIENTS,
            step=1_000,
            key="run_patients",
        )
        years = right.number_input(
            "Years", min_value=0.1, max_value=MAX_YEARS, step=0.5, key="run_years"
        )
        seed = left.number_input(
            "Seed",
            min_value=0,
            max_value=2**53 - 1,
            step=1,
            key="run_seed",
            help="The same protocol, patients, years and seed give the same results.",
        )
        name = right.text_input(
            "Name",
            max_chars=100,
            placeholder="optional: a memorable name is chosen for you",
            key="run_name",
        )
        submitted = st.form_submit_button("Run simulation", type="primary")

if read_only:
    assert viewed is not None
    st.warning(f"**Run is disabled.** {reason}", icon=":material/lock:")
    st.button(
        "Start a new simulation",
        on_click=start_new,
        args=(viewed, match),
        help="Copies its protocol, patients, years and seed into the form.",
    )
    if match is None:
        st.caption(
            f"Its protocol, {common.literal(viewed.protocol_name)} "
            f"{common.literal(viewed.protocol_version)}, is not among your protocols yet."
        )
        if st.button("Add its protocol to my protocols"):
            text = api.load_simulation(ws, viewed.sim_id).protocol_text
            filename = f"{viewed.protocol_name}.yaml"
            try:  # saved under a key not yet taken: never over one of the user's protocols
                info = api.add_protocol(ws, text, filename)
            except ApeError as exc:
                st.error(common.literal(exc))
            else:
                st.session_state["run_note"] = common.added_protocol(info, filename)
                st.rerun()

if submitted and not read_only:
    try:
        record = common.run_with_progress(
            ws, str(protocol), int(patients), float(years), int(seed), name.strip() or None
        )
    except ApeError as exc:
        st.error(common.literal(exc))
    else:
        common.select(record.sim_id)
        st.switch_page(common.OVERVIEW_PAGE)
