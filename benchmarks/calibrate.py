"""`make calibrate`: model 2.0 against its anchors (docs/calibration.md). Simulates each
shipped protocol once (20,000 patients, seed 2024, all enrolled on day 0) and prints the
anchor table in Markdown: source, published value, APE's value, tolerance, inside or the
reason it cannot be. Not a test and not timed; the tests check the same anchors.
"""

from __future__ import annotations

import argparse
import time

from apesim.calibration import RUN_YEARS, evaluate, simulate_protocol
from apesim.results.outcomes import outcomes_at

TIMES = ((365, "1 year"), (730, "2 years"), (1826, "5 years"))


def _f(value: float | None, digits: int = 1) -> str:
    return "–" if value is None else f"{value:+.{digits}f}"


def outcome_table(patients: int, seed: int) -> None:
    """All-patient and on-treatment results of every protocol (5 years each)."""
    print(
        "\n| protocol | at | all patients: n | letters | on treatment: n | letters "
        "| injections | discontinued | dead |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for name in RUN_YEARS:
        run = simulate_protocol(name, patients, seed, 5.0)
        for days, label in TIMES:
            o = outcomes_at(run.patients, run.visits, run.years, days)
            inj = "–" if o.injections_mean is None else f"{o.injections_mean:.1f}"
            stop = "–" if o.discontinued_share is None else f"{100 * o.discontinued_share:.0f}%"
            dead = "–" if o.dead_share is None else f"{100 * o.dead_share:.0f}%"
            print(
                f"| `{name}` | {label} | {o.all_patients.n:,} | {_f(o.all_patients.mean_change)} "
                f"| {o.on_treatment.n:,} | {_f(o.on_treatment.mean_change)} | {inj} | {stop} "
                f"| {dead} |"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument(
        "--outcomes", action="store_true", help="also all-patient vs on-treatment, 5 years"
    )
    args = parser.parse_args()
    started = time.perf_counter()
    results = evaluate(args.patients, args.seed)
    print(f"{args.patients:,} patients a protocol, seed {args.seed}\n")
    print("| study | what | protocol | published | APE | tolerance | inside | source |")
    print("|---|---|---|---:|---:|---:|---|---|")
    for r in results:
        a = r.anchor
        value = "–" if r.value is None else f"{r.value:.1f}"
        verdict = "yes" if r.inside else f"no: {a.gap}" if a.gap else "**no**"
        print(
            f"| {a.study} | {a.what} | `{a.protocol}` | {a.published:g} {a.unit} | {value} | "
            f"±{a.tolerance:g} | {verdict} | {a.source} |"
        )
    inside = sum(r.inside for r in results)
    print(
        f"\n{inside} of {len(results)} anchors inside their tolerance "
        f"({time.perf_counter() - started:.0f} s)"
    )
    if args.outcomes:
        outcome_table(args.patients, args.seed)


if __name__ == "__main__":
    main()
