"""Rules for entry names in an untrusted archive. A name is only ever compared with the
format's list of names; it never becomes a path."""

from __future__ import annotations

import re

from apesim.errors import PackageSecurityError
from apesim.package.safezip import ZipEntry

_DRIVE = re.compile(r"^[A-Za-z]:")
_ARCHIVE_SUFFIXES = (".zip", ".gz", ".tgz", ".tar", ".bz2", ".xz", ".7z", ".rar", ".zst", ".jar")
ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"\x1f\x8b",
    b"BZh",
    b"7z\xbc\xaf\x27\x1c",
    b"\xfd7zXZ\x00",
    b"Rar!",
    b"\x28\xb5\x2f\xfd",
)


# How to re-zip an unpacked package so that it reads again (`zip -r` alone adds directory
# entries, which the format refuses; -D leaves them out).
REZIP_HINT = (
    "a package holds files only: to re-zip an unpacked package, run "
    "`zip -r -D NEW.zip .` inside its folder (-D leaves directory entries out)"
)


def _refuse(code: str, message: str) -> PackageSecurityError:
    return PackageSecurityError(message, code=code)


def check_entry_name(entry: ZipEntry) -> None:
    """Refuse names that could mean something other than a plain relative file."""
    name = entry.name
    shown = repr(name)
    if "\x00" in name:
        raise _refuse("name.nul", f"entry name {shown} contains a NUL byte")
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        raise _refuse("name.control", f"entry name {shown} contains control characters")
    if "\\" in name:
        raise _refuse("name.backslash", f"entry name {shown} contains a backslash")
    if name.startswith("/"):
        raise _refuse("name.absolute", f"entry name {shown} is an absolute path")
    if _DRIVE.match(name):
        raise _refuse("name.drive", f"entry name {shown} starts with a drive letter")
    if any(part in ("..", ".") for part in name.split("/")) or "//" in name or not name:
        raise _refuse("name.traversal", f"entry name {shown} is not a plain relative path")
    if entry.is_symlink:
        raise _refuse("name.symlink", f"entry {shown} is a symbolic link")
    if entry.is_dir:
        raise _refuse("name.directory", f"entry {shown} is a directory entry; {REZIP_HINT}")
    if name.lower().endswith(_ARCHIVE_SUFFIXES):
        raise _refuse("name.nested_archive", f"entry {shown} is a nested archive")


def check_names(entries: list[ZipEntry], allowed: tuple[str, ...] | None) -> None:
    """Every name safe, none twice, and (when `allowed` is given) each one of the format's."""
    seen: set[str] = set()
    for entry in entries:
        check_entry_name(entry)
        key = entry.name.casefold()
        if key in seen:
            raise _refuse("name.duplicate", f"entry {entry.name!r} appears more than once")
        seen.add(key)
        if allowed is not None and entry.name not in allowed:
            raise _refuse(
                "name.unknown", f"entry {entry.name!r} is not a file of this package format"
            )
