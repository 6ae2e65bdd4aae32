"""Every summary statistic's definition, in one place: docs/model.md's table of definitions
and the package README's are both made from `DEFINITIONS` (tests/results/test_definitions.py
checks docs/model.md holds `markdown()`; `APE_UPDATE_DOCS=1` rewrites it).

The text is Markdown with code in backticks; the README shows it as plain text.
"""

from __future__ import annotations

import textwrap

# (statistic, definition): summary_stats.json's keys as computed by `results/stats.py`.
DEFINITIONS: tuple[tuple[str, str], ...] = (
    (
        "`patients`, `visits`",
        "rows of the two tables",
    ),
    (
        "follow-up of a patient",
        "from enrolment to the discontinuation day if discontinued, else the death day if died, "
        "else `H`",
    ),
    (
        "`patient_years`",
        "total follow-up days / 365.25",
    ),
    (
        "`injections.total`",
        "injected visits",
    ),
    (
        "`injections.per_patient_year`",
        "`total × 365.25 / total follow-up days`",
    ),
    (
        "observed at one year",
        "`enrol_day + 365 ≤ H` and not dead by then (`death_day > enrol_day + 365`). Discontinued"
        " patients **are** observed: their last vision is carried forward",
    ),
    (
        "`injections.year1_patients`",
        "patients observed at one year",
    ),
    (
        "`injections.year1_mean`",
        "mean, over patients observed at one year, of injections at visits with `rel < 365`",
    ),
    (
        "`vision.year1`",
        "over patients observed at one year: the vision at the last visit with `rel ≤ 365` (last "
        "observation carried forward)",
    ),
    (
        "`vision.baseline`, `vision.end`",
        "over all patients: baseline vision, and final vision (the last visit's, also for "
        "patients who stopped or died)",
    ),
    (
        "`n`, `mean`, `sd`, `median`",
        "count; mean; sample standard deviation (divisor `n − 1`, null when `n < 2`); median "
        "(midpoint of the two middle values when `n` is even); null when `n = 0`",
    ),
    (
        "`vision_change.year1`",
        "over patients observed at one year, `vision at one year − baseline`: `mean`, "
        "`gain_15_share` (share with a change `≥ +15` letters) and `loss_15_share` (`≤ −15`)",
    ),
    (
        "`vision_change.end`",
        "the same over all patients with `final − baseline`",
    ),
    (
        "`discontinuation.total`, `.rate`",
        "patients with a discontinuation day; divided by `patients`",
    ),
    (
        "`discontinuation.by_reason`",
        "count per reason, every reason listed (zeros included), sorted by name",
    ),
    (
        "`deaths`",
        "patients with a death day (within the horizon, before any discontinuation)",
    ),
    (
        "`mean_treatment_interval_days`",
        "the days between consecutive injections of the same patient (visits without injection in"
        " between are skipped), averaged over all such pairs of all patients; null when there is "
        "none",
    ),
)

HORIZON = (
    "`H` is the horizon: `round(years × 365.25)` days; for each patient, "
    "`rel = day − enrol_day` of a visit."
)

UNDEFINED = (
    "Statistics that cannot be computed (no patient observed at one year, no follow-up) are `null`."
)

BEGIN = "<!-- statistics: generated from src/apesim/results/definitions.py -->"
END = "<!-- end of statistics -->"


def markdown() -> str:
    """The definitions as docs/model.md shows them, between its two markers."""
    rows = "\n".join(f"| {name} | {text} |" for name, text in DEFINITIONS)
    return f"{BEGIN}\n| statistic | definition |\n|---|---|\n{rows}\n{END}"


def plain(text: str) -> str:
    """Markdown code and emphasis marks taken out, for a plain-text file."""
    return text.replace("`", "").replace("**", "")


def plain_text(width: int = 92) -> str:
    """The definitions as the README shows them: each statistic, then its definition
    indented under it."""
    out = [textwrap.fill(plain(HORIZON), width)]
    for name, text in DEFINITIONS:
        out.append(plain(name))
        out.append(
            textwrap.fill(plain(text), width, initial_indent="    ", subsequent_indent="    ")
        )
    out.append(textwrap.fill(plain(UNDEFINED), width))
    return "\n".join(out)
