"""Benchmark of differential packages (issue 12): the size of a differential package as a
share of the full package of the same simulation, and the seconds to import each.

    python benchmarks/bench_differential.py [--quick] [--patients 100000] [--repeat N]

The base is PATIENTS x 5 years of treat-and-extend, seed 42; the variants, all seed 42:
(a) 10% more patients, (b) the same with 6 years, (c) a protocol variant (the longest
interval 18 weeks rather than 16, which touches only the patients who reach it). Import
seconds are the best of `--repeat` imports, each into a fresh workspace holding the base
(the base's own import not counted). Target (a): at most 12% of the full package.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_differential, export_package, import_package
from apesim.protocol import parse_protocol
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace

PROTOCOL = "aflibercept_treat_and_extend"
CREATED = datetime(2026, 11, 30, tzinfo=UTC)
TARGET_A = 0.12


def _variant_protocol() -> api.LoadedProtocol:
    text = shipped_protocols()[PROTOCOL]
    assert "max_interval_days: 112" in text
    return parse_protocol(text.replace("max_interval_days: 112", "max_interval_days: 126"), "v")


def _import_seconds(base_package: Path, package: Path, root: Path, repeat: int) -> float:
    best = float("inf")
    for i in range(repeat):
        ws = Workspace(root / f"import-{package.stem}-{i}")
        import_package(ws, base_package)
        start = time.perf_counter()
        import_package(ws, package)
        best = min(best, time.perf_counter() - start)
        shutil.rmtree(ws.root)
    return best


def _installed(ws: Workspace, sim_id: str) -> dict[str, str]:
    folder = ws.path(ws.get(sim_id))
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in folder.iterdir()
        if p.is_file() and p.name != "audit_log.json"
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 patients, one repeat")
    parser.add_argument("--patients", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    patients = 10_000 if args.quick else args.patients
    repeat = 1 if args.quick else args.repeat

    root = Path(tempfile.mkdtemp(prefix="ape-bench-differential-"))
    try:
        ws = Workspace(root / "origin")
        base = api.run_simulation(
            ws, PROTOCOL, SimulationParameters(patients, 5.0, 42), name="base"
        )
        base_package = root / "base.zip"
        export_package(ws, base.sim_id, base_package, created=CREATED)
        more = patients + patients // 10
        variants = {
            "(a) +10% patients": (PROTOCOL, SimulationParameters(more, 5.0, 42)),
            "(b) +10% patients, 6 years": (PROTOCOL, SimulationParameters(more, 6.0, 42)),
            "(c) protocol variant": (_variant_protocol(), SimulationParameters(patients, 5.0, 42)),
        }
        print(f"base: {patients:,} patients x 5 years ({base_package.stat().st_size:,} bytes)")
        header = (
            f"{'variant':<28} {'full':>12} {'differential':>13} {'share':>7} "
            f"{'changed':>8} {'added':>7} {'import full':>12} {'import diff':>12}  same files"
        )
        print(header)
        shares = {}
        for label, (protocol, params) in variants.items():
            sim = api.run_simulation(ws, protocol, params, name=label)
            full = export_package(ws, sim.sim_id, root / f"full-{sim.sim_id}.zip", created=CREATED)
            made = export_differential(
                ws, sim.sim_id, root / f"diff-{sim.sim_id}.zip", base.sim_id,
                created=CREATED, max_share=1.0,
            )  # fmt: skip
            assert made.differential and full.path is not None and made.result.path is not None
            share = made.result.size / full.size
            shares[label] = share
            full_s = _import_seconds(base_package, full.path, root, repeat)
            diff_s = _import_seconds(base_package, made.result.path, root, repeat)
            by_full, by_diff = Workspace(root / "check-full"), Workspace(root / "check-diff")
            import_package(by_full, full.path)
            import_package(by_diff, base_package)
            import_package(by_diff, made.result.path)
            same = _installed(by_full, sim.sim_id) == _installed(by_diff, sim.sim_id)
            shutil.rmtree(by_full.root)
            shutil.rmtree(by_diff.root)
            print(
                f"{label:<28} {full.size:>12,} {made.result.size:>13,} {share:>7.1%} "
                f"{made.changed:>8,} {made.added:>7,} {full_s:>11.2f}s {diff_s:>11.2f}s  {same}"
            )
        a = shares["(a) +10% patients"]
        print(
            f"target (a) at most {TARGET_A:.0%} of the full package: {a:.1%} "
            f"{'holds' if a <= TARGET_A else 'MISSED'}"
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
