"""A corpus of broken and malicious packages: each is refused by the right error, and the
workspace (and everything around it) is left exactly as it was."""

from __future__ import annotations

from pathlib import Path

import pytest

from apesim.errors import PackageError
from apesim.package import import_package, inspect_package
from apesim.workspace import Workspace
from tests.package.conftest import snapshot
from tests.package.corpus import CASES, Case


def test_corpus_is_large_enough() -> None:
    assert len(CASES) >= 30
    assert len({c.name for c in CASES}) == len(CASES)


def test_the_unmodified_package_is_valid(valid_package: bytes) -> None:
    report = inspect_package(valid_package)
    assert report.ok, report.error


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_import_refuses(case: Case, valid_package: bytes, tmp_path: Path) -> None:
    ws = Workspace(tmp_path / "ws")
    package = case.build(valid_package)
    assert package != valid_package or case.limits is not None
    path = tmp_path / "incoming" / "evil.zip"
    path.parent.mkdir()
    path.write_bytes(package)
    before = snapshot(tmp_path)

    with pytest.raises(case.error) as caught:
        import_package(ws, path, limits=case.limits)

    assert caught.value.code == case.code, str(caught.value)
    assert str(caught.value).startswith("evil.zip:"), "the message names the file"
    assert "\n" not in str(caught.value)
    assert snapshot(tmp_path) == before
    assert ws.list() == []


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
def test_inspect_reports_the_failing_check(case: Case, valid_package: bytes) -> None:
    report = inspect_package(case.build(valid_package), limits=case.limits)
    assert not report.ok
    assert isinstance(report.error, PackageError)
    failed = [c for c in report.checks if c.passed is False]
    assert len(failed) == 1 and failed[0].finding == case.code
    after = report.checks[report.checks.index(failed[0]) + 1 :]
    assert all(c.passed is None for c in after), "nothing runs after a failure"
