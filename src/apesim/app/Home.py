"""APE's home page: what the app does, the workspace's simulations, and a demo on first start."""

from __future__ import annotations

import streamlit as st

from apesim import api
from apesim.app import common
from apesim.errors import ApeError

ws = common.setup("Home")
st.title("APE — the AMD Protocol Explorer")
st.markdown(
    "Simulate anti-VEGF treatment protocols for neovascular AMD, look at the outcomes, "
    "compare protocols, and share simulations as packages."
)

records = ws.list()
if not records:
    st.subheader("Your workspace is empty")
    demo = common.DEMO
    st.write(
        f"Run a small demo simulation to have something to look at: {demo['patients']:,} "
        f"patients on the aflibercept treat-and-extend protocol for {demo['years']:g} years "
        "(a few seconds). Or run your own on **Run Simulation**, or import a package from "
        "**Protocol Manager → Manage → Import Simulation**."
    )
    if st.button("Run the demo simulation", type="primary"):
        try:
            record = common.run_with_progress(
                ws,
                str(demo["protocol"]),
                int(demo["patients"]),
                float(demo["years"]),
                int(demo["seed"]),
                str(demo["name"]),
            )
        except ApeError as exc:
            st.error(common.literal(exc))
        else:
            common.select(record.sim_id)
            st.switch_page(common.OVERVIEW_PAGE)
else:
    st.subheader(f"Simulations in this workspace ({len(records)})")
    st.dataframe(
        common.records_frame(records),
        hide_index=True,
        column_config={"patients": st.column_config.NumberColumn(format="localized")},
    )
    viewed = common.current(ws)
    if viewed is not None:
        st.write(f"Viewing **{common.literal(common.label(viewed))}**.")
    actions = st.container(horizontal=True)
    if actions.button("Open Analysis Overview", type="primary"):
        if viewed is None:
            common.select(records[-1].sim_id)
        st.switch_page(common.OVERVIEW_PAGE)
    if actions.button("Run a new simulation"):
        st.switch_page(common.RUN_PAGE)
    if actions.button("Compare simulations", disabled=len(records) < 2):
        st.switch_page(common.COMPARE_PAGE)

    with st.expander("Export several simulations as one batch (.apebatch)"):
        by_id = {r.sim_id: r for r in records}
        chosen = st.multiselect(
            "Simulations",
            options=list(by_id),
            format_func=lambda sim_id: common.label(by_id[sim_id]),
            key="batch_choice",
        )
        if st.button("Build the batch", disabled=not chosen, key="build_batch"):
            try:
                with st.spinner(f"Packaging {len(chosen)} simulation(s)…"):
                    st.session_state["batch_built"] = (chosen, *api.export_batch(ws, chosen))
            except ApeError as exc:
                st.error(common.literal(exc))
        built = st.session_state.get("batch_built")
        if built is not None and built[0] == chosen:
            _, filename, data = built
            st.download_button(
                f"Download {filename} ({common.fmt_bytes(len(data))})",
                data,
                file_name=filename,
                mime="application/zip",
                key="batch_download",
            )
            st.caption(
                "One file holding each simulation's package; import it with "
                "**Protocol Manager → Manage → Import Simulation** or `ape import`."
            )

# Where the workspace came from: `make run` uses ./workspace of the checkout (APE_WORKSPACE),
# the CLI and `ape app` the same default unless told otherwise (README, "The workspace").
_source = api.workspace_location().source
st.caption(
    f"Workspace: {common.code(ws.root)} "
    f"({'from APE_WORKSPACE' if _source == api.APE_WORKSPACE else 'the default'}; "
    "`ape workspace` shows the command line's)"
)
