"""Sweeps: a scenario sweep's outcomes across its draws, and what they are sensitive to."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from apesim import api
from apesim.app import charts, common

ws = common.setup("Sweeps")
st.title("Scenario sweeps")

sweeps = api.list_sweeps(ws)
if not sweeps:
    st.info(
        "No sweep in this workspace yet. A sweep runs a protocol many times with its "
        "parameters drawn from distributions (or over a grid): write a sweep file and run "
        "`ape sweep SWEEP.yaml` (see docs/distributed.md)."
    )
    st.stop()

by_id = {s.sweep_id: s for s in sweeps}
chosen = st.selectbox(
    "Sweep",
    options=list(by_id),
    format_func=lambda sid: (
        f"{by_id[sid].name or by_id[sid].protocol_name} · {sid} · "
        f"{by_id[sid].complete} of {by_id[sid].draws} draws"
    ),
    key="sweep_id",
)
report = api.sweep_report(ws, chosen)
st.caption(
    f"{common.literal(report.protocol_name)}: {report.complete} of {report.planned} draws "
    f"complete; varied: {', '.join(common.literal(p) for p in report.varied)}"
)
if not report.complete:
    st.info("No draw of this sweep is complete yet: `ape sweep` its file to run them.")
    st.stop()

st.table(
    pd.DataFrame(
        {
            "Outcome": [o.label for o in report.outcomes],
            "Mean": [f"{o.mean:.2f}" if o.mean is not None else "–" for o in report.outcomes],
            "95% interval": [
                f"{o.low:.2f} to {o.high:.2f}" if o.low is not None and o.high is not None else "–"
                for o in report.outcomes
            ],
            "Draws": [o.n for o in report.outcomes],
        }
    ).set_index("Outcome")
)

labels = {o.key: o.label for o in report.outcomes}
outcome = st.selectbox(
    "Outcome", options=list(labels), format_func=lambda k: labels[k], key="sweep_outcome"
)
values = [r["outcomes"][outcome] for r in report.rows]
present = [(r, v) for r, v in zip(report.rows, values, strict=True) if v is not None]
distribution, sensitivity, scatter = st.tabs(["Distribution", "Sensitivity", "Scatter"])
with distribution:
    st.plotly_chart(
        charts.sweep_distribution([v for _, v in present], labels[outcome]),
        config={"displaylogo": False},
    )
with sensitivity:
    ranking = report.ranking(outcome)
    st.plotly_chart(
        charts.tornado(
            [s.parameter for s in ranking], [s.spearman for s in ranking], labels[outcome]
        ),
        config={"displaylogo": False},
    )
with scatter:
    parameter = st.selectbox("Parameter", options=report.varied, key="sweep_parameter")
    st.plotly_chart(
        charts.sweep_scatter(
            [r["values"][parameter] for r, _ in present],
            [v for _, v in present],
            parameter,
            labels[outcome],
        ),
        config={"displaylogo": False},
    )
