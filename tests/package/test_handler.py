"""A format handler keeps no state: each check takes what the earlier ones found, so one
handler can check two packages at once, stage by stage, and each gets its own answer."""

from __future__ import annotations

import json

import pytest

from apesim.errors import PackageIntegrityError
from apesim.package import format as fmt
from apesim.package.current import CurrentFormat
from apesim.package.manifest import Manifest
from tests.package.corpus import _json_edit, _set, edited, members

Contents = dict[str, memoryview]


def _stages(handler: CurrentFormat, files: dict[str, bytes]) -> tuple[Contents, Manifest]:
    contents = {name: memoryview(data) for name, data in files.items()}
    return contents, handler.check_manifest(json.loads(files[fmt.MANIFEST])).manifest


def test_one_handler_checks_two_packages_interleaved(valid_package: bytes) -> None:
    handler = CurrentFormat()
    limits = fmt.ReadLimits()
    good = members(valid_package)
    bad = members(edited(fmt.SUMMARY, _json_edit(_set("deaths", 123_456)))(valid_package))
    runs = [_stages(handler, good), _stages(handler, bad)]
    for contents, manifest in runs:
        handler.check_files(manifest, set(contents))
        handler.check_checksums(manifest, contents)
    content = [handler.check_content(m, c, limits) for c, m in runs]
    tables = [
        handler.check_tables(m, k, c, limits) for (c, m), k in zip(runs, content, strict=True)
    ]
    with pytest.raises(PackageIntegrityError) as caught:
        handler.check_consistency(runs[1][1], content[1], tables[1], runs[1][0])
    assert caught.value.code == "consistency.summary"
    package = handler.check_consistency(runs[0][1], content[0], tables[0], runs[0][0])
    assert package.summary["deaths"] == content[0].summary["deaths"] != 123_456
    assert handler.metadata_json(tables[1]) == handler.metadata_json(tables[0])
    declared = handler.declared_summary(runs[1][0], limits)
    assert declared is not None and declared["deaths"] == 123_456
