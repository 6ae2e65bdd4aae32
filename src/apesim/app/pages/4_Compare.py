"""Compare: the summary statistics and mean-vision curves of several simulations."""

from __future__ import annotations

import streamlit as st

from apesim import analysis
from apesim.app import charts, common

ws = common.setup("Compare")
st.title("Compare simulations")

records = ws.list()
by_id = {r.sim_id: r for r in records}
if len(records) < 2:
    st.info(
        "Comparing needs at least two simulations in the workspace "
        f"(there {'is' if len(records) == 1 else 'are'} {len(records)}). Run another one, or "
        "import a package from Protocol Manager → Manage → Import Simulation."
    )
    st.page_link(common.RUN_PAGE, label="Run a simulation", icon=":material/play_arrow:")
    st.stop()

viewed = common.current(ws)
default = [r.sim_id for r in records[-2:]]
if viewed is not None and viewed.sim_id not in default:
    default = [viewed.sim_id, default[-1]]
chosen = st.multiselect(
    "Simulations to compare (run here or imported)",
    options=list(reversed(list(by_id))),
    default=default,
    format_func=lambda sim_id: common.label(by_id[sim_id]),
    key="compare_ids",
)
if len(chosen) < 2:
    st.info("Choose two or more simulations.")
    st.stop()

picked = [by_id[sim_id] for sim_id in chosen]
labels = [common.label(r) for r in picked]
table = analysis.comparison_table(
    [(lab, common.summary(ws, r)) for lab, r in zip(labels, picked, strict=True)],
    header={
        "Protocol": [f"{r.protocol_name} {r.protocol_version}" for r in picked],
        "Origin": [
            f"{r.origin} {common.date_of(r.imported_utc)}" if r.imported else r.origin
            for r in picked
        ],
    },
)
st.table(common.literal_frame(table))  # st.table renders Markdown: names shown as written
summary_only = [r for r in picked if r.summary_only]
if summary_only:
    st.info(
        "Summary only (imported without tables, so not in the curves): "
        + ", ".join(common.literal(r.name) for r in summary_only)
        + ". Import their full packages to compare their curves.",
        icon=":material/table_chart:",
    )
curves = analysis.combine_curves(
    (lab, common.analysed(ws, r, "mean_vision"))
    for lab, r in zip(labels, picked, strict=True)
    if not r.summary_only
)
st.plotly_chart(
    charts.mean_vision(curves, "Mean vision over time, with 95 % confidence bands"),
    config={"displaylogo": False},
)
