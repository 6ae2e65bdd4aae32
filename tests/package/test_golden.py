"""Golden files of the format: a package of a fixed simulation, with only what legitimately
varies (ids, times, user, file hashes that embed the Parquet writer's version) masked.

`golden/v1.1/` holds what this APE writes. A change there is a change of the format or of the
engine's numbers; if it is intended, regenerate with
`APE_UPDATE_GOLDEN=1 pytest tests/package/test_golden.py`, review the diff, and record it in
docs/package-format.md's version table when the format changed.

`golden/v1.0/` holds a package of format 1.0 as APE 0.1.0 wrote it (`package.zip`, a binary
golden file) and its normalised files: every later APE must still read and import it.
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
from apesim.package import export_package, inspect_package
from apesim.package import format as fmt
from apesim.package.importer import import_package
from apesim.workspace import Workspace

GOLDEN = Path(__file__).parent / "golden"
CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
# Files whose bytes embed run times, the Parquet writer's version or the sim id.
_VARYING = (
    "data/metadata.parquet",
    "data/patients.parquet",
    "data/visits.parquet",
    "README.txt",
    "audit_log.json",
)


def _mask(text: str, sim_id: str) -> str:
    text = text.replace(sim_id, "<sim_id>").replace(sim_id.lower(), "<sim_id>")
    text = re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|\+00:00)", "<time>", text)
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
    return record.sim_id, _members(sink.getvalue())


def _members(package: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def _crate(data: bytes, sim_id: str) -> str:
    """The RO-Crate with the sizes of the varying files masked."""
    crate = json.loads(data)
    for entity in crate["@graph"]:
        if entity.get("@id") in _VARYING and "contentSize" in entity:
            entity["contentSize"] = "<size>"
        if entity.get("@id") == "#engine" or entity.get("@id") == "#ape":
            entity["softwareVersion"] = "<version>"
    return _mask(json.dumps(crate, indent=2, sort_keys=True, ensure_ascii=False) + "\n", sim_id)


def _normalised(sim_id: str, files: dict[str, bytes]) -> dict[str, str]:
    manifest = json.loads(files["manifest.json"])
    manifest["sim_id"] = "<sim_id>"
    manifest["ape_version"] = "<version>"
    for name in (*_VARYING, fmt.DATAPACKAGE, fmt.RO_CRATE, fmt.BAG_MANIFEST, fmt.BAG_TAGMANIFEST):
        if name in manifest["files"]:
            manifest["files"][name]["sha256"] = "<sha256>"
            manifest["files"][name]["size"] = "<size>"
    out = {
        "entries.txt": "\n".join(files) + "\n",
        "manifest.json": json.dumps(manifest, indent=2, sort_keys=True) + "\n",
        "summary_stats.json": files["summary_stats.json"].decode(),
        "parameters.json": files["parameters.json"].decode(),
        "README.txt": _mask(files["README.txt"].decode(), sim_id),
        "results_preview.csv": files["results_preview.csv"].decode(),
    }
    if fmt.DATAPACKAGE in files:
        out[fmt.DATAPACKAGE] = _mask(files[fmt.DATAPACKAGE].decode(), sim_id)
        out[fmt.RO_CRATE] = _crate(files[fmt.RO_CRATE], sim_id)
    return out


def test_package_matches_golden_files(package: tuple[str, dict[str, bytes]]) -> None:
    actual = _normalised(*package)
    golden = GOLDEN / f"v{fmt.PACKAGE_VERSION}"
    if os.environ.get("APE_UPDATE_GOLDEN"):
        golden.mkdir(exist_ok=True)
        for name, text in actual.items():
            (golden / name).write_text(text)
    # the golden packages themselves (tests/package/test_golden_versions.py) sit beside them
    kept = {"package.zip", "signed.zip", "golden.pub"}
    assert sorted(p.name for p in golden.iterdir() if p.name not in kept) == sorted(actual)
    for name, text in actual.items():
        assert text == (golden / name).read_text(), f"{name} differs from the golden file"


def _golden_1_0() -> bytes:
    return (GOLDEN / "v1.0" / "package.zip").read_bytes()


def test_the_format_1_0_package_is_still_what_its_golden_files_say() -> None:
    files = _members(_golden_1_0())
    sim_id = json.loads(files["manifest.json"])["sim_id"]
    assert json.loads(files["manifest.json"])["package_version"] == "1.0"
    for name, text in _normalised(sim_id, files).items():
        assert text == (GOLDEN / "v1.0" / name).read_text(), f"{name} differs from 1.0's golden"


def test_a_format_1_0_package_imports_and_exports_as_the_current_format(tmp_path: Path) -> None:
    """1.0 packages keep importing: the same tables, and a re-export is a valid package of
    this APE's format with the same table bytes."""
    report = inspect_package(_golden_1_0(), source_name="golden-1.0.zip")
    assert report.ok, report.error
    assert report.format == "APE 1.0"
    ws = Workspace(tmp_path / "ws")
    record = import_package(ws, _golden_1_0(), source_name="golden-1.0.zip")
    sink = io.BytesIO()
    export_package(ws, record.sim_id, sink, created=CREATED)
    again = inspect_package(sink.getvalue())
    assert again.ok, again.error
    assert again.format == f"APE {fmt.PACKAGE_VERSION}"
    before, after = _members(_golden_1_0()), _members(sink.getvalue())
    for name in fmt.PARQUET_FILES:
        assert before[name] == after[name]


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
