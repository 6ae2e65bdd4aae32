"""A look at a remote package from a few byte ranges, without downloading it.

`ape inspect s3://...` reads the end of the object (the ZIP's end record and central
directory), the manifest (the first entry) and each Parquet table's footer (its last bytes),
and shows what they declare: the simulation, the files with their sizes and digests, and
each table's rows and columns checked against the manifest. It is a preview, not a
verification: checksums and content need every byte (`--full` downloads and runs every
check). Everything read is untrusted: the manifest goes through the strict JSON parser and
the manifest model, footers through the bounded Thrift reader, never through Arrow.
"""

from __future__ import annotations

import io
import struct
import zipfile
from dataclasses import dataclass, field
from typing import Any

from apesim.errors import ApeError, PackageError, PackageFormatError, PackageLimitError
from apesim.package import format as fmt
from apesim.package.content import strict_json
from apesim.package.manifest import Manifest, parse_manifest
from apesim.package.parquet_layout import read_footer
from apesim.remote.objects import RemoteObject

_MIN_READ = 16 * 1024  # a ranged GET fetches at least this much (ZIP headers are small)
_LOCAL = struct.Struct("<IHHHHHIIIHH")


class _RangedFile(io.RawIOBase):
    """A read-only, seekable view of a remote object that fetches only the ranges read
    (at least `_MIN_READ` bytes a request) and keeps what it fetched."""

    def __init__(self, obj: RemoteObject) -> None:
        self._obj = obj
        self._pos = 0
        self._spans: list[tuple[int, bytes]] = []
        self.requests = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self._obj.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def _cached(self, start: int, end: int) -> bytes | None:
        for at, data in self._spans:
            if at <= start and end <= at + len(data):
                return data[start - at : end - at]
        return None

    def read(self, size: int = -1) -> bytes:
        end = self._obj.size if size is None or size < 0 else min(self._obj.size, self._pos + size)
        if self._pos >= end:
            return b""
        data = self._cached(self._pos, end)
        if data is None:
            # At least _MIN_READ bytes: forward from here, or the object's last bytes when
            # here is near its end (the end record, then the central directory before it).
            start = max(0, min(self._pos, self._obj.size - _MIN_READ))
            fetch_end = min(self._obj.size, max(end, start + _MIN_READ))
            fetched = self._obj.read_range(start, fetch_end)
            self.requests += 1
            self._spans.append((start, fetched))
            data = fetched[self._pos - start : end - start]
        self._pos += len(data)
        return data

    def readinto(self, buffer: Any) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


@dataclass
class RemotePeek:
    """What a remote package declares, and how many of its bytes were read to say it."""

    url: str
    size: int
    bytes_read: int = 0
    requests: int = 0
    entries: list[dict[str, Any]] = field(default_factory=list)
    manifest: dict[str, Any] | None = None
    tables: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: list[dict[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_json(self) -> dict[str, Any]:
        return {
            "url": self.url,
            "size": self.size,
            "bytes_read": self.bytes_read,
            "requests": self.requests,
            "verified": False,
            "entries": self.entries,
            "manifest": self.manifest,
            "tables": self.tables,
            "problems": self.problems,
        }


def _data_offset(ranged: _RangedFile, info: zipfile.ZipInfo, url: str) -> int:
    ranged.seek(info.header_offset)
    header = ranged.read(_LOCAL.size)
    if len(header) != _LOCAL.size or header[:4] != b"PK\x03\x04":
        raise PackageFormatError(f"{url}: {info.filename}: bad local header", code="zip.corrupt")
    fields = _LOCAL.unpack(header)
    return info.header_offset + _LOCAL.size + fields[9] + fields[10]


def _footer(
    ranged: _RangedFile, info: zipfile.ZipInfo, url: str, limits: fmt.ReadLimits
) -> dict[str, Any]:
    """A STORED Parquet entry's row count and columns, from its footer's bytes alone."""
    name = f"{url}: {info.filename}"
    if info.compress_type != zipfile.ZIP_STORED or info.file_size < 12:
        raise PackageFormatError(f"{name}: not a STORED Parquet file", code="parquet.invalid")
    start = _data_offset(ranged, info, url)
    end = start + info.file_size
    ranged.seek(end - min(info.file_size, _MIN_READ))  # the footer is almost always in here
    ranged.read(min(info.file_size, _MIN_READ))
    ranged.seek(end - 8)
    tail = ranged.read(8)
    if tail[4:] != b"PAR1":
        raise PackageFormatError(f"{name}: not a Parquet file", code="parquet.invalid")
    (length,) = struct.unpack("<I", tail[:4])
    if length > min(limits.max_parquet_footer_bytes, info.file_size - 12):
        raise PackageLimitError(
            f"{name}: a footer of {length:,} bytes", code="limit.parquet_footer"
        )
    ranged.seek(end - 8 - length)
    layout = read_footer(name, ranged.read(length), limits)
    return {
        "rows": layout.rows,
        "row_groups": layout.row_groups,
        "columns": [leaf.name for leaf in layout.leaves],
    }


def peek_package(obj: RemoteObject, limits: fmt.ReadLimits | None = None) -> RemotePeek:
    """Read the central directory, the manifest and the tables' footers of a remote package;
    what does not hold is a problem with its finding code (nothing raises for a bad one)."""
    limits = limits or fmt.ReadLimits()
    ranged = _RangedFile(obj)
    peek = RemotePeek(obj.url, obj.size)
    try:
        _peek_into(peek, ranged, obj, limits)
    except (PackageError, ApeError) as exc:
        peek.problems.append({"code": exc.code, "message": str(exc)})
    peek.bytes_read, peek.requests = obj.bytes_read, ranged.requests
    return peek


def _peek_into(
    peek: RemotePeek, ranged: _RangedFile, obj: RemoteObject, limits: fmt.ReadLimits
) -> None:
    url = obj.url
    try:
        archive = zipfile.ZipFile(ranged)
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise PackageFormatError(f"{url}: not a readable ZIP ({exc})", code="zip.not_zip") from None
    infos = archive.infolist()
    if len(infos) > limits.max_entries:
        raise PackageLimitError(f"{url}: {len(infos)} entries", code="limit.entries")
    peek.entries = [
        {"name": i.filename, "size": i.file_size, "stored": i.compress_type == zipfile.ZIP_STORED}
        for i in infos
    ]
    by_name = {i.filename: i for i in infos}
    info = by_name.get(fmt.MANIFEST)
    if info is None:
        raise PackageFormatError(f"{url}: no manifest.json", code="manifest.missing")
    if info.file_size > limits.max_manifest_bytes:
        raise PackageLimitError(f"{url}: manifest.json is too large", code="limit.file_size")
    try:
        raw = archive.read(info)
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise PackageFormatError(f"{url}: manifest.json: {exc}", code="zip.corrupt") from None
    manifest: Manifest = parse_manifest(strict_json(f"{url}: manifest.json", raw, limits))
    peek.manifest = manifest.model_dump(mode="json")
    for name in fmt.PARQUET_FILES:
        if name not in by_name:
            continue
        table = _footer(ranged, by_name[name], url, limits)
        listed = manifest.files.get(name)
        table["manifest_rows"] = listed.rows if listed is not None else None
        peek.tables[name] = table
        if listed is not None and listed.rows != table["rows"]:
            peek.problems.append(
                {
                    "code": "consistency.rows",
                    "message": f"{url}: {name}: the footer says {table['rows']:,} rows, the "
                    f"manifest {listed.rows:,}",
                }
            )
