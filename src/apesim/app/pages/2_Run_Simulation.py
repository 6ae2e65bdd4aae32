"""Run Simulation: choose a protocol and parameters, watch the progress, see the results."""

from __future__ import annotations

import streamlit as st

from apesim import api
from apesim.app import common
from apesim.engine.simulate import MAX_PATIENTS, MAX_YEARS
from apesim.errors import ApeError

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
keys = [p.key for p in protocols]
names = {p.key: f"{p.name} {p.version} ({p.source})" for p in protocols}

with st.form("run"):
    protocol = st.selectbox("Protocol", keys, format_func=names.__getitem__, key="run_protocol")
    left, right = st.columns(2)
    patients = left.number_input(
        "Patients",
        min_value=1,
        max_value=MAX_PATIENTS,
        value=1_000,
        step=1_000,
        key="run_patients",
    )
    years = right.number_input(
        "Years", min_value=0.5, max_value=MAX_YEARS, value=2.0, step=0.5, key="run_years"
    )
    seed = left.number_input(
        "Seed",
        min_value=0,
        max_value=2**53 - 1,
        value=42,
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
    submitted = st.form_submit_button(
        "Run simulation",
        type="primary",
        disabled=read_only,
        help=reason if read_only else None,
    )

if read_only:
    st.warning(f"**Run is disabled.** {reason}", icon="🔒")
    if st.button("Start a new simulation"):
        common.select(None)
        st.rerun()

if submitted and not read_only:
    try:
        record = common.run_with_progress(
            ws, str(protocol), int(patients), float(years), int(seed), name.strip() or None
        )
    except ApeError as exc:
        st.error(str(exc))
    else:
        common.select(record.sim_id)
        st.switch_page(common.OVERVIEW_PAGE)
