"""A Dask client for a distributed run: a local cluster of worker processes on loopback, or
an existing scheduler. The one module besides `run` and the sweep's runner that imports Dask."""

from __future__ import annotations

import contextlib
import logging
import socket
import warnings
from collections.abc import Iterable, Iterator
from typing import Any

from apesim.distributed.blocks import worker_versions
from apesim.distributed.options import ClusterOptions
from apesim.errors import ApeError, ParameterError
from apesim.text import printable


class DistributedError(ApeError):
    """A distributed run could not be done: no cluster, workers that differ from the client,
    or a block that failed on every try. Nothing of the run is left in the workspace."""

    code = "distributed.failed"


# Dask starts workers with MALLOC_TRIM_THRESHOLD_=65536, which turns off glibc's adaptive
# mmap threshold: every numpy temporary over 128 KiB is then mapped and unmapped afresh, and
# the engine runs at half speed (measured here: 10x the page faults, twice the CPU time of a
# block). Our workers hold a few blocks at most, so they keep glibc's defaults. Dask's
# statistical profiler (a stack sample every 10 ms) costs them some 10% of a draw's CPU.
# The rest is the housekeeping of an idle cluster, measured on 2 workers at 0.09 s of CPU a
# second of wall time (0.015 s with these): the event-loop tick of every server (50 a
# second, to warn of a blocked loop), the memory monitors (10 a second), and work stealing,
# which has nothing to move among equal blocks queued a few per worker.
WORKER_CONFIG = {
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.tick.interval": "1s",
    "distributed.worker.memory.monitor-interval": "1s",
    "distributed.admin.system-monitor.interval": "2s",
    "distributed.scheduler.work-stealing": False,
}


def _dask() -> Any:
    try:
        import distributed
    except ImportError:
        raise ParameterError(
            "--workers/--scheduler: Dask is not installed; pip install 'apesim[distributed]'"
        ) from None
    return distributed


def local_cluster(workers: int, **options: Any) -> Any:
    """A `distributed.LocalCluster` of worker processes on loopback, one thread each (a
    worker then holds one block at a time), without a dashboard; `options` are passed on."""
    distributed = _dask()
    import dask

    with warnings.catch_warnings(), dask.config.set(WORKER_CONFIG):
        # Without a dashboard Dask still serves HTTP, on 8787 if free: not our affair.
        warnings.filterwarnings("ignore", message="Port .* is already in use")
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=None,
            **{"silence_logs": logging.ERROR, **options},
        )


@contextlib.contextmanager
def connect(options: ClusterOptions) -> Iterator[Any]:
    """A `distributed.Client` for the options, closed (with its local cluster) on exit."""
    distributed = _dask()
    with contextlib.ExitStack() as stack:
        if options.workers is not None:
            cluster = stack.enter_context(local_cluster(options.workers))
            address = cluster.scheduler_address
        else:
            address = options.scheduler
            assert address is not None  # ClusterOptions: one of workers and scheduler
            _check_resolvable(address)
        try:
            client = distributed.Client(
                address, timeout=options.connect_timeout, set_as_default=False
            )
        except (OSError, TimeoutError, ValueError) as exc:
            raise DistributedError(
                f"--scheduler: cannot reach the Dask scheduler at {address}"
                f" within {options.connect_timeout:g} s ({type(exc).__name__})"
            ) from None
        stack.enter_context(client)
        _check_workers(client, address)
        client.direct_to_workers = workers_reachable(client, client.scheduler_info()["workers"])
        yield client


def _check_resolvable(address: str) -> None:
    """Refuse a scheduler address whose host does not resolve before a client is made for it
    (a client that fails to start spends 40 s closing itself as the process exits)."""
    from distributed.comm import parse_address, parse_host_port

    try:
        scheme, location = parse_address(address)
        host, port = parse_host_port(location, 8786) if scheme in ("tcp", "tls") else (None, 0)
        if host is not None:
            socket.getaddrinfo(host, port)
    except (OSError, ValueError) as exc:
        raise DistributedError(
            f"--scheduler: {printable(address)[:200]} is not a reachable address "
            f"({printable(exc)[:200]})"
        ) from None


def _check_workers(client: Any, address: str) -> None:
    """Refuse workers that are missing or run another APE: their blocks would differ."""
    if not client.scheduler_info().get("workers"):
        with contextlib.suppress(Exception):
            client.wait_for_workers(1, timeout=30)
    try:
        versions = client.run(worker_versions)
    except Exception as exc:
        first = str(exc).splitlines()[0] if str(exc) else ""
        raise DistributedError(
            f"workers of {address} cannot run APE ({type(exc).__name__}: {first[:200]});"
            " install the same apesim on every worker"
        ) from None
    mine = worker_versions()
    if not versions:
        raise DistributedError(f"the Dask scheduler at {address} has no workers")
    for worker, theirs in sorted(versions.items()):
        if theirs != mine:
            raise DistributedError(
                f"worker {worker} runs {theirs}, this client {mine}: install the same APE"
            )


PROBE_TIMEOUT = 2.0  # seconds to reach a worker directly before going through the scheduler


def workers_reachable(
    client: Any, addresses: Iterable[str], timeout: float = PROBE_TIMEOUT
) -> bool:
    """Whether this client can connect to every one of these workers itself. Then it takes
    the results straight from them (pickled out of band, one trip); Dask's default takes
    them through the scheduler, for workers a client cannot reach (a cluster behind a
    gateway), and each block is then pickled in-band at both ends and crosses the network
    twice (measured: 2 s of CPU in a run of 1,000,000 patients on a local cluster)."""
    import asyncio

    from distributed.comm import connect as comm_connect

    async def probe(address: str) -> None:
        comm = await comm_connect(address, timeout=timeout, **client.connection_args)
        await comm.close()

    async def probe_all() -> None:
        await asyncio.gather(*(probe(a) for a in addresses))

    try:
        client.sync(probe_all)
    except Exception:  # refused, timed out, a handshake refused: the scheduler path is safe
        return False
    return True
