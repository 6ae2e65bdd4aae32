"""The run pipeline behind `api.run_simulation`: the engine, its Parquet tables, the summary
statistics and the other files of a simulation folder, installed atomically.

The engine runs on the calling thread and hands each chunk to a writer thread, which
encodes and compresses the Parquet files (zstd level 9) while the engine simulates the next
chunks: numpy and pyarrow's writer release the GIL, so on two cores the two overlap. The
summary statistics are computed from the chunks kept in memory (the four visit columns they
read and the patients), not from the files read back, while the writer finishes. The files
are the bytes a sequential run writes: the same rows, in the same order, into the same
`TableWriter`, whose row groups do not depend on how the rows were cut.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import pyarrow as pa

from apesim import audit
from apesim.engine.models import model_for
from apesim.engine.simulate import Chunk, SimulationParameters, simulate
from apesim.engine.tables import compile_protocol
from apesim.errors import ParameterError
from apesim.limits import DEFAULT_CHUNK
from apesim.progress import ProgressCallback
from apesim.protocol import LoadedProtocol
from apesim.results.metadata import SimulationMetadata, iso_utc
from apesim.results.parquet_io import TableWriter, write_table
from apesim.results.schema import PATIENTS_SCHEMA, VISITS_SCHEMA
from apesim.results.stats import VISIT_COLUMNS, compute_summary, summary_json
from apesim.results.summary import Summary
from apesim.safeload import dump_json
from apesim.storage import storage_errors
from apesim.workspace import layout
from apesim.workspace.names import (
    RUN_NAME_MAX_LENGTH,
    is_valid_sim_name,
    memorable_name,
    new_sim_id,
)
from apesim.workspace.store import SimulationRecord, Workspace

# Chunks waiting for the writer at most: the engine runs ahead by this much, no further.
QUEUED_CHUNKS = 2


class ChunkWriter:
    """Writes the chunks' patients and visits tables into a folder on a thread of its own.

    `put` hands a chunk over (and raises at once what the writer raised, if it failed);
    `finish` waits for the files to be complete and closed. Used as a context manager, an
    exception stops the writer and leaves the files to be removed with their folder."""

    def __init__(self, folder: Path) -> None:
        self._queue: queue.Queue[Chunk | None] = queue.Queue(maxsize=QUEUED_CHUNKS)
        self._error: BaseException | None = None
        self._stopping = False  # the engine failed: write nothing more
        self._patients = TableWriter(folder / layout.PATIENTS, PATIENTS_SCHEMA)
        try:
            self._visits = TableWriter(folder / layout.VISITS, VISITS_SCHEMA)
        except BaseException:
            self._patients.abandon()
            raise
        self._thread = threading.Thread(target=self._work, name="ape-writer", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            while (chunk := self._queue.get()) is not None:
                if self._stopping:
                    continue
                self._patients.write(chunk.patients)
                self._visits.write(chunk.visits)
            if self._stopping:
                self._patients.abandon()
                self._visits.abandon()
                return
            self._patients.close()
            self._visits.close()
        except BaseException as exc:  # handed to the engine's thread, raised there
            self._error = exc
            self._patients.abandon()
            self._visits.abandon()
            while self._queue.get() is not None:  # let `put` and `finish` never block
                pass

    def put(self, chunk: Chunk) -> None:
        """Hand a chunk to the writer (waits while `QUEUED_CHUNKS` are waiting)."""
        self._raise()
        self._queue.put(chunk)

    def finish(self) -> None:
        """Wait until every chunk is written and both files are closed."""
        self._queue.put(None)
        self._thread.join()
        self._raise()

    def _raise(self) -> None:
        if self._error is not None:
            raise self._error

    def __enter__(self) -> ChunkWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if kind is not None and self._thread.is_alive():
            self._stopping = True  # the folder goes anyway: close the files, write no more
            self._queue.put(None)
            self._thread.join()


TablesStep = Callable[[Path], Summary]
"""Writes a run's patients and visits tables into the staging folder it is given, and
returns their summary statistics (`local_tables` here; a distributed run brings its own)."""


def local_tables(
    lp: LoadedProtocol,
    params: SimulationParameters,
    *,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
) -> TablesStep:
    """The tables of a run simulated in this process, chunk by chunk."""
    cp = compile_protocol(lp.protocol)

    def step(folder: Path) -> Summary:
        patients: list[pa.Table] = []
        visits: list[pa.Table] = []
        with ChunkWriter(folder) as writer:
            for chunk in simulate(cp, params, chunk_size=chunk_size, progress=progress):
                writer.put(chunk)
                patients.append(chunk.patients)
                visits.append(chunk.visits.select(VISIT_COLUMNS))
            # The statistics while the writer finishes: the same tables it writes.
            summary = compute_summary(
                pa.concat_tables(patients), pa.concat_tables(visits), params.years
            )
            del patients, visits
            writer.finish()
        return summary

    return step


def run_into(
    ws: Workspace,
    lp: LoadedProtocol,
    params: SimulationParameters,
    *,
    name: str | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    progress: ProgressCallback | None = None,
    tables: TablesStep | None = None,
    simulated_seconds: float = 0.0,
) -> SimulationRecord:
    """Run a protocol and store the results atomically in the workspace (a full disk or a
    read-only workspace is a `StorageError`, and nothing of the run is left). `tables`
    replaces the local simulation (a distributed run); all else is the same.
    `simulated_seconds` adds time spent elsewhere (a sweep's draw simulated on a worker)
    to the recorded runtime."""
    if name is not None and not is_valid_sim_name(name.strip(), RUN_NAME_MAX_LENGTH):
        raise ParameterError(
            f"name: must be 1 to {RUN_NAME_MAX_LENGTH} printable characters"
            " (no tabs, newlines or other control characters)"
        )
    started = time.perf_counter()
    created = datetime.now(UTC).replace(microsecond=0)
    sim_id = new_sim_id(created)
    name = name.strip() if name else memorable_name()
    model = model_for(lp.protocol)  # its engine version is recorded: it selects the model
    if tables is None:
        tables = local_tables(lp, params, chunk_size=chunk_size, progress=progress)
    with ws.staging() as folder, storage_errors(ws.root, "writing the simulation"):
        summary = tables(folder)
        runtime = round(time.perf_counter() - started + simulated_seconds, 3)
        meta = SimulationMetadata(
            sim_id=sim_id,
            name=name,
            protocol_name=lp.protocol.name,
            protocol_version=lp.protocol.version,
            protocol_fingerprint=lp.fingerprint,
            engine_version=model.engine_version,
            patients=params.patients,
            years=params.years,
            seed=params.seed,
            created_utc=created,
            runtime_seconds=runtime,
        )
        write_table(folder / layout.METADATA, meta.to_table())
        (folder / layout.PROTOCOL).write_text(lp.text, encoding="utf-8")
        (folder / layout.PARAMETERS).write_text(dump_json(params.to_dict()), encoding="utf-8")
        (folder / layout.SUMMARY).write_text(summary_json(summary), encoding="utf-8")
        events = audit.append(
            [],
            "protocol_loaded",
            {
                "protocol_name": lp.protocol.name,
                "protocol_version": lp.protocol.version,
                "protocol_fingerprint": lp.fingerprint,
                "source": lp.source,
            },
            time=iso_utc(created),
        )
        events = audit.append(
            events,
            "simulation_run",
            {
                "sim_id": sim_id,
                "protocol_fingerprint": lp.fingerprint,
                "parameters": params.to_dict(),
                "engine_version": model.engine_version,
                "model": model.label,
                "runtime_seconds": runtime,
                "patients": summary["patients"],
                "visits": summary["visits"],
            },
            time=iso_utc(created),
        )
        (folder / layout.AUDIT).write_bytes(audit.serialise(events))
        record = SimulationRecord.from_metadata(meta, created_by=audit.current_user())
        return ws.install(folder, record)
