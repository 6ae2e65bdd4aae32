"""A simulation's report as one self-contained HTML file (`ape report`), for a reviewer who
has no Python: the headline results, the Analysis Overview's charts, the summary statistics,
the protocol, the audit trail and the validation checks.

Everything is inside the file: plotly.js is inlined once, each chart is its figure's JSON,
and a Content-Security-Policy forbids the page any request (no fonts, images, scripts or
connections from elsewhere), so opening it asks nothing of any network. Every text from the
simulation is escaped (and its control characters shown as escapes) before it is written.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pyarrow as pa

from apesim import __version__, analysis
from apesim.audit import AuditEvent
from apesim.results.summary import STATISTICS, Summary
from apesim.text import printable

KEY_STATS = analysis.HEADLINE_STATISTICS
# No request of any kind leaves the page: inline scripts and styles only, images as data.
CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'unsafe-inline'; img-src data:; font-src data:"
)
_STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1100px;
       color: #1d2733; padding: 0 1rem; }
h1 { margin-bottom: 0.2rem; } .caption { color: #5b6775; margin-top: 0; }
.metrics { display: flex; gap: 1rem; flex-wrap: wrap; margin: 1.5rem 0; }
.metric { border: 1px solid #d8dee6; border-radius: 8px; padding: 0.7rem 1rem;
          min-width: 170px; }
.metric .label { color: #5b6775; font-size: 0.85rem; }
.metric .value { font-size: 1.6rem; font-weight: 600; }
table { border-collapse: collapse; margin: 0.5rem 0 1.5rem; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #e3e8ee; padding: 0.3rem 0.7rem; text-align: left;
         vertical-align: top; }
pre { background: #f5f7fa; padding: 1rem; overflow-x: auto; font-size: 0.85rem; }
.passed { color: #1e7a4f; } .failed { color: #b23a48; font-weight: 600; }
.notrun { color: #8a94a0; }
.grid { display: grid; grid-template-columns: 1fr 1fr; gap: 1rem; }
.banner { background: #fdf0f1; border: 1px solid #b23a48; padding: 0.7rem 1rem;
          border-radius: 8px; }
"""


@dataclass(frozen=True)
class ReportCheck:
    """One validation check as the report shows it."""

    label: str
    passed: bool | None
    message: str = ""


@dataclass(frozen=True)
class ReportSource:
    """What a report shows: a stored simulation's or a package's."""

    name: str
    sim_id: str
    protocol_name: str
    protocol_version: str
    protocol_fingerprint: str
    patients_count: int
    years: float
    seed: int
    created_utc: str
    created_by: str
    origin: str  # where it was read from, in words
    summary: Summary | None  # None for an invalid package
    patients: pa.Table | None  # None for an invalid package (no figures)
    visits: pa.Table | None  # at least analysis.VISIT_COLUMNS
    protocol_text: str
    audit_events: Sequence[AuditEvent]
    checks: Sequence[ReportCheck]
    valid: bool
    signature: str | None = None  # the signatures' verdict, one line (a package's)


def _e(text: Any) -> str:
    """Text from the simulation, safe in HTML: controls as visible escapes, then escaped."""
    return html.escape(printable(text))


def _table(frame: pd.DataFrame, index: bool = False) -> str:
    shown = frame.map(lambda v: printable(v) if isinstance(v, str) else v)
    return str(shown.to_html(index=index, escape=True, border=0, na_rep="–"))


def _charts(src: ReportSource) -> list[tuple[str, Any]]:
    """The Analysis Overview's charts: (section, figure)."""
    from apesim.app import charts  # Plotly figures, shared with the app

    years, patients, visits, summary = src.years, src.patients, src.visits, src.summary
    assert patients is not None and visits is not None and summary is not None
    patterns = analysis.treatment_patterns(patients, visits, years)
    per_year = patterns.injections_per_year
    return [
        ("vision", charts.mean_vision(analysis.mean_vision_over_time(patients, visits, years))),
        ("vision", charts.vision_distribution(analysis.vision_distribution(patients))),
        ("vision", charts.vision_change(analysis.vision_change_categories(summary))),
        ("treatment", charts.injections_mean(analysis.mean_injections_per_year(per_year))),
        ("treatment", charts.injections_distribution(per_year)),
        ("treatment", charts.treatment_intervals(patterns.treatment_intervals)),
        ("treatment", charts.visits_per_year(patterns.visits_per_year)),
        (
            "treatment",
            charts.discontinuations(analysis.discontinuations_over_time(patients, years)),
        ),
    ]


def _figure(fig: Any, number: int) -> str:
    fig.update_layout(template="plotly_white")
    return str(
        fig.to_html(
            full_html=False,
            include_plotlyjs=False,
            include_mathjax=False,
            div_id=f"chart-{number}",
            config={"displaylogo": False, "responsive": True},
        )
    )


def _signature(verdict: str | None) -> str:
    return "" if verdict is None else f'<p class="signature">Signatures: {_e(verdict)}</p>'


def _checks(checks: Sequence[ReportCheck]) -> str:
    rows = []
    for check in checks:
        marks = {True: ("passed", "✓ passed"), False: ("failed", "✗ failed")}
        css, mark = marks.get(check.passed, ("notrun", "– not run"))  # type: ignore[arg-type]
        rows.append(
            f'<tr><td>{_e(check.label)}</td><td class="{css}">{mark}</td>'
            f"<td>{_e(check.message)}</td></tr>"
        )
    return (
        "<table><tr><th>check</th><th>result</th><th>details</th></tr>" + "".join(rows) + "</table>"
    )


def render_report(src: ReportSource) -> str:
    """The report's HTML: one file, nothing fetched."""
    from plotly.offline import get_plotlyjs

    script = f"<script>{get_plotlyjs()}</script>" if src.valid else ""
    made = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    title = f"""
<h1>{_e(src.name)}</h1>
<p class="caption">{_e(src.protocol_name)} {_e(src.protocol_version)} ·
{src.patients_count:,} patients × {src.years:g} years · seed {src.seed} · simulated
{_e(src.created_utc)} by {_e(src.created_by)} · <code>{_e(src.sim_id)}</code></p>
<p class="caption">{_e(src.origin)} · report made {made} by APE {_e(__version__)}</p>
"""
    if not src.valid or src.summary is None:
        body = f"""{title}
<p class="banner">This package did not pass every check below: its results, tables and
files are not shown (nothing in it can be trusted).</p>
<h2>Checks</h2>
{_signature(src.signature)}{_checks(src.checks)}
"""
    else:
        body = title + _results(src, src.summary)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(src.name)} · APE report</title>
<style>{_STYLE}</style>
{script}
</head><body>{body}</body></html>
"""


def _results(src: ReportSource, summary: Summary) -> str:
    """The headline, the charts, the statistics, the protocol, the trail and the checks."""
    metrics = "".join(
        f'<div class="metric" data-stat="{html.escape(key)}"><div class="label">{_e(title)}</div>'
        f'<div class="value">{_e(STATISTICS[key].shown(summary))}</div></div>'
        for key, title in KEY_STATS
    )
    sections: dict[str, list[str]] = {"vision": [], "treatment": []}
    for number, (section, fig) in enumerate(_charts(src)):
        sections[section].append(f"<div>{_figure(fig, number)}</div>")
    trail = analysis.audit_table(src.audit_events) if src.audit_events else pd.DataFrame()
    return f"""
<h2>Headline results</h2>
<div class="metrics">{metrics}</div>
<h2>Vision outcomes</h2>
<div class="grid">{"".join(sections["vision"])}</div>
<h3>All patients and patients on treatment</h3>
{_table(analysis.outcomes_by_year(src.patients, src.visits, src.years))}
<h2>Treatment patterns</h2>
<div class="grid">{"".join(sections["treatment"])}</div>
<h2>Summary statistics</h2>
{_table(analysis.summary_table(summary))}
<h2>Protocol</h2>
<p>{_e(src.protocol_name)} {_e(src.protocol_version)}, fingerprint
<code>{_e(src.protocol_fingerprint)}</code></p>
<pre>{_e_block(src.protocol_text)}</pre>
<h2>Audit trail</h2>
{_table(trail) if len(trail) else "<p>No events.</p>"}
<h2>Checks</h2>
{_signature(src.signature)}{_checks(src.checks)}
"""


def _e_block(text: str) -> str:
    """A multi-line text (the protocol YAML): lines kept, anything else escaped."""
    return html.escape(printable(text, newlines=True))


__all__ = ["KEY_STATS", "ReportCheck", "ReportSource", "render_report"]
