"""A whole sweep exported at once, its draws as one batch (`.apebatch`, issue 12's format):

- `-o NAME.apebatch`: the batch alone, a package per completed draw (each carries its
  exact protocol, parameters and seed, so it reproduces alone);
- `-o DIR`: `DIR/<sweep id>/` with the sweep file as written, its base protocol, its plan
  (every draw's seed and values) and `<sweep id>.apebatch`.

Both are written under temporary names and renamed, so a failed export leaves nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from apesim.bulk import export_many
from apesim.errors import ApeError
from apesim.package.batch import is_batch_name
from apesim.progress import ProgressCallback
from apesim.storage import storage_errors
from apesim.sweep.store import (
    BASE_PROTOCOL,
    PLAN,
    SWEEP_FILE,
    completed_draws,
    load_plan,
    sweeps_dir,
)
from apesim.workspace.store import Workspace


def export_sweep(
    ws: Workspace,
    sid: str,
    dest: Path | str,
    *,
    created: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Export a sweep's completed draws as one batch (see the module); returns the path
    written. An existing target is refused (`export.exists`)."""
    plan = load_plan(ws, sid)
    done = completed_draws(ws.list(), plan)
    if not done:
        raise ApeError(f"{sid}: no draw is complete yet; run the sweep first", code="sweep.empty")
    records = [ws.get(sim_id) for _, sim_id in sorted(done.items())]
    dest = Path(dest).expanduser()
    if is_batch_name(str(dest)):
        if dest.exists():
            raise ApeError(f"{dest}: exists already; choose another name", code="export.exists")
        export_many(ws, records, str(dest), created=created, progress=progress)
        return dest
    target = dest / sid
    if target.exists():
        raise ApeError(f"{target}: exists already; choose another folder", code="export.exists")
    with storage_errors(dest, "exporting the sweep"):
        dest.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sid}-", dir=dest))
        try:
            source = sweeps_dir(ws) / sid
            for name in (SWEEP_FILE, BASE_PROTOCOL, PLAN):
                shutil.copyfile(source / name, tmp / name)
            batch = tmp / f"{sid}.apebatch"
            export_many(ws, records, str(batch), created=created, progress=progress)
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
