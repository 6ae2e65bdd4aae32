"""Analysis Overview: the outcomes of one simulation, in tabs; its audit trail and package."""

from __future__ import annotations

import io

import pandas as pd
import streamlit as st

from apesim import api
from apesim.app import common, overview
from apesim.errors import ApeError

ws = common.setup("Analysis Overview")


def _default_signer() -> tuple[list[api.SigningKey], str]:
    """The workspace's default signing key (`ape keys policy --default-key`), opened with the
    passphrase typed here when it has one, and a line saying whether the download is signed."""
    name = api.signature_policy(ws).signing_key
    if name is None:
        return [], "Not signed: no default signing key (`ape keys policy --default-key NAME`)."
    try:
        key = api.load_signing_key(name)
    except ApeError as exc:
        if exc.code != "keys.passphrase_needed":
            return [], f"Not signed: the default key cannot be used here ({common.literal(exc)})."
        passphrase = st.text_input(
            f"Passphrase of the default key {common.literal(name)}",
            type="password",
            key="signing_passphrase",
        )
        if not passphrase:
            return [], (
                f"Not signed: the default key {common.code(name)} is protected by a passphrase; "
                "give it above to sign the download."
            )
        try:
            key = api.load_signing_key(name, passphrase)
        except ApeError as wrong:
            return [], f"Not signed: {common.literal(wrong)}."
    return [key], f"Signed with the workspace's default key {common.code(name)}."


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
overview.headline(summary)
if record.summary_only:  # imported without its tables: the statistics are all there is
    common.summary_only_notice(record, "its charts, patients and package")
    st.stop()

vision_tab, treatment_tab, patients_tab, audit_tab = overview.open_tabs(
    overview.TABS, key="overview_tab"
)


def analysed(what: str) -> pd.DataFrame:
    assert record is not None
    return common.analysed(ws, record, what)


if vision_tab.open:
    with vision_tab:
        overview.vision(analysed, summary)

if treatment_tab.open:
    with treatment_tab:
        overview.treatment(analysed)

if patients_tab.open:
    with patients_tab:
        sim = common.results(ws, record)
        overview.patients(sim.patients, lambda: sim.visits)

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
        overview.audit_events(api.load_simulation(ws, record.sim_id).audit_events())

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
        signers, signing_note = _default_signer()
        st.caption(signing_note)
        recipients_text = st.text_area(
            "Encrypt for… (age recipients, `age1…`, one a line; empty: not encrypted)",
            key=f"encrypt_for_{sim_id}",
            height=68,
        )
        encryption = None
        try:
            recipients = api.parse_recipients(
                [line.strip() for line in recipients_text.splitlines() if line.strip()]
            )
        except ApeError as exc:
            st.error(f"Not a recipient: {common.literal(exc)}")
            recipients = ()
        if recipients:
            encryption = api.Encryption(recipients)
            st.caption(
                f"The package will be encrypted (age) for {len(recipients)} recipient(s): only "
                "their identities open it (`ape import FILE.zip.age --identity KEY`, or `age -d`)."
            )

        def package() -> bytes:
            """The package, made when the button is clicked (on Streamlit's download thread:
            no Streamlit calls here, only the API; what happened is left in `made` for the
            next run of the page to show)."""
            buffer = io.BytesIO()
            try:
                result = api.export_package(
                    ws,
                    sim_id,
                    buffer,
                    created=common.now_utc(),
                    sign=signers,
                    encrypt=encryption,
                )
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
            file_name=api.package_filename(sim_id, common.now_utc().strftime("%Y%m%d"))
            + (".age" if encryption is not None else ""),
            mime="application/zip" if encryption is None else "application/octet-stream",
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
