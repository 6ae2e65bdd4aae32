"""Hostile differential packages: each is refused with the right finding in the reader's
worker, and the workspace is left exactly as it was. Every case starts from a valid
differential package (330 patients x 3 years on a base of 300 x 2) and changes one thing;
checksums are recomputed so that the attack reaches the check it names."""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.errors import (
    PackageError,
    PackageFormatError,
    PackageIntegrityError,
    PackageLimitError,
    PackageSecurityError,
    PackageVersionError,
)
from apesim.package import export_differential, export_package, import_package, inspect_package
from apesim.package import format as fmt
from apesim.package.delta import KEPT
from apesim.results.parquet_io import write_table
from apesim.workspace import Workspace
from tests.package.conftest import snapshot
from tests.package.corpus import members, rebuild
from tests.package.test_isolation import transport  # noqa: F401  (a fixture)

CREATED = datetime(2026, 7, 8, 9, 10, 11, tzinfo=UTC)


@dataclass(frozen=True)
class Packages:
    delta: bytes
    base_package: bytes
    base_tables: dict[str, bytes]


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory) -> Packages:
    ws = Workspace(tmp_path_factory.mktemp("origin"))
    protocol = "aflibercept_treat_and_extend"
    base = api.run_simulation(ws, protocol, SimulationParameters(300, 2.0, 21))
    base_sink = io.BytesIO()
    export_package(ws, base.sim_id, base_sink, created=CREATED)
    sim = api.run_simulation(ws, protocol, SimulationParameters(330, 3.0, 21))
    sink = io.BytesIO()
    made = export_differential(ws, sim.sim_id, sink, base.sim_id, created=CREATED, max_share=1)
    assert made.differential and made.changed > 0 and made.added == 30
    folder = ws.path(base)
    tables = {
        fmt.PATIENTS: (folder / "patients.parquet").read_bytes(),
        fmt.VISITS: (folder / "visits.parquet").read_bytes(),
    }
    return Packages(sink.getvalue(), base_sink.getvalue(), tables)


# -- builders ------------------------------------------------------------------------------


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _manifest(change: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    return lambda package: rebuild(members(package), manifest_edit=change)


def _table(name: str, change: Callable[[pa.Table], pa.Table]) -> Callable[[bytes], bytes]:
    """A delta table changed and written by APE's writer (so its layout passes), with the
    manifest's sizes, hashes and row counts recomputed."""

    def build(package: bytes) -> bytes:
        files = members(package)
        table = change(pq.ParquetFile(io.BytesIO(files[name])).read(use_threads=False))
        sink = io.BytesIO()
        write_table(sink, table)
        files[name] = sink.getvalue()

        def rows(manifest: dict) -> None:
            manifest["files"][name]["rows"] = table.num_rows

        return rebuild(files, manifest_edit=rows)

    return build


def _set_ids(change: Callable[[list[int]], list[int]]) -> Callable[[pa.Table], pa.Table]:
    def edit(table: pa.Table) -> pa.Table:
        ids = change(table.column("patient_id").to_pylist())
        return table.set_column(0, table.schema.field(0), pa.array(ids, pa.int32()))

    return edit


def _kept(change: Callable[[list[int]], list[int]]) -> Callable[[pa.Table], pa.Table]:
    def edit(table: pa.Table) -> pa.Table:
        at = table.schema.get_field_index(KEPT)
        kept = change(table.column(KEPT).to_pylist())
        return table.set_column(at, table.schema.field(at), pa.array(kept, pa.int32()))

    return edit


def _first_kept_beyond(kept: list[int]) -> list[int]:
    out = list(kept)
    first = next(i for i, k in enumerate(out) if k > 0)
    out[first] += 10_000
    return out


def _drop_last_patient(package: bytes) -> bytes:
    """The last added patient left out, with its visits (the ids still hold together)."""
    files = members(package)
    patients = pq.ParquetFile(io.BytesIO(files[fmt.DELTA_PATIENTS])).read(use_threads=False)
    last = patients.column("patient_id")[-1].as_py()
    step = _table(fmt.DELTA_PATIENTS, lambda t: t.slice(0, t.num_rows - 1))(package)
    return _table(fmt.DELTA_VISITS, lambda t: t.filter(pc.not_equal(t.column("patient_id"), last)))(
        step
    )


def _orphan_visit(table: pa.Table) -> pa.Table:
    """A visit moved to a patient in no delta row (patient 0 is unchanged: it died or
    stopped before year 2 in this seed, or else it is the next free id below)."""
    ids = table.column("patient_id").to_pylist()
    free = next(i for i in range(10_000) if i not in set(ids))
    ids[0] = free
    order = sorted(range(len(ids)), key=lambda i: ids[i])
    table = table.set_column(0, table.schema.field(0), pa.array(ids, pa.int32()))
    return table.take(pa.array(order))


def _vision_plus_one(table: pa.Table) -> pa.Table:
    at = table.schema.get_field_index("vision")
    vision = pc.add(table.column("vision"), pa.scalar(1, pa.int16()))
    return table.set_column(at, table.schema.field(at), vision)


def _result_manifest(change: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    """result/manifest.json changed, and the differential manifest's digest of it updated:
    only the rebuild can tell."""

    def build(package: bytes) -> bytes:
        files = members(package)
        result = json.loads(files[fmt.RESULT_MANIFEST])
        change(result)
        files[fmt.RESULT_MANIFEST] = json.dumps(result, indent=2).encode()

        def digest(manifest: dict) -> None:
            manifest["result"]["manifest_sha256"] = _sha(files[fmt.RESULT_MANIFEST])

        return rebuild(files, manifest_edit=digest)

    return build


def _huge_result(package: bytes) -> bytes:
    def rows(result: dict) -> None:
        result["files"][fmt.PATIENTS]["rows"] = 600_000_000

    def patients(manifest: dict) -> None:
        manifest["result"]["patients"] = 600_000_000

    step = _result_manifest(rows)(package)
    return rebuild(members(step), manifest_edit=patients)


def _protocol_description(package: bytes) -> bytes:
    files = members(package)
    files[fmt.PROTOCOL] = files[fmt.PROTOCOL].replace(b"description: ", b"description: edited. ", 1)
    return rebuild(files)


def _set(path: tuple[str, ...], value: object) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        *parents, last = path
        node = manifest
        for key in parents:
            node = node[key]
        node[last] = value

    return change


def _delete(*path: str) -> Callable[[dict], None]:
    def change(manifest: dict) -> None:
        *parents, last = path
        node = manifest
        for key in parents:
            node = node[key]
        del node[last]

    return change


def _with_unknown_file(package: bytes) -> bytes:
    files = members(package)
    files["delta/extra.parquet"] = files[fmt.DELTA_VISITS]

    def listed(manifest: dict) -> None:
        data = files["delta/extra.parquet"]
        manifest["files"]["delta/extra.parquet"] = {"size": len(data), "sha256": _sha(data)}

    return rebuild(files, manifest_edit=listed)


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[bytes], bytes]
    error: type[PackageError]
    code: str
    base: bool = True  # the base package is given with --base


CASES = [
    Case("base_not_given_nor_in_workspace", lambda p: p, PackageFormatError,
         "differential.base_missing", base=False),
    Case("result_digest_not_the_result_manifest",
         _manifest(_set(("result", "manifest_sha256"), "0" * 64)), PackageIntegrityError,
         "differential.result_digest"),
    Case("result_manifest_names_other_patients",
         _result_manifest(_set(("files", fmt.PATIENTS, "sha256"), "1" * 64)),
         PackageIntegrityError, "differential.result_digest"),
    Case("delta_value_changed", _table(fmt.DELTA_VISITS, _vision_plus_one),
         PackageIntegrityError, "differential.result_digest"),
    Case("carried_protocol_differs_from_result", _protocol_description,
         PackageIntegrityError, "differential.result_digest"),
    Case("patient_id_out_of_range",
         _table(fmt.DELTA_PATIENTS, _set_ids(lambda ids: [*ids[:-1], 1_000_000])),
         PackageIntegrityError, "differential.patient_range"),
    Case("patient_id_negative",
         _table(fmt.DELTA_PATIENTS, _set_ids(lambda ids: [-1, *ids[1:]])),
         PackageIntegrityError, "differential.patient_range"),
    Case("patient_ids_repeated",
         _table(fmt.DELTA_PATIENTS, _set_ids(lambda ids: [ids[0], ids[0], *ids[2:]])),
         PackageIntegrityError, "differential.order"),
    Case("added_patient_missing", _drop_last_patient, PackageIntegrityError,
         "differential.missing_patient"),
    Case("kept_visits_beyond_the_base",
         _table(fmt.DELTA_PATIENTS, _kept(_first_kept_beyond)), PackageIntegrityError,
         "differential.kept"),
    Case("kept_visits_negative",
         _table(fmt.DELTA_PATIENTS, _kept(lambda k: [-1, *k[1:]])), PackageIntegrityError,
         "differential.kept"),
    Case("visit_of_a_patient_not_in_the_delta", _table(fmt.DELTA_VISITS, _orphan_visit),
         PackageIntegrityError, "differential.orphan_visit"),
    Case("counts_misstated", _manifest(_set(("result", "changed"), 0)), PackageIntegrityError,
         "differential.counts"),
    Case("result_of_600_million_patients", _huge_result, PackageLimitError, "limit.rows"),
    Case("base_tables_not_named", _manifest(_delete("base", "files", fmt.VISITS)),
         PackageFormatError, "manifest.schema"),
    Case("no_result", _manifest(_delete("result")), PackageFormatError, "manifest.schema"),
    Case("unknown_file", _with_unknown_file, PackageSecurityError, "name.unknown"),
    Case("newer_major_version", _manifest(_set(("package_version",), "2.0")),
         PackageVersionError, "version.newer_major"),
    Case("differential_before_1_1", _manifest(_set(("package_version",), "1.0")),
         PackageFormatError, "manifest.schema"),
]  # fmt: skip


def test_cases_are_distinct() -> None:
    assert len({c.name for c in CASES}) == len(CASES) >= 15


def test_the_unmodified_differential_package_is_valid(packages: Packages) -> None:
    report = inspect_package(packages.delta, base=packages.base_tables)
    assert report.ok, report.error
    assert report.format == "APE 1.1 differential"


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_import_refuses(case: Case, packages: Packages, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    package = case.build(packages.delta)
    incoming = tmp_path / "incoming"
    incoming.mkdir()
    (incoming / "evil.zip").write_bytes(package)
    (incoming / "base.zip").write_bytes(packages.base_package)
    before = snapshot(tmp_path)

    with pytest.raises(case.error) as caught:
        import_package(ws, incoming / "evil.zip", base=incoming / "base.zip" if case.base else None)

    assert caught.value.code == case.code, str(caught.value)
    assert str(caught.value).startswith("evil.zip:"), "the message names the file"
    assert "\n" not in str(caught.value)
    assert snapshot(tmp_path) == before
    assert ws.list() == []


@pytest.mark.parametrize("case", [c for c in CASES if c.base], ids=lambda c: c.name)
def test_the_worker_reports_the_failing_check(case: Case, packages: Packages) -> None:
    report = inspect_package(case.build(packages.delta), base=packages.base_tables)
    failed = [c for c in report.checks if c.passed is False]
    assert len(failed) == 1 and failed[0].finding == case.code
    after = report.checks[report.checks.index(failed[0]) + 1 :]
    assert all(c.passed is None for c in after), "nothing runs after a failure"


def test_the_worker_refuses_a_base_that_is_not_the_named_one(packages: Packages) -> None:
    wrong = dict(packages.base_tables)
    wrong[fmt.VISITS] = packages.base_tables[fmt.PATIENTS]
    report = inspect_package(packages.delta, base=wrong)
    assert report.error is not None and report.error.code == "differential.base_mismatch"


@pytest.mark.usefixtures("transport")
def test_every_worker_transport_rebuilds_on_the_base(packages: Packages) -> None:
    """The base's tables reach the worker however it is started (forked, from the fork
    server, a fresh interpreter through pipes), and the result is what a check in this
    process finds."""
    isolated = inspect_package(packages.delta, base=packages.base_tables)
    local = inspect_package(packages.delta, base=packages.base_tables, isolate=False)
    assert isolated.ok and local.ok, (isolated.error, local.error)
    assert isolated.validated is not None and local.validated is not None
    assert {k: bytes(v) for k, v in isolated.validated.folder_files.items()} == {
        k: bytes(v) for k, v in local.validated.folder_files.items()
    }
