"""Memory stays bounded on hostile packages: one process inspects every case of the corpus in
turn, in process (the reader's own child would hide its memory from this count), and its
peak resident memory stays under the target of 600 MB. The cases that decode to gigabytes
are refused from the footer, the page headers and the ZIP's headers, before anything is
allocated."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from pathlib import Path

from tests.package.corpus import CASES

PEAK_LIMIT = 600 * 1024 * 1024

_CHILD = """
import json, pickle, resource, sys
from pathlib import Path
from apesim.package import inspect_package

cases = pickle.loads(Path(sys.argv[1]).read_bytes())  # [(name, file, limits)]
findings = {}
for name, path, limits in cases:
    report = inspect_package(Path(path), limits=limits, isolate=False)
    findings[name] = None if report.error is None else report.error.code
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"peak": peak * 1024, "findings": findings}))
"""


def test_every_corpus_case_is_refused_with_bounded_memory(
    valid_package: bytes, tmp_path: Path
) -> None:
    cases = []
    for case in CASES:  # built here, so that building them is not counted
        path = tmp_path / f"{case.name}.zip"
        path.write_bytes(case.build(valid_package))
        cases.append((case.name, str(path), case.limits))
    listing = tmp_path / "cases.pickle"
    listing.write_bytes(pickle.dumps(cases))
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(listing)],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["findings"] == {c.name: c.code for c in CASES}
    assert result["peak"] < PEAK_LIMIT, f"peak {result['peak'] / 2**20:.0f} MiB"
