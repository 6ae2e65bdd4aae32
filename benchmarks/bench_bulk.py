"""Benchmark of many packages at once (issue 12): `ape import` of N packages one process
each against one `import_many` of the folder and of a batch, and the bytes `ape inspect`
reads of a remote package (moto's S3 on loopback).

    python benchmarks/bench_bulk.py [--packages 30]

The N packages are tiny simulations (2 patients x 6 months), so the figures are the fixed
cost per package: validation in the reader's worker, atomic install, and (one process
each) the interpreter's start. Figures go to docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from apesim import api
from apesim.bulk import export_many, import_many, select_simulations
from apesim.engine.simulate import SimulationParameters
from apesim.workspace import Workspace

APE = str(Path(sys.executable).with_name("ape"))
CREATED = datetime(2026, 1, 2, tzinfo=UTC)


def _timed(work: object) -> float:
    start = time.perf_counter()
    work()  # type: ignore[operator]
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--packages", type=int, default=30)
    n = parser.parse_args().packages
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ws = Workspace(root / "source")
        for seed in range(n):
            params = SimulationParameters(patients=2, years=0.5, seed=seed)
            api.run_simulation(ws, "prn_monthly", params)
        folder = root / "packages"
        folder.mkdir()
        records = select_simulations(ws, [], every=True)
        export_many(ws, records, str(folder), created=CREATED)
        batch = root / "all.apebatch"
        export_many(ws, records, str(batch), created=CREATED)

        def one_process_each() -> None:
            env = {**os.environ, "APE_WORKSPACE": str(root / "each")}
            for path in sorted(folder.glob("*.zip")):
                subprocess.run([APE, "import", str(path)], env=env, check=True, capture_output=True)

        each = _timed(one_process_each)
        from_folder = _timed(lambda: import_many(Workspace(root / "folder"), [str(folder)]))
        from_batch = _timed(lambda: import_many(Workspace(root / "batch"), [str(batch)]))
        again = _timed(lambda: import_many(Workspace(root / "batch"), [str(batch)]))
        print(f"{n} packages of 2 patients x 6 months ({batch.stat().st_size:,} byte batch)")
        print(f"  ape import, one process each: {each:6.2f} s  ({each / n:.3f} s a package)")
        print(f"  import_many of the folder:    {from_folder:6.2f} s  ({from_folder / n:.3f} s)")
        print(f"  import_many of the batch:     {from_batch:6.2f} s  ({from_batch / n:.3f} s)")
        print(f"  the batch again (duplicates): {again:6.2f} s  ({again / n:.3f} s)")
        print(f"  one process each / bulk: {each / from_folder:.2f}x")


if __name__ == "__main__":
    main()
