"""Analysis Overview: the outcomes of one simulation, in tabs; its audit trail and package."""

from __future__ import annotations

import io

import streamlit as st

from apesim import analysis, api
from apesim.app import charts, common
from apesim.errors import ApeError

ws = common.setup("Analysis Overview")
record = common.current(ws)
if record is None:
    records = ws.list()
    if not records:
        st.title("Analysis Overview")
        st.info("There are no simulations in this workspace yet.")
        st.page_link(common.RUN_PAGE, label="Run a simulation", icon=":material/play_arrow:")
        st.page_link(
            common.HOME, label="Or run the demo from the home page", icon=":material/home:"
        )
        st.stop()
    record = records[-1]
    common.select(record.sim_id)
    st.rerun()
assert record is not None

st.title(common.literal(record.name))
st.caption(
    f"{common.literal(record.protocol_name)} {common.literal(record.protocol_version)} · "
    f"{record.patients:,} patients × {record.years:g} years · seed {record.seed} · created "
    f"{common.literal(common.date_of(record.created_utc))} by "
    f"{common.literal(record.created_by or 'unknown')} · {common.code(record.sim_id)}"
)

summary = common.summary(ws, record)
KEY_STATS = (  # (statistic, shorter title): formatted by the summary's one table
    ("vision_change.year1.mean", "Vision change at 1 year"),
    ("vision_change.end.mean", "Vision change at end"),
    ("vision_change.end.gain_15_share", "Gaining ≥15 letters"),
    ("injections.year1_mean", "Injections in year 1"),
    ("discontinuation.rate", "Discontinued"),
)
for column, (key, title) in zip(st.columns(len(KEY_STATS)), KEY_STATS, strict=True):
    column.metric(title, api.STATISTICS[key].shown(summary))
with st.expander("All summary statistics"):
    st.table(common.literal_frame(analysis.summary_table(summary).set_index("statistic")))

vision_tab, treatment_tab, patients_tab, audit_tab = st.tabs(
    ["Vision outcomes", "Treatment patterns", "Patients", "Audit Trail"],
    key="overview_tab",
    on_change="rerun",
)
CHART_CONFIG = {"displaylogo": False}  # no Plotly logo in the charts' toolbar

if vision_tab.open:
    with vision_tab:
        curve = common.analysed(ws, record, "mean_vision")
        st.plotly_chart(charts.mean_vision(curve), config=CHART_CONFIG)
        left, right = st.columns(2)
        with left:
            dist = common.analysed(ws, record, "vision_distribution")
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

if treatment_tab.open:
    with treatment_tab:
        per_year = common.analysed(ws, record, "injections_per_year")
        left, right = st.columns(2)
        left.plotly_chart(
            charts.injections_mean(analysis.mean_injections_per_year(per_year)), config=CHART_CONFIG
        )
        right.plotly_chart(charts.injections_distribution(per_year), config=CHART_CONFIG)
        left, right = st.columns(2)
        left.plotly_chart(
            charts.treatment_intervals(common.analysed(ws, record, "treatment_intervals")),
            config=CHART_CONFIG,
        )
        right.plotly_chart(
            charts.visits_per_year(common.analysed(ws, record, "visits_per_year")),
            config=CHART_CONFIG,
        )
        st.plotly_chart(
            charts.discontinuations(common.analysed(ws, record, "discontinuations")),
            config=CHART_CONFIG,
        )

if patients_tab.open:
    with patients_tab:
        sim = common.results(ws, record)
        first, last = analysis.patient_ids(sim.patients)
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
            info = analysis.patient_record(sim.patients, patient_id)
        except KeyError:
            st.warning(f"There is no patient {patient_id} in this simulation.")
            st.stop()
        trajectory = analysis.patient_trajectory(sim.patients, sim.visits, patient_id)
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

if audit_tab.open:
    with audit_tab:
        if record.imported:
            st.markdown(
                f"**Imported** on {common.literal(record.imported_utc)} from the file "
                f"{common.code(record.source_file or 'unknown')} "
                f"({common.literal(record.source_format or 'APE')} package, SHA-256 "
                f"{common.code(record.source_sha256 or '–')}). Originally simulated on "
                f"{common.literal(record.created_utc)} by "
                f"{common.literal(record.created_by or 'unknown')}."
            )
        st.subheader("Audit trail")
        st.dataframe(
            common.printable_frame(
                analysis.audit_table(api.load_simulation(ws, record.sim_id).audit_events())
            ),
            hide_index=True,
        )

        st.subheader("Download Simulation Package")
        estimate = api.estimate_package_size(ws, record.sim_id)
        prepared = st.session_state.setdefault("prepared_packages", {}).get(record.sim_id)
        st.write(
            "A package holds the whole simulation (tables, protocol, parameters, summary and "
            f"this audit trail) in one file anyone can import. Estimated size: "
            f"**{common.fmt_bytes(estimate)}**."
        )
        if st.button("Prepare package", disabled=prepared is not None):
            created = common.now_utc()
            buffer = io.BytesIO()
            try:
                with st.spinner("Preparing the package…"):
                    result = api.export_package(ws, record.sim_id, buffer, created=created)
            except ApeError as exc:
                st.error(common.literal(exc))
            else:
                st.session_state["prepared_packages"][record.sim_id] = {
                    "data": buffer.getvalue(),
                    "filename": result.filename,
                    "size": result.size,
                    "sha256": result.sha256,
                    "prepared": created.strftime("%Y-%m-%d %H:%M:%S UTC"),
                }
                st.rerun()
        if prepared is not None:
            st.download_button(
                "Download Simulation Package",
                data=prepared["data"],
                file_name=prepared["filename"],
                mime="application/zip",
                type="primary",
                on_click="ignore",
            )
            st.caption(
                f"{common.code(prepared['filename'])} · {common.fmt_bytes(prepared['size'])} · "
                f"prepared {prepared['prepared']} · SHA-256 {common.code(prepared['sha256'])}"
            )
