"""Differential packages: export only what differs from a base; import rebuilds the full
tables and installs exactly the files importing the full package installs."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import pytest

from apesim import api
from apesim.cli import main
from apesim.engine.simulate import SimulationParameters
from apesim.errors import ApeError, DuplicateImportError, PackageError
from apesim.package import (
    export_differential,
    export_package,
    import_package,
    inspect_package,
    inspect_with_base,
)
from apesim.package import format as fmt
from apesim.protocol import parse_protocol
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.package.conftest import snapshot

CREATED = datetime(2026, 7, 8, 9, 10, 11, tzinfo=UTC)
TREAT_AND_EXTEND = "aflibercept_treat_and_extend"


def _longer_intervals() -> api.LoadedProtocol:
    """A protocol variant of the base's: a longer maximum interval touches only the patients
    who reach it."""
    text = shipped_protocols()[TREAT_AND_EXTEND]
    assert "max_interval_days: 112" in text
    return parse_protocol(
        text.replace("max_interval_days: 112", "max_interval_days: 126"), "v.yaml"
    )


VARIANTS = {
    "more_patients": (TREAT_AND_EXTEND, SimulationParameters(330, 2.0, 21)),
    "longer_horizon": (TREAT_AND_EXTEND, SimulationParameters(330, 3.0, 21)),
    "fewer_patients": (TREAT_AND_EXTEND, SimulationParameters(240, 2.0, 21)),
    "protocol_variant": (_longer_intervals(), SimulationParameters(300, 2.0, 21)),
}


@pytest.fixture
def origin(tmp_path: Path) -> tuple[Workspace, SimulationRecord, Path]:
    """A workspace with a base of 300 patients x 2 years, exported (so it can be named)."""
    ws = Workspace(tmp_path / "origin")
    base = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(300, 2.0, 21), name="base")
    package = export_package(ws, base.sim_id, tmp_path / "base.zip", created=CREATED)
    assert package.path is not None
    return ws, base, package.path


@pytest.fixture
def more_patients(origin: tuple[Workspace, SimulationRecord, Path]) -> SimulationRecord:
    """The base's run with 30 more patients, in the origin workspace: only they differ."""
    ws, _, _ = origin
    return api.run_simulation(ws, *VARIANTS["more_patients"])


@pytest.fixture
def delta(
    origin: tuple[Workspace, SimulationRecord, Path],
    more_patients: SimulationRecord,
    tmp_path: Path,
) -> Path:
    """`more_patients` exported as a differential package on the base: `d.zip`."""
    ws, base, _ = origin
    made = export_differential(
        ws, more_patients.sim_id, tmp_path / "d.zip", base.sim_id, created=CREATED, max_share=1.0
    )
    assert made.differential
    return tmp_path / "d.zip"


def _installed(ws: Workspace, sim_id: str) -> dict[str, str]:
    folder = ws.path(ws.get(sim_id))
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_differential_import_installs_the_files_of_the_full_package(
    variant: str, origin: tuple[Workspace, SimulationRecord, Path], tmp_path: Path
) -> None:
    ws, base, base_package = origin
    protocol, params = VARIANTS[variant]
    sim = api.run_simulation(ws, protocol, params, name=variant)
    full = export_package(ws, sim.sim_id, tmp_path / "full.zip", created=CREATED)
    made = export_differential(
        ws, sim.sim_id, tmp_path / "delta.zip", base.sim_id, created=CREATED, max_share=1.0
    )
    assert made.differential and made.fallback is None
    assert made.result.size < full.size

    by_delta, by_full = Workspace(tmp_path / "by_delta"), Workspace(tmp_path / "by_full")
    import_package(by_delta, base_package)
    import_package(by_delta, tmp_path / "delta.zip")
    import_package(by_full, tmp_path / "full.zip")

    delta_files, full_files = _installed(by_delta, sim.sim_id), _installed(by_full, sim.sim_id)
    assert delta_files.keys() == full_files.keys()
    for name in delta_files.keys() - {"audit_log.json"}:
        assert delta_files[name] == full_files[name], name
    # The audit trail: the same events, but for the `imported` one, which says where from.
    trail = api.audit_trail(by_delta, sim.sim_id).events
    assert [e.sha256 for e in trail[:-1]] == [
        e.sha256 for e in api.audit_trail(by_full, sim.sim_id).events[:-1]
    ]
    details = trail[-1].details
    assert details["package_format"] == "APE 1.1 differential"
    assert details["differential"]["base_sim_id"] == base.sim_id
    manifest = json.loads(zipfile.ZipFile(tmp_path / "full.zip").read(fmt.MANIFEST))
    assert (
        details["differential"]["result_manifest_sha256"]
        == hashlib.sha256(zipfile.ZipFile(tmp_path / "full.zip").read(fmt.MANIFEST)).hexdigest()
    )
    assert manifest["files"][fmt.PATIENTS]["rows"] == params.patients


def test_a_differential_package_names_its_base_and_the_full_result(
    origin: tuple[Workspace, SimulationRecord, Path],
    more_patients: SimulationRecord,
    tmp_path: Path,
) -> None:
    ws, base, base_package = origin
    sim = more_patients
    made = export_differential(
        ws, sim.sim_id, tmp_path, base.sim_id, created=CREATED, max_share=1.0
    )
    assert made.result.filename == f"APE_differential_{sim.sim_id}_20260708.zip"
    with zipfile.ZipFile(tmp_path / made.result.filename) as zf:
        manifest = json.loads(zf.read(fmt.MANIFEST))
        names = [info.filename for info in zf.infolist()]
        stored = {i.filename for i in zf.infolist() if i.compress_type == zipfile.ZIP_STORED}
    base_bytes = base_package.read_bytes()
    base_manifest = zipfile.ZipFile(base_package).read(fmt.MANIFEST)
    assert manifest["format"] == fmt.DIFFERENTIAL_FORMAT
    assert manifest["package_version"] == "1.1"
    assert manifest["base"]["package_sha256"] == hashlib.sha256(base_bytes).hexdigest()
    assert manifest["base"]["manifest_sha256"] == hashlib.sha256(base_manifest).hexdigest()
    assert manifest["result"] == {
        "manifest_sha256": manifest["result"]["manifest_sha256"],
        "patients": 330,
        "changed": 0,
        "added": 30,
        "removed": 0,
    }
    assert names == list(fmt.DIFFERENTIAL_ORDER)
    assert stored == set(fmt.DIFFERENTIAL_PARQUET)
    assert manifest["files"][fmt.DELTA_PATIENTS]["rows"] == 30
    # Exported twice with one created date: the same bytes.
    again = export_differential(
        ws, sim.sim_id, io.BytesIO(), base.sim_id, created=CREATED, max_share=1.0
    )
    assert again.result.sha256 == made.result.sha256


def test_export_writes_a_full_package_when_the_delta_is_not_much_smaller(
    origin: tuple[Workspace, SimulationRecord, Path], tmp_path: Path
) -> None:
    ws, base, _ = origin
    other_seed = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(300, 2.0, 99))
    made = export_differential(ws, other_seed.sim_id, tmp_path, base.sim_id, created=CREATED)
    assert not made.differential
    assert made.fallback is not None and "of the full package" in made.fallback
    assert made.result.filename == f"APE_simulation_{other_seed.sim_id}_20260708.zip"
    report = inspect_package(tmp_path / made.result.filename)
    assert (
        report.ok and report.format == "APE 1.1"
    )  # full packages are format 1.1 since signatures (issue 10)
    event = api.audit_trail(ws, other_seed.sim_id).events[-1]
    assert event.action == "exported" and event.details["differential_refused"] == made.fallback


def test_a_base_never_shared_as_a_package_cannot_be_named(tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    base = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(50, 1.0, 1))
    sim = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(60, 1.0, 1))
    with pytest.raises(ApeError) as caught:
        export_differential(ws, sim.sim_id, tmp_path, base.sim_id, created=CREATED)
    assert caught.value.code == "differential.base_unshared"
    assert not list(tmp_path.glob("*.zip"))


def test_the_base_may_be_given_as_its_package_file(
    origin: tuple[Workspace, SimulationRecord, Path], tmp_path: Path
) -> None:
    ws, _, base_package = origin
    protocol, params = VARIANTS["longer_horizon"]
    sim = api.run_simulation(ws, protocol, params)
    made = export_differential(
        ws, sim.sim_id, tmp_path / "d.zip", base_package, created=CREATED, max_share=1.0
    )
    assert made.differential
    empty = Workspace(tmp_path / "empty")
    record = import_package(empty, tmp_path / "d.zip", base=base_package)
    assert record.sim_id == sim.sim_id and record.imported
    assert [r.sim_id for r in empty.list()] == [sim.sim_id], "the base is not imported"
    with pytest.raises(DuplicateImportError):
        import_package(empty, tmp_path / "d.zip", base=base_package)


def test_import_without_the_base_is_refused_and_writes_nothing(
    origin: tuple[Workspace, SimulationRecord, Path], delta: Path, tmp_path: Path
) -> None:
    _, base, _ = origin
    target = Workspace(tmp_path / "target")
    before = snapshot(tmp_path / "target")
    with pytest.raises(PackageError) as caught:
        import_package(target, delta)
    assert caught.value.code == "differential.base_missing"
    assert base.sim_id in str(caught.value) and "--base" in str(caught.value)
    assert str(caught.value).startswith("d.zip:")
    assert snapshot(tmp_path / "target") == before and target.list() == []


def test_another_base_file_is_refused(
    origin: tuple[Workspace, SimulationRecord, Path], delta: Path, tmp_path: Path
) -> None:
    ws, _, _ = origin
    stranger = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(300, 2.0, 5))
    export_package(ws, stranger.sim_id, tmp_path / "stranger.zip", created=CREATED)
    target = Workspace(tmp_path / "target")
    with pytest.raises(PackageError) as caught:
        import_package(target, delta, base=tmp_path / "stranger.zip")
    assert caught.value.code == "differential.base_mismatch"
    assert target.list() == []


def test_a_workspace_simulation_of_the_base_id_with_other_tables_is_not_the_base(
    origin: tuple[Workspace, SimulationRecord, Path], delta: Path
) -> None:
    ws, base, _ = origin
    folder = ws.path(ws.get(base.sim_id))
    (folder / "patients.parquet").chmod(0o644)
    (folder / "patients.parquet").write_bytes(b"not the base's table")
    report = inspect_with_base(delta, ws=ws)
    assert report.error is not None and report.error.code == "differential.base_mismatch"


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as done:
        main(list(args))
    captured = capsys.readouterr()
    return int(done.value.code or 0), captured.out, captured.err


def test_cli_export_import_inspect_with_base(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ws = Workspace(tmp_path / "origin")
    w = ["-w", str(ws.root)]
    base = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(2000, 2.0, 21))
    base_package = tmp_path / "base.zip"
    assert _cli(capsys, "export", base.sim_id, "-o", str(base_package), *w)[0] == 0
    sim = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(2030, 2.0, 21))
    code, out, _ = _cli(
        capsys, "export", sim.sim_id, "--base", base.sim_id, "-o", str(tmp_path), "--json", *w
    )
    assert code == 0
    made = json.loads(out)
    assert made["differential"] and made["added"] == 30
    assert made["size"] < made["full_size"] / 2
    delta = made["file"]

    code, _, err = _cli(capsys, "verify", delta, "-w", str(tmp_path / "nowhere"))
    assert code == 2 and "differential.base_missing" not in err and "--base FILE" in err
    assert len(err.strip().splitlines()) == 1
    code, out, _ = _cli(capsys, "verify", delta, "--base", str(base_package))
    assert code == 0 and "valid APE 1.1 differential package" in out
    code, out, _ = _cli(capsys, "inspect", delta, "--json", *w)  # the base is in the workspace
    assert code == 0 and json.loads(out)["valid"]

    target = ["-w", str(tmp_path / "target")]
    code, _, err = _cli(capsys, "import", delta, *target)
    assert code == 2 and "is not in this workspace" in err
    code, out, _ = _cli(capsys, "import", delta, "--base", str(base_package), "--json", *target)
    assert code == 0 and json.loads(out)["simulation"]["sim_id"] == sim.sim_id

    other = api.run_simulation(ws, TREAT_AND_EXTEND, SimulationParameters(2000, 2.0, 77))
    code, out, err = _cli(
        capsys, "export", other.sim_id, "--base", base.sim_id, "-o", str(tmp_path), *w
    )
    assert code == 0 and "a full package was written" in err


def test_inspecting_a_full_package_never_opens_the_workspace(
    origin: tuple[Workspace, SimulationRecord, Path],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Only a differential package needs a workspace (for its base): `ape inspect` and
    `ape verify` of a full package do not open (and so never write to) one."""
    _, _, base_package = origin
    opened: list[object] = []
    real = Workspace.__init__

    def spy(self: Workspace, *args: object) -> None:
        opened.append(args)
        real(self, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(Workspace, "__init__", spy)
    for command in ("inspect", "verify"):
        code, _, _ = _cli(capsys, command, str(base_package), "-w", str(tmp_path / "origin"))
        assert code == 0
    assert opened == []
