"""The app's batch export (Home: several simulations, one .apebatch) and its import of
several files at once (Protocol Manager -> Manage -> Import Simulation)."""

from __future__ import annotations

import io

from apesim.package import export_package
from apesim.package.batch import open_batch
from apesim.workspace import Workspace
from tests.app.apptools import PROTOCOLS, OpenPage, button, manage, run_small


def test_home_builds_one_batch_of_the_chosen_simulations(
    open_page: OpenPage, ws: Workspace
) -> None:
    first, second = run_small(ws, "first", seed=1), run_small(ws, "second", seed=2)
    run_small(ws, "not chosen", seed=3)
    at = open_page()
    at.multiselect(key="batch_choice").set_value([first.sim_id, second.sim_id]).run()
    button(at, "Build the batch").click().run()
    assert not at.exception, at.exception
    chosen, filename, data = at.session_state["batch_built"]
    assert filename.endswith("_2.apebatch")
    [download] = [b for b in at.get("download_button") if "Download" in b.proto.label]
    assert filename in download.proto.label
    batch = open_batch(memoryview(data), filename)
    assert sorted(m.sim_id for m in batch.index.members) == sorted(chosen)
    assert sorted(chosen) == sorted([first.sim_id, second.sim_id])


def _package(tmp_ws: Workspace, name: str, seed: int) -> bytes:
    record = run_small(tmp_ws, name, protocol="v1_prn_monthly", seed=seed)
    sink = io.BytesIO()
    export_package(tmp_ws, record.sim_id, sink)
    return sink.getvalue()


def test_several_files_are_imported_at_once_each_on_its_own(
    open_page: OpenPage, ws: Workspace, tmp_path
) -> None:
    other = Workspace(tmp_path / "colleague")
    good_a, good_b = _package(other, "a", 21), _package(other, "b", 22)
    at = open_page(PROTOCOLS)
    manage(at, "Import Simulation")
    at.file_uploader(key="bulk_upload").set_value(
        [
            ("a.zip", good_a, "application/zip"),
            ("broken.zip", good_b[:-50], "application/zip"),
            ("b.zip", good_b, "application/zip"),
        ]
    ).run()
    button(at, "Import 3 file(s)").click().run()
    assert not at.exception, at.exception
    assert len(ws.list()) == 2
    frame = at.dataframe[-1].value
    assert frame["file"].tolist() == ["a.zip", "broken.zip", "b.zip"]
    assert frame["result"].tolist() == ["✓ imported", "✗ failed", "✓ imported"]
    assert frame["finding"].tolist()[1] == "zip.truncated"
    assert "2 imported, 0 already here, 1 failed" in [e.value for e in at.error]
