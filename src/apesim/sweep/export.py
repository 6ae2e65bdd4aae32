"""A whole sweep exported at once: until the batch format exists, a folder named for the
sweep holding the sweep file, its base protocol, its plan and every completed draw's
package (each an ordinary, verifiable package that imports on its own)."""

from __future__ import annotations

import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from apesim.errors import ApeError
from apesim.package import export_package
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

PACKAGES = "packages"


def export_sweep(
    ws: Workspace,
    sid: str,
    dest: Path | str,
    *,
    created: datetime | None = None,
    progress: ProgressCallback | None = None,
) -> Path:
    """Write `dest/<sweep id>/` (refused if it exists); returns its path. Written in a
    temporary folder beside it and renamed, so a failed export leaves nothing."""
    plan = load_plan(ws, sid)
    done = completed_draws(ws.list(), plan)
    target = Path(dest) / sid
    if target.exists():
        raise ApeError(f"{target}: exists already; choose another folder", code="export.exists")
    with storage_errors(Path(dest), "exporting the sweep"):
        Path(dest).mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{sid}-", dir=dest))
        try:
            source = sweeps_dir(ws) / sid
            for name in (SWEEP_FILE, BASE_PROTOCOL, PLAN):
                shutil.copyfile(source / name, tmp / name)
            (tmp / PACKAGES).mkdir()
            for n, (_, sim_id) in enumerate(sorted(done.items()), 1):
                export_package(ws, sim_id, tmp / PACKAGES, created=created)
                if progress is not None:
                    progress(n, len(done))
            tmp.rename(target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target
