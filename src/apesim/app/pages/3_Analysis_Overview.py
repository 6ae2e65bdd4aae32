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
        st.markdown("**All patients and patients on treatment**")
        outcomes = common.analysed(ws, record, "outcomes")
        st.dataframe(
            outcomes,
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
        events = api.load_simulation(ws, record.sim_id).audit_events()
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

        st.subheader("Reproduce")
        st.write(
            "Simulate again from the recorded protocol, parameters, seed and model (engine "
            f"{common.literal(record.engine_version)}) and compare with these tables. Nothing "
            "is written: this simulation is only read."
        )
        checked = st.session_state.setdefault("reproduced", {})
        if st.button("Re-simulate and compare", key="reproduce"):
            with st.spinner("Re-simulating..."):
                try:
                    checked[record.sim_id] = api.reproduce(ws, record.sim_id).to_json()
                except ApeError as exc:
                    checked[record.sim_id] = {"error": str(exc)}
        outcome = checked.get(record.sim_id)
        if outcome is not None and "error" in outcome:
            st.error(common.literal(outcome["error"]))
        elif outcome is not None and outcome["identical"]:
            st.success(
                f"Identical: {outcome['patients']:,} patients and {outcome['visits']:,} visits "
                f"re-simulated with {common.literal(outcome['model'])}."
            )
        elif outcome is not None:
            st.warning(
                f"Differs from the original at {common.literal(outcome['difference']['message'])}."
            )

        st.subheader("Download Simulation Package")
        estimate = api.estimate_package_size(ws, record.sim_id)
        st.write(
            "A package holds the whole simulation (tables, protocol, parameters, summary and "
            f"this audit trail) in one file anyone can import. Estimated size: "
            f"**{common.fmt_bytes(estimate)}**. It is made when you click, and recorded in "
            "the audit trail as `exported`."
        )
        made = st.session_state.setdefault("prepared_packages", {})
        sim_id = record.sim_id

        def package() -> bytes:
            """The package, made when the button is clicked (on Streamlit's download thread:
            no Streamlit calls here, only the API; what happened is left in `made` for the
            next run of the page to show)."""
            buffer = io.BytesIO()
            try:
                result = api.export_package(ws, sim_id, buffer, created=common.now_utc())
            except ApeError as exc:
                made[sim_id] = {"error": str(exc)}
                raise
            made[sim_id] = {
                "filename": result.filename,
                "size": result.size,
                "sha256": result.sha256,
                "prepared": common.now_utc().strftime("%Y-%m-%d %H:%M:%S UTC"),
            }
            return buffer.getvalue()

        st.download_button(
            "Download Simulation Package",
            data=package,
            file_name=api.package_filename(sim_id, common.now_utc().strftime("%Y%m%d")),
            mime="application/zip",
            type="primary",
            icon=":material/download:",
        )
        last = made.get(sim_id)
        if last is not None and "error" in last:
            st.error(f"The package could not be made: {common.literal(last['error'])}")
        elif last is not None:
            st.caption(
                f"Last downloaded: {common.code(last['filename'])} · "
                f"{common.fmt_bytes(last['size'])} · made {last['prepared']} · "
                f"SHA-256 {common.code(last['sha256'])}"
            )
