"""The Analysis Overview's parts, drawn from what a page hands them: the workspace's
Overview page (pages/3_Analysis_Overview.py) and the package viewer (viewer/View.py) show
the same headline, tabs and audit trail, each from its own source and cache."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import pandas as pd
import streamlit as st

from apesim import analysis, api
from apesim.app import charts, common

if TYPE_CHECKING:
    import pyarrow as pa

CHART_CONFIG = {"displaylogo": False}  # no Plotly logo in the charts' toolbar
TABS = ["Vision outcomes", "Treatment patterns", "Patients", "Audit Trail"]


def headline(summary: api.Summary) -> None:
    """The headline statistics, and all of them in an expander."""
    stats = analysis.HEADLINE_STATISTICS
    for column, (key, title) in zip(st.columns(len(stats)), stats, strict=True):
        column.metric(title, api.STATISTICS[key].shown(summary))
    with st.expander("All summary statistics"):
        st.table(common.literal_frame(analysis.summary_table(summary).set_index("statistic")))


def vision(analysed: Callable[[str], pd.DataFrame], summary: api.Summary) -> None:
    """The Vision outcomes tab: mean vision over time, distributions, change categories."""
    st.plotly_chart(charts.mean_vision(analysed("mean_vision")), config=CHART_CONFIG)
    left, right = st.columns(2)
    with left:
        dist = analysed("vision_distribution")
        st.plotly_chart(charts.vision_distribution(dist), config=CHART_CONFIG)
    with right:
        st.plotly_chart(
            charts.vision_change(analysis.vision_change_categories(summary)),
            config=CHART_CONFIG,
        )
    st.caption(
        "Mean vision at each month counts the patients still in follow-up, with the "
        "vision of their latest visit; the band is the 95 % confidence interval of the "
        "mean. Vision is in ETDRS letters."
    )
    st.markdown("**All patients and patients on treatment**")
    st.dataframe(
        analysed("outcomes"),
        hide_index=True,
        column_config={
            "all: vision change": st.column_config.NumberColumn(format="%+.1f"),
            "on treatment: vision change": st.column_config.NumberColumn(format="%+.1f"),
            "injections so far": st.column_config.NumberColumn(format="%.1f"),
            "discontinued": st.column_config.NumberColumn(format="percent"),
            "dead": st.column_config.NumberColumn(format="percent"),
        },
    )
    st.caption(
        "At each year after enrolment, over patients alive then: the vision change of "
        "all patients (their latest reading, also after they stopped treatment) and of "
        "those still on treatment. Discontinued includes patients lost to follow-up."
    )


def treatment(analysed: Callable[[str], pd.DataFrame]) -> None:
    """The Treatment patterns tab."""
    per_year = analysed("injections_per_year")
    left, right = st.columns(2)
    left.plotly_chart(
        charts.injections_mean(analysis.mean_injections_per_year(per_year)), config=CHART_CONFIG
    )
    right.plotly_chart(charts.injections_distribution(per_year), config=CHART_CONFIG)
    left, right = st.columns(2)
    left.plotly_chart(
        charts.treatment_intervals(analysed("treatment_intervals")), config=CHART_CONFIG
    )
    right.plotly_chart(charts.visits_per_year(analysed("visits_per_year")), config=CHART_CONFIG)
    st.plotly_chart(charts.discontinuations(analysed("discontinuations")), config=CHART_CONFIG)


def patients(patients: pa.Table, visits: Callable[[], pa.Table]) -> None:
    """The Patients tab: one patient's record and visits (`visits` reads the whole table
    when a patient is shown)."""
    first, last = analysis.patient_ids(patients)
    cols = st.columns(5)
    patient_id = int(
        cols[0].number_input(
            f"Patient ({first}–{last})",
            min_value=first,
            max_value=last,
            value=first,
            step=1,
            key="patient_id",
        )
    )
    try:
        info = analysis.patient_record(patients, patient_id)
    except KeyError:
        st.warning(f"There is no patient {patient_id} in this simulation.")
        return
    trajectory = analysis.patient_trajectory(patients, visits(), patient_id)
    cols[1].metric("Age, sex", f"{info['baseline_age']}, {info['sex']}")
    cols[2].metric("Baseline vision", f"{info['baseline_vision']} letters")
    cols[3].metric(
        "Final vision",
        f"{info['final_vision']} letters",
        delta=f"{info['final_vision'] - info['baseline_vision']:+d}",
    )
    cols[4].metric("Injections / visits", f"{info['injections']} / {info['visits']}")
    st.markdown(f"**Outcome:** {common.literal(analysis.patient_outcome(info))}")
    st.plotly_chart(charts.patient(trajectory, patient_id), config=CHART_CONFIG)
    with st.expander("Visits of this patient"):
        st.dataframe(trajectory, hide_index=True)


def audit_events(events: Sequence[api.AuditEvent]) -> None:
    """The audit trail: a table of events, then each event's details."""
    st.subheader("Audit trail")
    st.dataframe(
        common.printable_frame(analysis.audit_table(events)),
        hide_index=True,
        column_config={
            "#": st.column_config.NumberColumn(width="small"),
            "time (UTC)": st.column_config.TextColumn(width="medium"),
            "user": st.column_config.TextColumn(width="medium"),
            "action": st.column_config.TextColumn(width="medium"),
        },
    )
    st.caption("Each event's details, as recorded:")
    for number, event in enumerate(events, start=1):
        with st.expander(
            f"Event {number} · {common.literal(event.action)} · "
            f"{common.literal(analysis.audit_time(event.time))} UTC · "
            f"{common.literal(event.user)}"
        ):
            st.caption(
                f"Recorded at {common.code(event.time)}; SHA-256 of the event before it "
                f"{common.code(event.prev_sha256)}"
            )
            st.code(analysis.audit_details(event), language="json", wrap_lines=True)


def open_tabs(names: list[str], key: str) -> list[Any]:
    """Tabs drawn only when open (each rerun draws the open one)."""
    return list(st.tabs(names, key=key, on_change="rerun"))
