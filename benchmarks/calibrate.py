"""`make calibrate`: model 2.0 against its anchors (docs/calibration.md). Simulates each
shipped protocol once (20,000 patients, seed 2024, all enrolled on day 0) and prints the
anchor table in Markdown: source, published value, APE's value, tolerance, inside or the
reason it cannot be. Not a test and not timed; the tests check the same anchors.
"""

from __future__ import annotations

import argparse
import time

from apesim.calibration import evaluate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--patients", type=int, default=20_000)
    parser.add_argument("--seed", type=int, default=2024)
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


if __name__ == "__main__":
    main()
