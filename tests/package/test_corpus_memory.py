"""Memory stays bounded on hostile packages: one process inspects every case of the corpus in
turn, in process (the reader's own child would hide its memory from this count), and its
peak resident memory stays under the target of 600 MB. The cases that decode to gigabytes
are refused from the footer, the page headers and the ZIP's headers, before anything is
allocated."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.package.corpus import CASES

PEAK_LIMIT = 600 * 1024 * 1024

_CHILD = """
import json, resource, sys
from apesim.package import inspect_package
from tests.package.corpus import CASES

valid = open(sys.argv[1], "rb").read()
findings = {}
for case in CASES:
    report = inspect_package(case.build(valid), limits=case.limits, isolate=False)
    findings[case.name] = None if report.error is None else report.error.code
peak = max(
    resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
    resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss,
)
print(json.dumps({"peak": peak * 1024, "findings": findings}))
"""


def test_every_corpus_case_is_refused_with_bounded_memory(
    valid_package: bytes, tmp_path: Path
) -> None:
    package = tmp_path / "valid.zip"
    package.write_bytes(valid_package)
    root = Path(__file__).resolve().parents[2]
    done = subprocess.run(
        [sys.executable, "-c", _CHILD, str(package)],
        capture_output=True,
        text=True,
        cwd=root,
        check=True,
    )
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["findings"] == {c.name: c.code for c in CASES}
    assert result["peak"] < PEAK_LIMIT, f"peak {result['peak'] / 2**20:.0f} MiB"
