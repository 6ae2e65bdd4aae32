"""`ape reproduce`: re-simulation from what a simulation recorded, for both models, from the
workspace, from an imported simulation and from a package, without writing anything."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from apesim import api
from apesim.cli import app
from apesim.engine.simulate import SimulationParameters
from apesim.errors import ReproduceError
from apesim.package import export_package
from apesim.reproduce import reproduce_tables
from apesim.results.parquet_io import write_table
from apesim.results.schema import VISITS_SCHEMA
from apesim.workspace import Workspace, layout

MODELS = {
    "v1_aflibercept_treat_and_extend": "ape-markov 1.0",
    "aflibercept_treat_and_extend": "ape-calendar 2.0",
}


def _run(ws: Workspace, protocol: str) -> str:
    params = SimulationParameters(patients=300, years=2.0, seed=11, recruitment_months=6)
    return api.run_simulation(ws, protocol, params, name=protocol).sim_id


def _digest(folder: Path) -> dict[str, str]:
    return {
        p.name: hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.iterdir())
        if p.is_file()
    }


@pytest.mark.parametrize("protocol", sorted(MODELS))
def test_a_stored_simulation_reproduces_identically_and_is_left_untouched(
    workspace: Workspace, protocol: str
) -> None:
    sim_id = _run(workspace, protocol)
    folder = workspace.path(workspace.get(sim_id))
    before = _digest(folder)
    result = api.reproduce(workspace, sim_id)
    assert result.identical and result.model == MODELS[protocol]
    assert result.patients == 300 and result.visits > 300
    assert _digest(folder) == before
    assert len(workspace.list()) == 1  # no new simulation


@pytest.mark.parametrize("protocol", sorted(MODELS))
def test_packages_and_imported_simulations_reproduce(
    workspace: Workspace, tmp_path: Path, protocol: str
) -> None:
    sim_id = _run(workspace, protocol)
    package = tmp_path / "sim.zip"
    export_package(workspace, sim_id, package)
    assert api.reproduce(None, str(package)).identical
    other = Workspace(tmp_path / "other")
    record = api.import_package(other, package)
    folder = other.path(record)
    before = _digest(folder)
    result = api.reproduce(other, record.sim_id)
    assert result.identical and result.model == MODELS[protocol]
    assert _digest(folder) == before


def _alter_vision(workspace: Workspace, sim_id: str, row: int) -> int:
    """Change one visit's vision in the stored table (as a changed engine would); return
    that visit's patient."""
    path = workspace.path(workspace.get(sim_id)) / layout.VISITS
    table = pq.read_table(path, use_threads=False)
    vision = table.column("vision").to_numpy().copy()
    vision[row] = (vision[row] + 1) % 100
    changed = table.set_column(
        table.schema.get_field_index("vision"), VISITS_SCHEMA.field("vision"), pa.array(vision)
    )
    path.unlink()
    write_table(path, changed)
    return int(pc.take(table.column("patient_id"), [row])[0].as_py())


def test_the_first_difference_names_table_patient_and_column(workspace: Workspace) -> None:
    sim_id = _run(workspace, "aflibercept_treat_and_extend")
    patient = _alter_vision(workspace, sim_id, 1234)
    result = api.reproduce(workspace, sim_id)
    diff = result.difference
    assert diff is not None and not result.identical
    assert (diff.table, diff.column, diff.row, diff.patient) == ("visits", "vision", 1234, patient)


def test_cli_exit_codes_identical_differs_and_json(workspace: Workspace) -> None:
    runner = CliRunner()
    sim_id = _run(workspace, "v1_aflibercept_treat_and_extend")
    ok = runner.invoke(app, ["reproduce", sim_id, "-w", str(workspace.root), "--json"])
    assert ok.exit_code == 0, ok.output
    assert json.loads(ok.stdout)["identical"] is True
    _alter_vision(workspace, sim_id, 5)
    bad = runner.invoke(app, ["reproduce", sim_id, "-w", str(workspace.root), "--json"])
    assert bad.exit_code == api.EXIT_DIFFERS == 3
    found = json.loads(bad.stdout)["difference"]
    assert (found["table"], found["column"], found["row"]) == ("visits", "vision", 5)


def test_an_engine_this_ape_does_not_have_is_refused(workspace: Workspace) -> None:
    sim_id = _run(workspace, "v1_aflibercept_treat_and_extend")
    sim = api.load_simulation(workspace, sim_id)
    with pytest.raises(ReproduceError) as caught:
        reproduce_tables(
            "x",
            sim_id,
            sim.protocol_text,
            sim.parameters,
            "earlier APE (2.1)",
            sim.patients,
            sim.visits,
        )
    assert caught.value.code == "reproduce.unsupported"


@pytest.mark.parametrize("name", ["sims.apebatch", "package.zip.age"])
def test_a_file_that_is_not_a_package_zip_is_named_as_such(
    name: str, workspace: Workspace, tmp_path: Path
) -> None:
    path = tmp_path / name
    path.write_bytes(b"not opened")
    with pytest.raises(ReproduceError) as caught:
        api.reproduce(workspace, str(path))
    assert caught.value.code == "reproduce.not_a_package" and str(caught.value).startswith(
        f"{path}: not a package file (.zip)"
    )
