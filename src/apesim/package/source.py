"""Reading a package's bytes from a path, bytes or a binary file, once, under a size limit."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from apesim.errors import PackageFormatError, PackageLimitError
from apesim.package import format as fmt
from apesim.safeload import read_at_most

PackageSource = Path | str | bytes | bytearray | memoryview | BinaryIO


@dataclass(frozen=True)
class LoadedSource:
    name: str
    data: memoryview
    sha256: str

    @property
    def size(self) -> int:
        return len(self.data)


def load_source(source: PackageSource, max_bytes: int, name: str | None = None) -> LoadedSource:
    """Read the whole package into memory (it is bounded by `max_bytes`) and hash it."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        shown = name or path.name
        try:
            size = path.stat().st_size
            raw = b"" if size > max_bytes else read_at_most(path, max_bytes)
            if size > max_bytes or len(raw) > max_bytes:
                raise PackageLimitError(
                    f"{shown}: {max(size, len(raw)):,} bytes or more exceeds the limit of "
                    f"{max_bytes:,}" + fmt.limit_hint("max_unpacked_gib"),
                    code="limit.total_size",
                )
        except FileNotFoundError:
            raise PackageFormatError(f"{path}: no such file", code="source.missing") from None
        except IsADirectoryError:
            raise PackageFormatError(
                f"{path}: is a directory, not a package", code="source.unreadable"
            ) from None
        except OSError as exc:
            raise PackageFormatError(
                f"{path}: cannot read ({exc.strerror})", code="source.unreadable"
            ) from None
    elif isinstance(source, (bytes, bytearray, memoryview)):
        shown = name or "package"
        raw = bytes(source)
    else:
        shown = name or str(getattr(source, "name", "package"))
        if hasattr(source, "seek"):
            source.seek(0)
        raw = source.read(max_bytes + 1)
        if len(raw) > max_bytes:
            raise PackageLimitError(
                f"{shown}: larger than the limit of {max_bytes:,} bytes", code="limit.total_size"
            )
    return LoadedSource(shown, memoryview(raw), hashlib.sha256(raw).hexdigest())
