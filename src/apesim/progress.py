"""The progress callback of long operations (a run, an export): called with the work done
so far and the total, in the operation's own units (patients, bytes)."""

from __future__ import annotations

from collections.abc import Callable

ProgressCallback = Callable[[int, int], None]
