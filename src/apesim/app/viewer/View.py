"""The package viewer (`ape view PACKAGE`): one package, read-only, without importing it and
without a workspace. Its checks run first (in the reader's worker, like an import's); a
valid package's Analysis Overview is drawn from its own tables, read in place from the ZIP.
The package is named by APE_VIEW_PACKAGE (and a differential one's base by APE_VIEW_BASE)."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd
import streamlit as st

from apesim import analysis, api
from apesim.app import common, overview

VIEW_PACKAGE, VIEW_BASE, VIEW_TRUST = "APE_VIEW_PACKAGE", "APE_VIEW_BASE", "APE_VIEW_TRUST"

st.set_page_config(page_title="Package viewer · APE", page_icon=common.ICON, layout="wide")


@st.cache_resource(show_spinner="Checking the package…")
def _open(path: str, base: str | None) -> api.PackageView:
    trust_file = os.environ.get(VIEW_TRUST)
    trust = api.trust_list(None, Path(trust_file)) if trust_file else {}
    return api.open_package(path, base=base, trust=trust)


@st.cache_data(max_entries=64, show_spinner=False)
def _analysis(path: str, sha256: str, what: str) -> pd.DataFrame:
    view = _open(path, os.environ.get(VIEW_BASE))
    patients, years = view.patients, view.metadata.years
    if what == "vision_distribution":
        return analysis.vision_distribution(patients)
    if what == "discontinuations":
        return analysis.discontinuations_over_time(patients, years)
    visits = view.visit_columns(analysis.VISIT_COLUMNS)
    if what == "mean_vision":
        return analysis.mean_vision_over_time(patients, visits, years)
    if what == "outcomes":
        return analysis.outcomes_by_year(patients, visits, years)
    patterns = analysis.treatment_patterns(patients, visits, years)
    frames = {
        "injections_per_year": patterns.injections_per_year,
        "treatment_intervals": patterns.treatment_intervals,
        "visits_per_year": patterns.visits_per_year,
    }
    return frames[what]


path = os.environ.get(VIEW_PACKAGE)
if not path or not Path(path).is_file():
    st.title("Package viewer")
    st.error(f"No package to show: {common.code(path or '(none given)')} is not a file.")
    st.stop()
assert path is not None
view = _open(path, os.environ.get(VIEW_BASE))
report = view.report

st.sidebar.markdown(
    f"**Viewing a package, read-only**\n\n{common.code(Path(path).name)}\n\n"
    "Nothing is imported and no workspace is used."
)
st.sidebar.caption(f"{common.literal(report.format)} · {common.fmt_bytes(report.size)}")
st.sidebar.caption(f"SHA-256 {common.code(report.sha256)}")

if not view.ok:
    st.title(common.literal(Path(path).name))
    st.error(
        f"This package did not pass its checks, so its data is not shown: "
        f"{common.literal(report.error)}"
    )
    st.subheader("Checks")
    st.table(common.checks_frame(report))
    st.stop()

meta = view.metadata
st.title(common.literal(meta.name))
st.caption(
    f"{common.literal(meta.protocol_name)} {common.literal(meta.protocol_version)} · "
    f"{meta.patients:,} patients × {meta.years:g} years · seed {meta.seed} · simulated "
    f"{common.literal(common.date_of(meta.created_utc.isoformat()))} · packaged "
    f"{common.literal(common.date_of(report.created_date))} by "
    f"{common.literal(report.created_by or 'unknown')} · {common.code(meta.sim_id)}"
)
st.success(
    "Every check passed: the package is complete and unaltered, and its summary statistics "
    "were recomputed from its tables (see Checks)."
)
for warning in report.warnings:
    st.warning(common.literal(warning))
if report.verdict is not None:
    said = f"**Signatures:** {common.literal(report.verdict.summary())}"
    if report.verdict.trusted:
        st.success(said)
    else:
        hint = report.verdict.hint()
        st.warning(said + (f" — {common.literal(hint)}" if hint else ""))

summary = view.summary
overview.headline(summary)
vision_tab, treatment_tab, patients_tab, audit_tab, checks_tab = overview.open_tabs(
    [*overview.TABS, "Checks"], key="viewer_tab"
)


def analysed(what: str) -> pd.DataFrame:
    return _analysis(str(path), report.sha256, what)


if vision_tab.open:
    with vision_tab:
        overview.vision(analysed, summary)

if treatment_tab.open:
    with treatment_tab:
        overview.treatment(analysed)

if patients_tab.open:
    with patients_tab:
        overview.patients(view.patients, lambda: view.visits)

if audit_tab.open:
    with audit_tab:
        overview.audit_events(view.audit_events)

if checks_tab.open:
    with checks_tab:
        st.subheader("Checks")
        st.table(common.checks_frame(report))
        st.caption(
            f"Package {common.code(Path(path).name)}, {common.literal(report.format)}, "
            f"{report.size:,} bytes, SHA-256 {common.code(report.sha256)}"
        )
