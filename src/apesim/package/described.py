"""Checking a package's self-description (format 1.1): README.txt, `datapackage.json` and
`ro-crate-metadata.json` must say what APE makes of the package's checked content, so a
description that lies about a column, a file or the run is refused.

A package of this APE's minor version must match exactly (README byte for byte, the JSON
value for value, any layout); one of a newer minor version may add keys and items, but
what it shares with ours must agree.
"""

from __future__ import annotations

from typing import Any

from apesim.errors import PackageIntegrityError
from apesim.package import format as fmt
from apesim.package.bag import BAGIT_TXT, payload_manifest, tag_manifest
from apesim.package.crate import MEMBERS, ro_crate
from apesim.package.datapackage import datapackage
from apesim.package.facts import PackageFacts
from apesim.package.manifest import Manifest
from apesim.package.readme import render_readme


def difference(actual: Any, expected: Any, *, extra_ok: bool = False, path: str = "") -> str | None:
    """The first place where `actual` differs from `expected` (a JSON path such as
    `resources[0].schema.fields[3].type`), or None. With `extra_ok`, keys and list items
    beyond the expected ones are allowed."""
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return path or "(root)"
        for key in sorted(set(expected) | (set() if extra_ok else set(actual))):
            where = f"{path}.{key}" if path else str(key)
            if key not in actual or key not in expected:
                return where
            found = difference(actual[key], expected[key], extra_ok=extra_ok, path=where)
            if found:
                return found
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) < len(expected):
            return path or "(root)"
        if len(actual) > len(expected) and not extra_ok:
            return f"{path}[{len(expected)}]"
        for i, item in enumerate(expected):
            found = difference(actual[i], item, extra_ok=extra_ok, path=f"{path}[{i}]")
            if found:
                return found
        return None
    same = type(actual) is type(expected) and actual == expected
    return None if same else (path or "(root)")


def _first_line_differing(actual: str, expected: str) -> int:
    a, b = actual.splitlines(), expected.splitlines()
    for n, (x, y) in enumerate(zip(a, b, strict=False), 1):
        if x != y:
            return n
    return min(len(a), len(b)) + 1


def check_description(manifest: Manifest, content: Any, facts: PackageFacts) -> None:
    """Refuse a package whose README, Data Package, BagIt files or RO-Crate do not say what
    its checked content says (`consistency.readme`, `consistency.datapackage`,
    `consistency.bagit`, `consistency.ro_crate`)."""
    newer = manifest.version[1] > fmt.MINOR
    files = facts.files
    if not newer:
        expected = render_readme(facts)
        if content.readme != expected:
            line = _first_line_differing(content.readme, expected)
            raise PackageIntegrityError(
                f"README.txt: line {line} differs from the README of the package's content "
                "(its description was altered)",
                code="consistency.readme",
            )
    before = {n: s for n, s in files.items() if n not in (fmt.DATAPACKAGE, fmt.RO_CRATE)}
    described = {
        fmt.DATAPACKAGE: datapackage(_with(facts, before)),
        fmt.RO_CRATE: ro_crate(
            _with(facts, {n: s for n, s in files.items() if n in MEMBERS and n != fmt.RO_CRATE})
        ),
    }
    for name, expected_doc in described.items():
        actual = content.datapackage if name == fmt.DATAPACKAGE else content.ro_crate
        where = difference(actual, expected_doc, extra_ok=newer)
        if where is not None:
            code = "consistency.datapackage" if name == fmt.DATAPACKAGE else "consistency.ro_crate"
            raise PackageIntegrityError(
                f"{name}: {where[:200]} does not describe the package as its files are "
                "(the description was altered)",
                code=code,
            )
    if not newer:  # the BagIt files last: they hash the description files
        bag = {
            fmt.BAGIT: BAGIT_TXT,
            fmt.BAG_MANIFEST: payload_manifest(files),
            fmt.BAG_TAGMANIFEST: tag_manifest(files),
        }
        for name, expected_bytes in bag.items():
            if content.bag.get(name) != expected_bytes:
                raise PackageIntegrityError(
                    f"{name}: not the BagIt file of the package's files as manifest.json "
                    "lists them (it was altered)",
                    code="consistency.bagit",
                )


def _with(facts: PackageFacts, files: dict[str, Any]) -> PackageFacts:
    return PackageFacts(
        metadata=facts.metadata,
        summary=facts.summary,
        events=facts.events,
        created=facts.created,
        created_by=facts.created_by,
        ape_version=facts.ape_version,
        files=files,
    )
