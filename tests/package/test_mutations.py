"""Property: whatever happens to a valid package's bytes (flipped bytes, dropped entries,
truncation, splices), reading it raises only `PackageError`s — never another exception —
and a package that still passes is byte-identical in its content."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from apesim.errors import PackageError
from apesim.package import import_package, inspect_package
from apesim.workspace import Workspace
from tests.package.corpus import members, rebuild

_SETTINGS = settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


def _read(package: bytes) -> None:
    report = inspect_package(package)
    assert report.error is None or isinstance(report.error, PackageError)
    if report.ok:  # a mutation that validates must not have changed what matters
        assert report.validated is not None


@_SETTINGS
@given(data=st.data())
def test_flipped_bytes(valid_package: bytes, data: st.DataObject) -> None:
    mutated = bytearray(valid_package)
    for _ in range(data.draw(st.integers(1, 8))):
        at = data.draw(st.integers(0, len(mutated) - 1))
        mutated[at] ^= data.draw(st.integers(1, 255))
    _read(bytes(mutated))


@_SETTINGS
@given(cut=st.integers(0, 10**9))
def test_truncated(valid_package: bytes, cut: int) -> None:
    _read(valid_package[: cut % len(valid_package)])


@_SETTINGS
@given(data=st.data())
def test_spliced(valid_package: bytes, data: st.DataObject) -> None:
    start = data.draw(st.integers(0, len(valid_package)))
    end = data.draw(st.integers(start, len(valid_package)))
    insert = data.draw(st.binary(max_size=64))
    _read(valid_package[:start] + insert + valid_package[end:])


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(data=st.data())
def test_dropped_entries(valid_package: bytes, data: st.DataObject, tmp_path: Path) -> None:
    files = members(valid_package)
    drop = data.draw(st.sets(st.sampled_from(sorted(files)), min_size=1))
    refresh = data.draw(st.booleans())
    package = rebuild({k: v for k, v in files.items() if k not in drop}, refresh=refresh)
    report = inspect_package(package)
    assert not report.ok  # the manifest still lists what was dropped
    assert isinstance(report.error, PackageError)
    ws = Workspace(tmp_path / f"ws-{len(drop)}-{refresh}")
    with pytest.raises(PackageError):
        import_package(ws, package)
    assert ws.list() == []
