"""Golden files of the format: a package of a fixed simulation, with only what legitimately
varies (ids, times, user, file hashes that embed the Parquet writer's version) masked.

A change here is a change of the format or of the engine's numbers. If it is intended,
regenerate with `APE_UPDATE_GOLDEN=1 pytest tests/package/test_golden.py`, review the diff,
and record it in docs/package-format.md's version history when the format changed.
"""

from __future__ import annotations

import io
import json
import os
import re
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package
from apesim.workspace import Workspace

GOLDEN = Path(__file__).parent / "golden"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _mask(text: str, sim_id: str) -> str:
    text = text.replace(sim_id, "<sim_id>")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z", "<time>", text)
    return re.sub(r"APE \d+\.\d+\.\d+,", "APE <version>,", text)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict[str, bytes]]:
    ws = Workspace(tmp_path_factory.mktemp("golden-ws"))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("APE_USER", "golden@example.org")
        record = api.run_simulation(
            ws,
            "v1_aflibercept_treat_and_extend",
            SimulationParameters(100, 2.0, 2024),
            name="golden",
        )
        sink = io.BytesIO()
        export_package(ws, record.sim_id, sink, created=CREATED)
    with zipfile.ZipFile(sink) as zf:
        return record.sim_id, {i.filename: zf.read(i) for i in zf.infolist()}


def _normalised(sim_id: str, files: dict[str, bytes]) -> dict[str, str]:
    manifest = json.loads(files["manifest.json"])
    manifest["sim_id"] = "<sim_id>"
    manifest["ape_version"] = "<version>"
    # These embed run times, the Parquet writer's version or the sim id.
    for name in (
        "data/metadata.parquet",
        "data/patients.parquet",
        "data/visits.parquet",
        "README.txt",
        "audit_log.json",
    ):
        manifest["files"][name]["sha256"] = "<sha256>"
        manifest["files"][name]["size"] = "<size>"
    return {
        "entries.txt": "\n".join(files) + "\n",
        "manifest.json": json.dumps(manifest, indent=2, sort_keys=True) + "\n",
        "summary_stats.json": files["summary_stats.json"].decode(),
        "parameters.json": files["parameters.json"].decode(),
        "README.txt": _mask(files["README.txt"].decode(), sim_id),
        "results_preview.csv": files["results_preview.csv"].decode(),
    }


def test_package_matches_golden_files(package: tuple[str, dict[str, bytes]]) -> None:
    actual = _normalised(*package)
    if os.environ.get("APE_UPDATE_GOLDEN"):
        GOLDEN.mkdir(exist_ok=True)
        for name, text in actual.items():
            (GOLDEN / name).write_text(text)
    for name, text in actual.items():
        assert text == (GOLDEN / name).read_text(), f"{name} differs from the golden file"


def test_readme_python_keeps_the_nullable_integer_columns(
    package: tuple[str, dict[str, bytes]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's Python lines, run as written beside the package's files: the columns
    with missing values (days of discontinuation and death, the next interval) come out as
    integers, not float64."""
    _, files = package
    for name, data in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(data)
    lines = files["README.txt"].decode().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Python"))
    snippet = []
    for line in lines[start + 1 :]:
        if not line.startswith("    "):
            break
        snippet.append(line[4:])
    monkeypatch.chdir(tmp_path)
    shown: dict[str, Any] = {}
    exec("\n".join(snippet), shown)
    patients, visits = shown["patients"], shown["visits"]
    assert patients["death_day"].isna().any() and visits["next_interval"].isna().any()
    for frame, column in (
        (patients, "discontinuation_day"),
        (patients, "death_day"),
        (visits, "next_interval"),
    ):
        assert pd.api.types.is_integer_dtype(frame[column].dtype), (column, frame[column].dtype)
