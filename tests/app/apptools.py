"""Helpers shared by the app tests: page paths, finding elements, running small simulations."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
from markdown_it import MarkdownIt
from streamlit.testing.v1 import AppTest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord

APP = Path(__file__).resolve().parents[2] / "src" / "apesim" / "app"
HOME = APP / "Home.py"
PROTOCOLS = "pages/1_Protocol_Manager.py"
RUN = "pages/2_Run_Simulation.py"
OVERVIEW = "pages/3_Analysis_Overview.py"
COMPARE = "pages/4_Compare.py"
SWEEPS = "pages/5_Sweeps.py"
TIMEOUT = 60  # seconds per script run: generous for a loaded machine

OpenPage = Callable[..., AppTest]


def run_small(
    ws: Workspace,
    name: str = "small",
    protocol: str = "v1_aflibercept_treat_and_extend",
    seed: int = 7,
) -> SimulationRecord:
    """150 patients × 2 years, through the API."""
    return api.run_simulation(
        ws, protocol, SimulationParameters(patients=150, years=2.0, seed=seed), name=name
    )


def button(at: AppTest, label: str) -> Any:
    """The one button (or form submit button) with this label."""
    found = [b for b in at.button if b.label == label]
    assert len(found) == 1, f"{len(found)} buttons {label!r} in {[b.label for b in at.button]}"
    return found[0]


def manage(at: AppTest, choice: str) -> AppTest:
    """Protocol Manager → Manage → `choice`."""
    button(at, "Manage").click().run()
    assert not at.exception, at.exception
    button(at, choice).click().run()
    assert not at.exception, at.exception
    return at


_MARKDOWN = MarkdownIt("commonmark").enable(["table", "strikethrough"])


def rendered(markdown: str) -> str:
    """A Markdown body rendered as the app renders it (CommonMark + GFM tables), as HTML."""
    return _MARKDOWN.render(markdown)


def visible(markdown: Any) -> str:
    """What a reader sees of a Markdown body: rendered, tags dropped, entities decoded."""
    return html.unescape(re.sub(r"<[^>]+>", "", rendered(str(markdown)))).strip()


def visible_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """An `st.table` frame (Markdown in every cell, index label and header) as shown."""

    def cell(value: Any) -> Any:
        return visible(value) if isinstance(value, str) else value

    out = frame.map(cell)
    out.index = out.index.map(cell)
    out.columns = [cell(c) for c in frame.columns]
    return out


def texts(at: AppTest) -> str:
    """The text a reader sees in every markdown, info, warning, error, success and caption
    element (their Markdown rendered)."""
    parts: list[str] = []
    for kind in ("markdown", "info", "warning", "error", "success", "caption"):
        parts += [visible(e.value) for e in getattr(at, kind)]
    return "\n".join(parts)


def charts(at: AppTest) -> list[Any]:
    return list(at.get("plotly_chart"))


def open_tab(at: AppTest, tab: str) -> AppTest:
    """Select a tab of the Analysis Overview (its tabs run only when selected)."""
    at.session_state["overview_tab"] = tab
    at.run()
    assert not at.exception, at.exception
    return at
