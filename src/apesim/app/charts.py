"""Plotly figures for the app: each draws one DataFrame from `apesim.analysis` as it is.

Every chart has a title that says what it shows and axis titles with units (ETDRS letters,
months, weeks); no legends for a single series, no decoration. Plotly reads tags such as
`<a href>` and `<b>` in trace names, so a simulation's name goes through `_plain` first.
"""

from __future__ import annotations

import html

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from apesim.api import STATES
from apesim.text import printable

PALETTE = ("#1f5fa8", "#d9730d", "#2a9d6f", "#b23a48", "#6b4fa3", "#8c6d1f")
BASELINE, FINAL = "#9aa5b1", "#1f5fa8"
MONTHS = "Months since enrolment"
LETTERS = "ETDRS letters"
LEGEND = {
    "orientation": "h",
    "yanchor": "bottom",
    "y": 1.0,
    "xanchor": "left",
    "x": 0,
    "traceorder": "normal",
}


def _layout(fig: go.Figure, title: str, x: str, y: str, *, legend: bool = False) -> go.Figure:
    fig.update_layout(
        title={"text": title},
        xaxis_title=x,
        yaxis_title=y,
        showlegend=legend,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend=LEGEND,
        hovermode="x unified",
    )
    return fig


def _plain(text: str) -> str:
    """Text from a simulation for a Plotly trace name or label: printable, its tags and
    entities escaped so that it shows as written (never a link or formatting)."""
    return html.escape(printable(text), quote=False)


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def mean_vision(curves: pd.DataFrame, title: str | None = None) -> go.Figure:
    """Mean vision over time with its 95 % confidence band; one line per `simulation`
    if that column is present (from `analysis.combine_curves`)."""
    fig = go.Figure()
    groups: list[tuple[str, pd.DataFrame]] = (
        [(str(label), frame) for label, frame in curves.groupby("simulation", sort=False)]
        if "simulation" in curves
        else [("Mean vision", curves)]
    )
    for i, (label, frame) in enumerate(groups):
        colour = PALETTE[i % len(PALETTE)]
        band_x = [*frame["month"], *frame["month"][::-1]]
        band_y = [*frame["ci_high"], *frame["ci_low"][::-1]]
        fig.add_trace(
            go.Scatter(
                x=band_x,
                y=band_y,
                fill="toself",
                fillcolor=_rgba(colour, 0.18),
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                name=f"{_plain(label)}: 95 % CI",
            )
        )
        fig.add_trace(
            go.Scatter(
                x=frame["month"],
                y=frame["mean"],
                mode="lines",
                line={"color": colour, "width": 2},
                name=_plain(label),
                customdata=frame[["patients", "ci_low", "ci_high"]],
                hovertemplate="%{y:.1f} letters (95 % CI %{customdata[1]:.1f}–"
                "%{customdata[2]:.1f}), %{customdata[0]:,} patients",
            )
        )
    return _layout(
        fig,
        title or "Mean vision over time, with 95 % confidence band",
        MONTHS,
        f"Mean vision ({LETTERS})",
        legend=len(groups) > 1,
    )


def vision_distribution(dist: pd.DataFrame, bin_width: int = 5) -> go.Figure:
    """Baseline and final vision as overlaid histograms (share of patients per bin)."""
    fig = go.Figure()
    for measure, colour in (("Baseline", BASELINE), ("Final", FINAL)):
        frame = dist[dist["measure"] == measure]
        fig.add_trace(
            go.Bar(
                x=frame["letters"] + bin_width / 2,
                y=100 * frame["share"],
                name=measure,
                marker_color=colour,
                customdata=frame[["letters", "patients"]],
                hovertemplate=f"{measure}: %{{customdata[0]}}–%{{customdata[0]}}+{bin_width - 1}"
                " letters, %{customdata[1]:,} patients (%{y:.1f} %)<extra></extra>",
            )
        )
    fig.update_layout(barmode="group", bargap=0.15, bargroupgap=0.0)
    fig = _layout(
        fig,
        "Vision at baseline and at the end",
        f"Vision ({LETTERS}, {bin_width}-letter bins)",
        "Patients (%)",
        legend=True,
    )
    fig.update_layout(hovermode="closest")
    return fig


def vision_change(categories: pd.DataFrame) -> go.Figure:
    """Share gaining ≥15, within 15, and losing ≥15 letters, as stacked horizontal bars."""
    colours = {
        "Gained ≥15 letters": "#2a9d6f",
        "Within 15 letters": "#c9d1d9",
        "Lost ≥15 letters": "#b23a48",
    }
    fig = go.Figure()
    for category, colour in colours.items():
        frame = categories[categories["category"] == category]
        fig.add_trace(
            go.Bar(
                y=frame["when"],
                x=100 * frame["share"],
                orientation="h",
                name=category,
                marker_color=colour,
                text=[f"{100 * s:.1f} %" if s >= 0.06 else "" for s in frame["share"]],
                textposition="inside",
                insidetextanchor="middle",
                textangle=0,
                hovertemplate=f"{category}: %{{x:.1f}} %<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig = _layout(
        fig, "Patients gaining or losing 15 letters or more", "Patients (%)", "", legend=True
    )
    fig.update_layout(
        hovermode="closest",
        legend={"orientation": "h", "yanchor": "top", "y": -0.25, "xanchor": "left", "x": 0},
    )
    fig.update_xaxes(range=[0, 100])
    return fig


def injections_mean(means: pd.DataFrame) -> go.Figure:
    """Mean injections per patient in each year of treatment."""
    fig = go.Figure(
        go.Bar(
            x=means["year"],
            y=means["mean"],
            marker_color=PALETTE[0],
            text=[f"{m:.1f}" for m in means["mean"]],
            textposition="outside",
            customdata=means[["patients"]],
            hovertemplate="Year %{x}: %{y:.2f} injections per patient "
            "(%{customdata[0]:,} patients)<extra></extra>",
        )
    )
    fig = _layout(fig, "Injections per patient in each year", "Year of treatment", "Injections")
    fig.update_xaxes(dtick=1)
    fig.update_layout(hovermode="closest")
    return fig


def injections_distribution(dist: pd.DataFrame) -> go.Figure:
    """How many injections patients had in each year (share of the year's patients)."""
    fig = go.Figure()
    for i, (year, frame) in enumerate(dist.groupby("year")):
        total = frame["patients"].sum()
        fig.add_trace(
            go.Bar(
                x=frame["injections"],
                y=100 * frame["patients"] / total,
                name=f"Year {year}",
                marker_color=PALETTE[i % len(PALETTE)],
                customdata=frame[["patients"]],
                hovertemplate=f"Year {year}: %{{x}} injections, %{{customdata[0]:,}} patients "
                "(%{y:.1f} %)<extra></extra>",
            )
        )
    fig.update_layout(barmode="group")
    fig = _layout(
        fig,
        "Injections per patient per year: distribution",
        "Injections in the year",
        "Patients (%)",
        legend=True,
    )
    fig.update_xaxes(dtick=1)
    fig.update_layout(hovermode="closest")
    return fig


def treatment_intervals(intervals: pd.DataFrame) -> go.Figure:
    """Distribution of the time between consecutive injections."""
    fig = go.Figure(
        go.Bar(
            x=intervals["weeks"],
            y=100 * intervals["share"],
            marker_color=PALETTE[0],
            customdata=intervals[["intervals"]],
            hovertemplate="%{x} weeks: %{customdata[0]:,} intervals (%{y:.1f} %)<extra></extra>",
        )
    )
    fig = _layout(fig, "Time between injections", "Interval (weeks, rounded)", "Intervals (%)")
    fig.update_xaxes(dtick=2)
    fig.update_layout(hovermode="closest")
    return fig


def visits_per_year(visits: pd.DataFrame) -> go.Figure:
    """Mean visits per patient per year, injection and monitoring-only visits stacked."""
    fig = go.Figure()
    for kind, colour in (("Injection", PALETTE[0]), ("Monitoring only", "#9aa5b1")):
        frame = visits[visits["kind"] == kind]
        fig.add_trace(
            go.Bar(
                x=frame["year"],
                y=frame["per_patient"],
                name=f"{kind} visits",
                marker_color=colour,
                hovertemplate=f"Year %{{x}}: %{{y:.2f}} {kind.lower()} visits per patient"
                "<extra></extra>",
            )
        )
    fig.update_layout(barmode="stack")
    fig = _layout(
        fig, "Visits per patient in each year", "Year of treatment", "Visits", legend=True
    )
    fig.update_xaxes(dtick=1)
    fig.update_layout(hovermode="closest")
    return fig


def discontinuations(disc: pd.DataFrame) -> go.Figure:
    """Cumulative share of patients discontinued, by reason, over time."""
    fig = go.Figure()
    for i, (label, frame) in enumerate(disc.groupby("label", sort=False)):
        fig.add_trace(
            go.Scatter(
                x=frame["month"],
                y=100 * frame["share"],
                mode="lines",
                line={"color": PALETTE[(i + 1) % len(PALETTE)], "width": 2},
                name=str(label),
                customdata=frame[["patients"]],
                hovertemplate="%{y:.1f} % (%{customdata[0]:,} patients)",
            )
        )
    return _layout(
        fig,
        "Discontinuations by reason (cumulative)",
        MONTHS,
        "Patients discontinued (%)",
        legend=True,
    )


def patient(trajectory: pd.DataFrame, patient_id: int) -> go.Figure:
    """One patient's vision (with injections marked) above their disease state."""
    fig = make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.7, 0.3], vertical_spacing=0.06
    )
    fig.add_trace(
        go.Scatter(
            x=trajectory["month"],
            y=trajectory["vision"],
            mode="lines+markers",
            line={"color": PALETTE[0], "width": 2},
            marker={"size": 5},
            name="Vision",
            hovertemplate="Month %{x:.1f}: %{y} letters<extra></extra>",
        ),
        row=1,
        col=1,
    )
    injected = trajectory[trajectory["injected"]]
    fig.add_trace(
        go.Scatter(
            x=injected["month"],
            y=injected["vision"],
            mode="markers",
            marker={"symbol": "triangle-down", "size": 10, "color": PALETTE[1]},
            name="Injection",
            hovertemplate="Injection at month %{x:.1f}<extra></extra>",
        ),
        row=1,
        col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=trajectory["month"],
            y=trajectory["state"],
            mode="lines+markers",
            line={"shape": "hv", "color": "#6b7785", "width": 1.5},
            marker={"size": 5},
            name="Disease state",
            hovertemplate="Month %{x:.1f}: %{y}<extra></extra>",
        ),
        row=2,
        col=1,
    )
    fig.update_yaxes(title_text=f"Vision ({LETTERS})", row=1, col=1)
    fig.update_yaxes(
        title_text="State", categoryorder="array", categoryarray=list(STATES), row=2, col=1
    )
    fig.update_xaxes(title_text=MONTHS, row=2, col=1)
    fig.update_layout(
        title={"text": f"Patient {patient_id}: vision, injections and disease state"},
        height=520,
        margin={"l": 10, "r": 10, "t": 60, "b": 10},
        legend=LEGEND,
        hovermode="closest",
    )
    return fig


def sweep_distribution(values: list[float], label: str) -> go.Figure:
    """One outcome across a sweep's draws: a histogram of the draws' values."""
    fig = go.Figure(go.Histogram(x=values, marker_color=PALETTE[0], nbinsx=30, name=label))
    fig = _layout(fig, f"{label}: distribution across draws", label, "Draws")
    fig.update_layout(hovermode="closest")
    return fig


def tornado(parameters: list[str], rhos: list[float | None], label: str) -> go.Figure:
    """How strongly each varied parameter moves an outcome (Spearman's rank correlation),
    the strongest at the top."""
    shown = [0.0 if r is None else r for r in rhos]
    colours = [PALETTE[0] if r >= 0 else PALETTE[1] for r in shown]
    fig = go.Figure(
        go.Bar(
            x=shown[::-1],
            y=[_plain(p) for p in parameters[::-1]],
            orientation="h",
            marker_color=colours[::-1],
        )
    )
    fig = _layout(fig, f"{label}: sensitivity to each parameter", "Spearman's rho", "")
    fig.update_xaxes(range=[-1, 1])
    fig.update_layout(hovermode="closest")
    return fig


def sweep_scatter(x: list[float], y: list[float], parameter: str, label: str) -> go.Figure:
    """An outcome against one varied parameter, one point per draw."""
    fig = go.Figure(go.Scatter(x=x, y=y, mode="markers", marker={"color": PALETTE[0], "size": 7}))
    fig = _layout(fig, f"{label} against {_plain(parameter)}", _plain(parameter), label)
    fig.update_layout(hovermode="closest")
    return fig
