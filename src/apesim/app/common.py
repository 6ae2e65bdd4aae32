"""What every page of the app shares: the workspace, cached loads, the simulation being
viewed, the imported banner, and small formatting helpers.

Text from a package or a simulation (names, created_by, protocol names, file names, error
messages quoting them) is never Markdown: `st.title`, `st.info`, `st.table`, ... render
Markdown, so such text goes through `literal` (or `code`) first and shows as written, never
as an image, a link or formatting; widget options and data frames get `printable` text.

Heavy reads are cached by workspace folder and simulation id: a stored simulation never
changes (only its audit trail grows, and that is always read fresh), so a cached table or
analysis is valid for as long as the simulation exists.
"""

from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import pandas as pd
import streamlit as st
from streamlit.runtime.scriptrunner import add_script_run_ctx

from apesim import analysis, api
from apesim.api import SimulationRecord, SimulationResults, Summary, Workspace
from apesim.errors import SimulationNotFoundError
from apesim.text import markdown_literal, printable

if TYPE_CHECKING:
    import pyarrow as pa

    from apesim.api import PackageReport  # loads the package reader: annotations only

ICON = str(Path(__file__).with_name("icon.png"))  # the tab's icon, served by the app itself

HOME = "Home.py"
PROTOCOLS_PAGE = "pages/1_Protocol_Manager.py"
RUN_PAGE = "pages/2_Run_Simulation.py"
OVERVIEW_PAGE = "pages/3_Analysis_Overview.py"
COMPARE_PAGE = "pages/4_Compare.py"

SIM_KEY = "sim_id"  # the simulation being viewed, shared by all pages
PICKER_KEY = "sim_picker"


class DemoSettings(TypedDict):
    """The demo simulation offered on the home page of an empty workspace."""

    protocol: str
    patients: int
    years: float
    seed: int
    name: str


DEMO: DemoSettings = {
    "protocol": "aflibercept_treat_and_extend",
    "patients": 2_000,
    "years": 3.0,
    "seed": 42,
    "name": "Demo: treat-and-extend",
}


# -- workspace and selection ---------------------------------------------------------------


@st.cache_resource(show_spinner=False)
def _open_workspace(root: str) -> Workspace:
    ws = Workspace(root)
    _prewarm(root, ws)
    return ws


def _prewarm(root: str, ws: Workspace) -> None:
    """Once per workspace and process, read the newest simulation and compute its mean
    vision curve in the background, so that its Analysis Overview (the page a first visit
    usually opens next) does not wait for them. Best effort: errors are left to the page."""
    records = ws.list()
    if not records:
        return
    sim_id = records[-1].sim_id

    def work() -> None:
        with contextlib.suppress(Exception):
            _summary(root, sim_id)
            _analysis(root, sim_id, "mean_vision")
            _analysis(root, sim_id, "vision_distribution")

    thread = threading.Thread(target=work, name="ape-prewarm", daemon=True)
    add_script_run_ctx(thread)
    thread.start()


def workspace() -> Workspace:
    """The workspace named by APE_WORKSPACE (or the user's default), opened once."""
    return _open_workspace(str(api.default_workspace()))


def setup(title: str) -> Workspace:
    """Start a page: its config, the workspace, the simulation picker and the banner."""
    # A local image: a Material icon as page_icon makes the browser fetch it from the
    # internet, and APE is used where there is none (no request leaves the machine).
    st.set_page_config(page_title=f"{title} · APE", page_icon=ICON, layout="wide")
    ws = workspace()
    record = simulation_picker(ws)
    if record is not None and record.imported:
        imported_banner(record)
    return ws


def current(ws: Workspace) -> SimulationRecord | None:
    """The simulation being viewed, if any (forgotten if it no longer exists)."""
    sim_id = st.session_state.get(SIM_KEY)
    if not sim_id:
        return None
    try:
        return ws.get(sim_id)
    except SimulationNotFoundError:
        st.session_state[SIM_KEY] = None
        return None


def select(sim_id: str | None) -> None:
    """Make `sim_id` the simulation being viewed on every page."""
    st.session_state[SIM_KEY] = sim_id


def _picked() -> None:
    select(st.session_state.get(PICKER_KEY))


def simulation_picker(ws: Workspace) -> SimulationRecord | None:
    """The sidebar's choice of the simulation being viewed; returns it."""
    records = ws.list()
    by_id = {r.sim_id: r for r in records}
    record = current(ws)
    st.session_state[PICKER_KEY] = record.sim_id if record else None
    st.sidebar.selectbox(
        "Simulation being viewed",
        options=list(reversed(list(by_id))),
        format_func=lambda sim_id: label(by_id[sim_id]),
        index=None,
        placeholder="No simulation chosen" if records else "No simulations yet",
        key=PICKER_KEY,
        on_change=_picked,
    )
    return record


def label(record: SimulationRecord) -> str:
    """A short unique name for a simulation: name, size, and the end of its id (plain
    printable text: pass it through `literal` before a Markdown-rendering call)."""
    tag = " · imported" if record.imported else ""
    return printable(
        f"{record.name} ({record.patients:,} patients × {record.years:g} y, "
        f"…{record.sim_id[-6:]}){tag}"
    )


def literal(text: Any) -> str:
    """Text from a package or a simulation for a Markdown-rendering call (st.title, st.info,
    st.caption, st.table cells, ...): shown exactly as written, controls escaped."""
    return markdown_literal(text)


def code(text: Any) -> str:
    """Text as Markdown inline code (ids, file names, hashes): printable, in a backtick
    fence longer than any run of backticks inside it, so it cannot close early."""
    value = printable(text)
    fence = "`" * (max((len(run) for run in re.findall("`+", value)), default=0) + 1)
    pad = " " if value[:1] in ("`", " ") or value[-1:] in ("`", " ") else ""
    return f"{fence}{pad}{value}{pad}{fence}"


def literal_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame for `st.table` (which renders Markdown in every cell, index and header):
    every text cell, index label and column name through `literal`."""

    def cell(value: Any) -> Any:
        return literal(value) if isinstance(value, str) else value

    out = frame.map(cell)
    out.index = out.index.map(cell)
    out.index.name = cell(frame.index.name) if frame.index.name is not None else None
    out.columns = [cell(c) for c in frame.columns]
    return out


def printable_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """A frame for `st.dataframe` (plain text cells) with every text cell `printable`."""
    return frame.map(lambda value: printable(value) if isinstance(value, str) else value)


def date_of(iso: str | None) -> str:
    """The date part of an ISO 8601 UTC time ("–" if unknown)."""
    return iso[:10] if iso else "–"


def imported_banner(record: SimulationRecord) -> None:
    """The banner shown on every page while an imported simulation is being viewed."""
    st.info(
        f"**Viewing imported simulation from {literal(date_of(record.created_utc))}** — "
        f"{literal(record.name)}, created by {literal(record.created_by or 'unknown')}; "
        f"imported {literal(date_of(record.imported_utc))} from "
        f"{code(record.source_file) if record.source_file else 'a package'}. "
        "It is read-only."
        + (" **Summary only**: its tables were not imported." if record.summary_only else ""),
        icon=":material/move_to_inbox:",
    )


def summary_only_notice(record: SimulationRecord, what: str) -> None:
    """What a page that needs the tables says of a simulation imported as summary only,
    with the way to the full import."""
    st.warning(
        f"**Summary only**: {literal(record.name)} was imported without its tables, so "
        f"{what} cannot be shown. Import the full package "
        f"({code(record.source_file) if record.source_file else 'the same file'}) to see "
        "them: it replaces this summary.",
        icon=":material/table_chart:",
    )
    st.page_link(PROTOCOLS_PAGE, label="Import the full package (Manage → Import Simulation)")


def records_frame(records: list[SimulationRecord]) -> pd.DataFrame:
    """The workspace's simulations as a table, newest first."""
    frame = pd.DataFrame(
        [
            {
                "name": r.name,
                "protocol": f"{r.protocol_name} {r.protocol_version}",
                "patients": r.patients,
                "years": r.years,
                "seed": r.seed,
                "created (UTC)": r.created_utc.replace("T", " ").removesuffix("Z"),
                "origin": f"{r.origin} {date_of(r.imported_utc)}" if r.imported else r.origin,
                "id": r.sim_id,
            }
            for r in reversed(records)
        ]
    )
    return printable_frame(frame)


def fmt_bytes(size: int | float) -> str:
    """A size in bytes for people: 950 B, 12.3 kB, 4.56 MB (powers of 1000)."""
    value = float(size)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return (
                f"{value:,.0f} {unit}"
                if unit == "B"
                else f"{value:,.{2 if value < 10 else 1}f} {unit}"
            )
        value /= 1000
    raise AssertionError("unreachable")


def plain_number(value: Any) -> str:
    """A table cell without trailing zeros: 0.5, 0.83, 77 (text is left as it is)."""
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# -- running -------------------------------------------------------------------------------


def run_with_progress(
    ws: Workspace, protocol: str, patients: int, years: float, seed: int, name: str | None
) -> SimulationRecord:
    """Run a simulation through the API with a progress bar; raises what the API raises."""
    params = api.SimulationParameters(patients=patients, years=years, seed=seed)
    bar = st.progress(0.0, text=f"Simulating {patients:,} patients…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / total, 1.0), text=f"Simulated {done:,} of {total:,} patients")

    record = api.run_simulation(ws, protocol, params, name=name, progress=progress)
    bar.progress(1.0, text=f"Done: {patients:,} patients in {record.runtime_seconds:.1f} s")
    return record


# -- cached loads ----------------------------------------------------------------------------


@st.cache_resource(max_entries=4, show_spinner=False)
def _results(root: str, sim_id: str) -> SimulationResults:
    sim = api.load_simulation(_open_workspace(root), sim_id)
    sim.patients  # noqa: B018  (read once, here; the whole visits table when a page needs it)
    return sim


@st.cache_resource(max_entries=4, show_spinner=False)
def _analysis_visits(root: str, sim_id: str) -> pa.Table:
    """The visit columns the analyses read (`analysis.VISIT_COLUMNS`), read once: a
    fraction of the whole table's decoding time and memory."""
    return _results(root, sim_id).visit_columns(analysis.VISIT_COLUMNS)


def results(ws: Workspace, record: SimulationRecord) -> SimulationResults:
    """The simulation's tables, read once per process and shared by every session."""
    return _results(str(ws.root), record.sim_id)


@st.cache_data(max_entries=64, show_spinner=False)
def _summary(root: str, sim_id: str) -> Summary:
    return api.load_simulation(_open_workspace(root), sim_id).summary


def summary(ws: Workspace, record: SimulationRecord) -> Summary:
    """The simulation's summary statistics (summary_stats.json)."""
    return _summary(str(ws.root), record.sim_id)


@dataclass(frozen=True)
class _Source:
    """What an analysis reads, each part loaded (and cached) only when it asks for it."""

    root: str
    sim_id: str

    @property
    def patients(self) -> pa.Table:
        return _results(self.root, self.sim_id).patients

    @property
    def years(self) -> float:
        return _results(self.root, self.sim_id).record.years

    @property
    def visits(self) -> pa.Table:
        return _analysis_visits(self.root, self.sim_id)

    @property
    def treatment(self) -> analysis.TreatmentPatterns:
        return _treatment(self.root, self.sim_id)


@st.cache_data(max_entries=64, show_spinner=False)
def _treatment(root: str, sim_id: str) -> analysis.TreatmentPatterns:
    """The Treatment patterns tab's three analyses, from one pass over the visits."""
    s = _Source(root, sim_id)
    return analysis.treatment_patterns(s.patients, s.visits, s.years)


_ANALYSES: dict[str, Callable[[_Source], pd.DataFrame]] = {
    "mean_vision": lambda s: analysis.mean_vision_over_time(s.patients, s.visits, s.years),
    "vision_distribution": lambda s: analysis.vision_distribution(s.patients),
    "injections_per_year": lambda s: s.treatment.injections_per_year,
    "treatment_intervals": lambda s: s.treatment.treatment_intervals,
    "visits_per_year": lambda s: s.treatment.visits_per_year,
    "discontinuations": lambda s: analysis.discontinuations_over_time(s.patients, s.years),
    "outcomes": lambda s: analysis.outcomes_by_year(s.patients, s.visits, s.years),
}


@st.cache_data(max_entries=256, show_spinner=False)
def _analysis(root: str, sim_id: str, what: str) -> pd.DataFrame:
    return _ANALYSES[what](_Source(root, sim_id))


def analysed(ws: Workspace, record: SimulationRecord, what: str) -> pd.DataFrame:
    """One of the `analysis` frames for a simulation, computed once and cached."""
    return _analysis(str(ws.root), record.sim_id, what)


# -- uploads -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Upload:
    """A file the user chose: its name and bytes, kept until another is chosen."""

    name: str
    data: bytes
    file_id: str


def one_file(label: str, key: str, *, types: list[str] | None = None) -> Upload | None:
    """A file uploader for one file. Once a file is chosen the uploader gives way to the
    file's name and size (in the app's units: 91.5 kB) and **Choose another file**, so the
    page never offers to add a second file. `forget(key)` starts over."""
    held: Upload | None = st.session_state.get(f"{key}__file")
    if held is not None:
        row = st.container(horizontal=True, vertical_alignment="center", gap="medium")
        row.markdown(f"**{literal(held.name)}** · {fmt_bytes(len(held.data))}")
        row.button("Choose another file", key=f"{key}__another", on_click=forget, args=(key,))
        return held
    round_ = st.session_state.get(f"{key}__round", 0)
    upload = st.file_uploader(label, type=types, key=key if round_ == 0 else f"{key}_{round_}")
    if upload is None:
        return None
    st.session_state[f"{key}__file"] = Upload(upload.name, upload.getvalue(), upload.file_id)
    st.rerun()  # draw the file's line instead of the uploader


def forget(key: str) -> None:
    """Drop the file `one_file(..., key)` holds and show a fresh uploader."""
    st.session_state.pop(f"{key}__file", None)
    st.session_state[f"{key}__round"] = st.session_state.get(f"{key}__round", 0) + 1


# -- packages ------------------------------------------------------------------------------


def already_here(ws: Workspace, report: PackageReport) -> SimulationRecord | None:
    """The simulation of this workspace a package would duplicate, if any: the same package
    file imported before, or its simulation (imported or run here). Importing it is refused
    (`DuplicateImportError`); the preview says so first."""
    found = ws.find_by_source(report.sha256) if report.sha256 else None
    if found is not None:
        return found
    sim_id = report.validated.sim_id if report.validated is not None else None
    if sim_id and ws.exists(sim_id):
        return ws.get(sim_id)
    return None


def bulk_frame(report: api.BulkImport) -> pd.DataFrame:
    """One row per package of a bulk import: file, result, simulation, finding, reason (the
    text escaped: it may come from a package)."""
    marks = {"ok": "✓ imported", "duplicate": "= already here", "failed": "✗ failed"}
    return printable_frame(
        pd.DataFrame(
            {
                "file": [i.source for i in report.items],
                "result": [marks[i.status] for i in report.items],
                "simulation": [i.sim_id or "" for i in report.items],
                "finding": [i.code or "" for i in report.items],
                "reason": [i.message or "" for i in report.items],
            }
        )
    )


def checks_frame(report: PackageReport) -> pd.DataFrame:
    """A package report's validation checks as a table indexed by check: result, details
    (only when some check has any), code."""
    marks = {True: "✓ passed", False: "✗ failed", None: "– not run"}
    frame = pd.DataFrame(
        [
            {
                "check": check.label,
                "result": marks.get(check.passed, str(check.passed)),
                "details": check.message or "",
                "code": check.code,
            }
            for check in report.checks
        ]
    ).set_index("check")
    if not frame["details"].astype(bool).any():
        frame = frame.drop(columns="details")
    return literal_frame(frame)


def package_facts(report: PackageReport) -> pd.DataFrame:
    """What a package holds, as (field, value) rows for the import preview."""
    meta = report.metadata or {}

    def get(key: str) -> Any:
        value = meta.get(key)
        return "–" if value is None or value == "" else value

    years = meta.get("years")
    patients = meta.get("patients")
    rows = [
        ("Simulation", f"{get('name')} ({get('sim_id')})"),
        ("Protocol", f"{get('protocol_name')} {get('protocol_version')}".strip()),
        ("Patients", f"{patients:,}" if isinstance(patients, int) else get("patients")),
        ("Years", f"{years:g}" if isinstance(years, int | float) else get("years")),
        ("Seed", get("seed")),
        ("Simulated on", str(get("created_utc"))),
        ("Created by", report.created_by or "–"),
        ("Package created", str(report.created_date or "–")),
        ("APE version", report.ape_version or "–"),
        ("Engine version", get("engine_version")),
        ("Format", report.format or "–"),
        ("Size", fmt_bytes(report.size) if report.size is not None else "–"),
        ("SHA-256", report.sha256 or "–"),
    ]
    return literal_frame(
        pd.DataFrame(
            [(field, str(value)) for field, value in rows], columns=["field", "value"]
        ).set_index("field")
    )


def added_protocol(info: api.ProtocolInfo, filename: str) -> str:
    """What to say (Markdown) when a protocol was added: its name and the key it was saved
    under, and, when that is not the key its file name asked for, that the protocol already
    there was kept."""
    said = f"Added {literal(info.name)} {literal(info.version)} as {code(info.key)}."
    wanted = api.protocol_key(filename)
    if info.key != wanted:
        said += (
            f" A different protocol is already saved as {code(wanted)}; it was kept, and "
            f"this one was saved as {code(info.key)}."
        )
    return said


def now_utc() -> datetime:
    from datetime import UTC

    return datetime.now(UTC).replace(microsecond=0)
