"""What a distributed run is asked to use: a local cluster of N worker processes or the
address of an existing scheduler, and the size of the patient blocks. No Dask imported."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apesim.errors import ParameterError
from apesim.text import printable

DEFAULT_BLOCK = 50_000  # patients a block (the results do not depend on it)
MAX_WORKERS = 256
CONNECT_TIMEOUT = 20.0  # seconds to reach a scheduler before giving up
SCHEDULER_ENV = "APE_DASK_SCHEDULER"


# A Dask scheduler's address: [tcp|tls|ws|wss|ucx://]host[:port], the host a name, an IPv4
# address or an IPv6 one in brackets.
_ADDRESS = re.compile(
    r"(?:(?:tcp|tls|ws|wss|ucx)://)?(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9._-]+)(?::[0-9]{1,5})?"
)


@dataclass(frozen=True)
class ClusterOptions:
    """A local cluster of `workers` processes, or the scheduler at `scheduler`."""

    workers: int | None = None
    scheduler: str | None = None
    block_size: int = DEFAULT_BLOCK
    connect_timeout: float = CONNECT_TIMEOUT

    def __post_init__(self) -> None:
        if self.workers is not None and self.scheduler is not None:
            raise ParameterError("--workers and --scheduler: give one or the other, not both")
        if self.workers is None and not self.scheduler:
            raise ParameterError("--workers or --scheduler: a distributed run needs one")
        if self.workers is not None and not 1 <= self.workers <= MAX_WORKERS:
            raise ParameterError(f"--workers: must be between 1 and {MAX_WORKERS}")
        if self.scheduler is not None and not _ADDRESS.fullmatch(self.scheduler):
            raise ParameterError(
                f"--scheduler: {printable(self.scheduler)[:200]!r} is not an address "
                "(e.g. tcp://host:8786)"
            )
        if isinstance(self.block_size, bool) or self.block_size < 1:
            raise ParameterError("--block-size: must be at least 1 patient")

    @classmethod
    def chosen(
        cls, workers: int | None, scheduler: str | None, block_size: int | None = None
    ) -> ClusterOptions | None:
        """The options a command line asked for, or None for a run in this process."""
        if workers is None and not scheduler:
            if block_size is not None:
                raise ParameterError("--block-size: only for a run with --workers or --scheduler")
            return None
        return cls(
            workers=workers,
            scheduler=scheduler or None,
            block_size=DEFAULT_BLOCK if block_size is None else block_size,
        )

    def describe(self) -> str:
        if self.workers is not None:
            return f"a local cluster of {self.workers} worker process(es)"
        return f"the Dask scheduler at {self.scheduler}"
