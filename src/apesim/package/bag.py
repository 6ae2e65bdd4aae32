"""The BagIt files of format 1.1: an unzipped package is also a BagIt 1.0 bag (RFC 8493),
its tables the payload under `data/` and its other files tag files, so archives that check
bags (and `sha256sum -c`) can check it without APE.

Made from the manifest's SHA-256s alone; the reader makes them again and compares
(`consistency.bagit`).
"""

from __future__ import annotations

from typing import Any

from apesim.package import format as fmt

BAGIT_TXT = b"BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"


def _lines(files: dict[str, dict[str, Any]], names: list[str]) -> bytes:
    return "".join(f"{files[n]['sha256']}  {n}\n" for n in sorted(names)).encode("ascii")


def payload_manifest(files: dict[str, dict[str, Any]]) -> bytes:
    """`manifest-sha256.txt`: the SHA-256 of every file under `data/`."""
    return _lines(files, [n for n in files if n.startswith("data/")])


def tag_manifest(files: dict[str, dict[str, Any]]) -> bytes:
    """`tagmanifest-sha256.txt`: the SHA-256 of every other file but manifest.json (which
    lists this one) and itself."""
    skip = (fmt.MANIFEST, fmt.BAG_TAGMANIFEST)
    return _lines(files, [n for n in files if not n.startswith("data/") and n not in skip])
