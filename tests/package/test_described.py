"""Format 1.1's self-description: the package is a valid Frictionless Data Package and a
valid RO-Crate (Process Run Crate) for tools that never heard of APE, checked here by
those tools themselves (offline); and a description that lies is refused on import."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.package import export_package, import_package, inspect_package
from apesim.package import format as fmt
from apesim.workspace import Workspace
from tests.package.conftest import CREATED
from tests.package.corpus import members, rebuild
from tests.package.standard_tools import bag_errors, crate_issues, frictionless_errors, unzip


def _export(ws: Workspace, sim_id: str) -> bytes:
    sink = io.BytesIO()
    export_package(ws, sim_id, sink, created=CREATED)
    return sink.getvalue()


@pytest.mark.parametrize(("patients", "years"), [(1, 0.5), (60, 1.0), (600, 2.0)])
def test_standard_tools_accept_exported_packages_of_several_sizes(
    tmp_path: Path, patients: int, years: float
) -> None:
    ws = Workspace(tmp_path / "ws")
    record = api.run_simulation(
        ws, "aflibercept_treat_and_extend", SimulationParameters(patients, years, 5)
    )
    folder = unzip(_export(ws, record.sim_id), tmp_path / "unzipped")
    assert frictionless_errors(folder) == []
    assert crate_issues(folder) == []
    assert bag_errors(folder) == []


def test_standard_tools_accept_an_imported_then_reexported_package(
    valid_package: bytes, tmp_path: Path
) -> None:
    """An import adds an action to the crate's history: still a valid crate and package."""
    ws = Workspace(tmp_path / "ws")
    record = import_package(ws, valid_package, source_name="from-a-colleague.zip")
    again = _export(ws, record.sim_id)
    crate = json.loads(members(again)[fmt.RO_CRATE])
    actions = [e for e in crate["@graph"] if e["@type"] == "CreateAction"]
    assert [a["@id"] for a in actions] == ["#run", "#import-1"]
    assert "from-a-colleague.zip" in actions[1]["description"]
    folder = unzip(again, tmp_path / "unzipped")
    assert frictionless_errors(folder) == []
    assert crate_issues(folder) == []
    assert bag_errors(folder) == []
    assert inspect_package(again).ok


def _json_member(name: str, change: Callable[[Any], None]) -> Callable[[bytes], bytes]:
    def build(package: bytes) -> bytes:
        files = members(package)
        doc = json.loads(files[name])
        change(doc)
        files[name] = json.dumps(doc, indent=2, sort_keys=True).encode()
        return rebuild(files)

    return build


def _field(doc: Any, resource: str, name: str) -> dict[str, Any]:
    table = next(r for r in doc["resources"] if r["name"] == resource)
    return next(f for f in table["schema"]["fields"] if f["name"] == name)


def _entity(doc: Any, at: str) -> dict[str, Any]:
    return next(e for e in doc["@graph"] if e["@id"] == at)


LIES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "datapackage_column_type": (
        _json_member(
            fmt.DATAPACKAGE, lambda d: _field(d, "visits", "vision").update(type="number")
        ),
        "consistency.datapackage",
    ),
    "datapackage_column_categories": (
        _json_member(
            fmt.DATAPACKAGE,
            lambda d: _field(d, "patients", "sex")["constraints"].update(enum=["F", "M", "X"]),
        ),
        "consistency.datapackage",
    ),
    "datapackage_column_unit": (
        _json_member(fmt.DATAPACKAGE, lambda d: _field(d, "visits", "day").update(unit="weeks")),
        "consistency.datapackage",
    ),
    "datapackage_column_removed": (
        _json_member(
            fmt.DATAPACKAGE,
            lambda d: d["resources"][1]["schema"]["fields"].pop(),
        ),
        "consistency.datapackage",
    ),
    "datapackage_column_added": (
        _json_member(
            fmt.DATAPACKAGE,
            lambda d: d["resources"][1]["schema"]["fields"].append(
                {"name": "extra", "type": "string"}
            ),
        ),
        "consistency.datapackage",
    ),
    "ro_crate_agent": (
        _json_member(fmt.RO_CRATE, lambda d: _entity(d, "#person-1").update(name="someone else")),
        "consistency.ro_crate",
    ),
    "ro_crate_run_times": (
        _json_member(
            fmt.RO_CRATE, lambda d: _entity(d, "#run").update(endTime="2030-01-01T00:00:00+00:00")
        ),
        "consistency.ro_crate",
    ),
}


@pytest.mark.parametrize("lie", sorted(LIES))
def test_a_description_that_lies_is_refused(valid_package: bytes, lie: str) -> None:
    build, code = LIES[lie]
    report = inspect_package(build(valid_package))
    assert report.error is not None and report.error.code == code, report.error
    assert report.checks[-1].code == "consistency" and report.checks[-1].passed is False


def test_frictionless_itself_sees_the_lie_about_a_column(
    valid_package: bytes, tmp_path: Path
) -> None:
    """The descriptor is meaningful to the standard tool: a category APE never writes makes
    `frictionless validate` fail, as APE's reader refuses it."""
    files = members(valid_package)
    doc = json.loads(files[fmt.DATAPACKAGE])
    _field(doc, "patients", "sex")["constraints"]["enum"] = ["X"]
    files[fmt.DATAPACKAGE] = json.dumps(doc).encode()
    folder = unzip(rebuild(files), tmp_path / "unzipped")
    errors = frictionless_errors(folder)
    assert errors and all(e.startswith("constraint-error") for e in errors)


def test_an_altered_readme_is_refused(valid_package: bytes) -> None:
    files = members(valid_package)
    files[fmt.README] = files[fmt.README].replace(b"Never empty.", b"May be empty.", 1)
    report = inspect_package(rebuild(files))
    assert report.error is not None and report.error.code == "consistency.readme"
    assert "line" in str(report.error)


@pytest.mark.parametrize("name", [fmt.DATAPACKAGE, fmt.RO_CRATE])
def test_a_self_description_that_is_not_json_is_refused(valid_package: bytes, name: str) -> None:
    files = members(valid_package)
    files[name] = b'{"a": 1, "a": 2}'
    report = inspect_package(rebuild(files))
    assert report.error is not None and report.error.code == "json.duplicate_key"


@pytest.mark.parametrize("name", [fmt.DATAPACKAGE, fmt.RO_CRATE])
def test_a_format_1_1_package_must_describe_itself(valid_package: bytes, name: str) -> None:
    files = members(valid_package)
    del files[name]
    report = inspect_package(rebuild(files, manifest_edit=lambda m: m["files"].pop(name)))
    assert report.error is not None and report.error.code == "file.missing"


def test_a_format_1_0_package_holds_no_self_description(valid_package: bytes) -> None:
    """Format 1.0 knows no such file: one in a package that says 1.0 is refused."""
    report = inspect_package(
        rebuild(members(valid_package), manifest_edit=lambda m: m.update(package_version="1.0"))
    )
    assert report.error is not None and report.error.code == "name.unknown"


def test_a_newer_minor_version_may_add_to_the_description(valid_package: bytes) -> None:
    """A package of format 1.2 may say more; what it shares with 1.1 must still agree."""
    more = _json_member(fmt.RO_CRATE, lambda d: _entity(d, "./").update(keywords="AMD"))
    newer = rebuild(
        members(more(valid_package)), manifest_edit=lambda m: m.update(package_version="1.2")
    )
    report = inspect_package(newer)
    assert report.ok, report.error
    assert report.warnings
    build, code = LIES["datapackage_column_type"]
    lying = rebuild(
        members(build(valid_package)), manifest_edit=lambda m: m.update(package_version="1.2")
    )
    report = inspect_package(lying)
    assert report.error is not None and report.error.code == code


def test_the_bag_checks_the_files_without_ape(valid_package: bytes, tmp_path: Path) -> None:
    """A table changed after unzipping is found by the BagIt tool, as `sha256sum -c` would."""
    folder = unzip(valid_package, tmp_path / "unzipped")
    assert bag_errors(folder) == []
    visits = folder / fmt.VISITS
    visits.write_bytes(visits.read_bytes()[:-1] + b"\x00")
    assert bag_errors(folder)


@pytest.mark.parametrize("name", [fmt.BAGIT, fmt.BAG_MANIFEST, fmt.BAG_TAGMANIFEST])
def test_a_bagit_file_that_lies_is_refused(valid_package: bytes, name: str) -> None:
    files = members(valid_package)
    # the same length: the crate states each file's size, and would see the change first
    old, new = (b"1.0", b"0.9") if name == fmt.BAGIT else (b"  ", b" *")
    files[name] = files[name].replace(old, new, 1)
    report = inspect_package(rebuild(files))
    assert report.error is not None and report.error.code == "consistency.bagit", report.error
