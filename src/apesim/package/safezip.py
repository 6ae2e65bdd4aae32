"""A strict reader of the ZIP container for untrusted packages.

It parses the end record, the central directory and every local header itself, and accepts
only an archive whose entries tile the file exactly: no bytes before the first entry, none
between entries, none after the end record, no two entries sharing bytes (CVE-2024-0450, which
the Python 3.11 here does not check), local and central headers in agreement, no encryption,
no ZIP64, STORED or DEFLATE only, regular files only (no device, FIFO, socket, setuid or
volume-label entries) and extra fields that are well-formed (id, length) records. Entry data is
then inflated with limits applied to the bytes actually produced, not to the sizes the headers
claim.
"""

from __future__ import annotations

import stat
import struct
import zlib
from collections import Counter
from dataclasses import dataclass

from apesim.errors import PackageFormatError, PackageLimitError, PackageSecurityError
from apesim.package.format import limit_hint

_EOCD = struct.Struct("<IHHHHIIH")
_CENTRAL = struct.Struct("<IHHHHHHIIIHHHHHII")
_LOCAL = struct.Struct("<IHHHHHIIIHH")
_EOCD_SIG, _CENTRAL_SIG, _LOCAL_SIG = 0x06054B50, 0x02014B50, 0x04034B50
_DESCRIPTOR_SIG, _ZIP64_LOCATOR_SIG = 0x08074B50, 0x07064B50
_MAX_COMMENT = 0xFFFF
STORED, DEFLATED = 0, 8
_FLAG_ENCRYPTED, _FLAG_DESCRIPTOR, _FLAG_STRONG, _FLAG_UTF8 = 0x1, 0x8, 0x40, 0x800
_CHUNK = 1 << 20
_UNIX = 3  # "version made by" upper byte: the external attributes' upper 16 bits are st_mode
_DOS_VOLUME, _DOS_DIRECTORY = 0x08, 0x10  # MS-DOS attribute bits (the low byte)
_SPECIAL_BITS = stat.S_ISUID | stat.S_ISGID | stat.S_ISVTX
_EXTRA_HEADER = struct.Struct("<HH")


@dataclass(frozen=True)
class ZipEntry:
    """One member as described by its central header, with where its data lies."""

    name: str
    raw_name: bytes
    method: int
    flags: int
    crc: int
    compressed_size: int
    size: int
    header_offset: int
    data_offset: int
    end_offset: int  # first byte after the data (and its descriptor)
    is_symlink: bool
    is_dir: bool


def _fail(cls: type[Exception], code: str, message: str) -> Exception:
    return cls(message, code=code)  # type: ignore[call-arg]


def _find_end_record(buf: memoryview) -> tuple[int, tuple[int, ...]]:
    size = len(buf)
    if size < _EOCD.size:
        raise _fail(PackageFormatError, "zip.not_zip", "not a ZIP file (too short)")
    start = max(0, size - _EOCD.size - _MAX_COMMENT)
    tail = bytes(buf[start:])
    pos = tail.rfind(b"PK\x05\x06", 0, len(tail) - _EOCD.size + 4)
    seen_signature = False
    while pos >= 0:
        fields = _EOCD.unpack_from(tail, pos)
        seen_signature = True
        if start + pos + _EOCD.size + fields[7] == size:
            return start + pos, fields
        pos = tail.rfind(b"PK\x05\x06", 0, pos)
    if seen_signature:
        raise _fail(
            PackageSecurityError,
            "zip.appended",
            "data is appended after the end of the ZIP archive; refusing a doctored file",
        )
    if bytes(buf[:4]) == b"PK\x03\x04":
        raise _fail(
            PackageFormatError,
            "zip.truncated",
            "the ZIP archive is truncated (no end record); download or copy it again",
        )
    raise _fail(PackageFormatError, "zip.not_zip", "not a ZIP file")


def _decode_name(raw: bytes, flags: int) -> str:
    if flags & _FLAG_UTF8:
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            raise _fail(
                PackageSecurityError, "name.encoding", f"entry name {raw!r} is not valid UTF-8"
            ) from None
    return raw.decode("cp437")


def check_extra(extra: bytes | memoryview, where: str) -> None:
    """Refuse an extra area that is not a sequence of (id, length, data) records filling it
    exactly: a length that overruns the area makes readers disagree about the entry."""
    pos, end = 0, len(extra)
    while pos < end:
        if pos + _EXTRA_HEADER.size > end:
            raise _fail(
                PackageSecurityError,
                "zip.extra_field",
                f"{where}: malformed extra field (a record header is cut short); "
                "refusing a doctored file",
            )
        tag, length = _EXTRA_HEADER.unpack_from(extra, pos)
        pos += _EXTRA_HEADER.size + length
        if pos > end:
            raise _fail(
                PackageSecurityError,
                "zip.extra_field",
                f"{where}: malformed extra field 0x{tag:04x} (its length overruns the "
                "header); refusing a doctored file",
            )


def _check_file_type(name: str, made_by: int, ext_attr: int) -> tuple[bool, bool]:
    """(is a symbolic link, is a directory) from the external attributes; any other file
    type than a regular file, and setuid, setgid or sticky bits, are refused here."""
    mode = ext_attr >> 16
    unix = (made_by >> 8) == _UNIX
    kind = stat.S_IFMT(mode) if unix else 0
    if ext_attr & _DOS_VOLUME:
        raise _fail(
            PackageSecurityError, "zip.file_type", f"{name}: a volume label, not a regular file"
        )
    is_link = kind == stat.S_IFLNK
    is_dir = kind == stat.S_IFDIR or bool(ext_attr & _DOS_DIRECTORY) or stat.S_ISDIR(mode)
    if unix and kind not in (0, stat.S_IFREG, stat.S_IFLNK, stat.S_IFDIR):
        what = {
            stat.S_IFCHR: "a character device",
            stat.S_IFBLK: "a block device",
            stat.S_IFIFO: "a FIFO",
            stat.S_IFSOCK: "a socket",
        }.get(kind, f"of file type 0o{kind:o}")
        raise _fail(
            PackageSecurityError,
            "zip.file_type",
            f"{name}: the entry is {what}, not a regular file; refusing a doctored file",
        )
    if unix and mode & _SPECIAL_BITS:
        raise _fail(
            PackageSecurityError,
            "zip.setuid",
            f"{name}: the entry has setuid, setgid or sticky permission bits; "
            "refusing a doctored file",
        )
    return is_link, is_dir


def read_directory(buf: memoryview, max_entries: int) -> list[ZipEntry]:
    """Parse and cross-check the archive's structure; return entries in central order."""
    eocd_at, (_, disk, cd_disk, n_disk, n_total, cd_size, cd_offset, _) = _find_end_record(buf)
    if eocd_at >= 20 and struct.unpack_from("<I", buf, eocd_at - 20)[0] == _ZIP64_LOCATOR_SIG:
        raise _fail(PackageFormatError, "zip.zip64", "ZIP64 archives are not used by format 1.0")
    if disk or cd_disk or n_disk != n_total:
        raise _fail(
            PackageFormatError, "zip.multidisk", "multi-part ZIP archives are not supported"
        )
    if 0xFFFF in (n_total,) or 0xFFFFFFFF in (cd_size, cd_offset):
        raise _fail(PackageFormatError, "zip.zip64", "ZIP64 archives are not used by format 1.0")
    if n_total > max_entries:
        raise _fail(
            PackageLimitError,
            "limit.entries",
            f"the archive has {n_total} entries; at most {max_entries} are allowed"
            + limit_hint("max_entries"),
        )
    if cd_offset + cd_size > eocd_at:
        raise _fail(
            PackageFormatError,
            "zip.truncated",
            "the ZIP central directory lies outside the file; it is truncated or corrupt",
        )
    if cd_offset + cd_size < eocd_at:
        raise _fail(
            PackageSecurityError,
            "zip.hidden_data",
            "hidden data between the central directory and the end record",
        )

    entries: list[ZipEntry] = []
    pos = cd_offset
    for _ in range(n_total):
        if pos + _CENTRAL.size > cd_offset + cd_size:
            raise _fail(PackageFormatError, "zip.corrupt", "the central directory is cut short")
        (
            sig,
            made_by,
            _,
            flags,
            method,
            _,
            _,
            crc,
            csize,
            usize,
            n_len,
            x_len,
            c_len,
            disk_start,
            _,
            ext_attr,
            offset,
        ) = _CENTRAL.unpack_from(buf, pos)
        if sig != _CENTRAL_SIG:
            raise _fail(PackageFormatError, "zip.corrupt", "bad central directory signature")
        raw = bytes(buf[pos + _CENTRAL.size : pos + _CENTRAL.size + n_len])
        extra_at = pos + _CENTRAL.size + n_len
        pos += _CENTRAL.size + n_len + x_len + c_len
        if pos > cd_offset + cd_size:
            raise _fail(PackageFormatError, "zip.corrupt", "the central directory is cut short")
        name = _decode_name(raw, flags)
        check_extra(buf[extra_at : extra_at + x_len], f"{name} (central header)")
        if flags & (_FLAG_ENCRYPTED | _FLAG_STRONG):
            raise _fail(
                PackageSecurityError, "zip.encrypted", f"{name}: encrypted entries are not allowed"
            )
        if method not in (STORED, DEFLATED):
            raise _fail(
                PackageFormatError,
                "zip.method",
                f"{name}: compression method {method} is not supported (STORED or DEFLATE)",
            )
        if disk_start:  # a one-part archive's entries all start on disk 0
            raise _fail(
                PackageFormatError,
                "zip.multidisk",
                f"{name}: starts on disk {disk_start} of a multi-part archive",
            )
        if 0xFFFFFFFF in (csize, usize, offset):
            raise _fail(PackageFormatError, "zip.zip64", f"{name}: ZIP64 entries are not used")
        if method == STORED and csize != usize:
            raise _fail(PackageFormatError, "zip.corrupt", f"{name}: stored entry sizes disagree")
        is_symlink, is_dir = _check_file_type(name, made_by, ext_attr)
        entries.append(
            ZipEntry(
                name,
                raw,
                method,
                flags,
                crc,
                csize,
                usize,
                offset,
                0,
                0,
                is_symlink,
                name.endswith("/") or is_dir,
            )
        )
    if pos != cd_offset + cd_size:
        raise _fail(
            PackageSecurityError,
            "zip.hidden_data",
            "the central directory holds more than its entries",
        )
    return _check_layout(buf, entries, cd_offset)


def _check_layout(buf: memoryview, entries: list[ZipEntry], cd_offset: int) -> list[ZipEntry]:
    placed: dict[int, ZipEntry] = {}
    expected = 0
    for entry in sorted(entries, key=lambda e: e.header_offset):
        name = entry.name
        if entry.header_offset < expected:
            raise _fail(
                PackageSecurityError,
                "zip.overlap",
                f"{name}: its data overlaps another entry (a ZIP bomb or a doctored file)",
            )
        if entry.header_offset > expected:
            code, what = (
                ("zip.prepended", "data is prepended before the first entry")
                if expected == 0
                else ("zip.hidden_data", f"hidden data before entry {name}")
            )
            raise _fail(PackageSecurityError, code, what)
        if entry.header_offset + _LOCAL.size > cd_offset:
            raise _fail(PackageFormatError, "zip.corrupt", f"{name}: local header out of range")
        (sig, _, flags, method, _, _, crc, csize, usize, n_len, x_len) = _LOCAL.unpack_from(
            buf, entry.header_offset
        )
        local_name = bytes(
            buf[entry.header_offset + _LOCAL.size : entry.header_offset + _LOCAL.size + n_len]
        )
        described = entry.flags & _FLAG_DESCRIPTOR
        extra_at = entry.header_offset + _LOCAL.size + n_len
        if extra_at + x_len > cd_offset:
            raise _fail(PackageFormatError, "zip.corrupt", f"{name}: local header out of range")
        if (
            sig != _LOCAL_SIG
            or flags != entry.flags
            or method != entry.method
            or local_name != entry.raw_name
            or (
                not described
                and (crc, csize, usize) != (entry.crc, entry.compressed_size, entry.size)
            )
        ):
            raise _fail(
                PackageSecurityError,
                "zip.header_mismatch",
                f"{name}: local and central headers disagree",
            )
        check_extra(buf[extra_at : extra_at + x_len], f"{name} (local header)")
        data_offset = entry.header_offset + _LOCAL.size + n_len + x_len
        end = data_offset + entry.compressed_size
        if described:
            if end + 12 > cd_offset:
                raise _fail(PackageFormatError, "zip.corrupt", f"{name}: data descriptor missing")
            first = struct.unpack_from("<I", buf, end)[0]
            at = end + 4 if first == _DESCRIPTOR_SIG else end
            if struct.unpack_from("<III", buf, at) != (
                entry.crc,
                entry.compressed_size,
                entry.size,
            ):
                raise _fail(
                    PackageSecurityError,
                    "zip.header_mismatch",
                    f"{name}: data descriptor and central header disagree",
                )
            end = at + 12
        if end > cd_offset:
            raise _fail(
                PackageFormatError,
                "zip.truncated",
                f"{name}: entry data runs past the central directory (truncated?)",
            )
        placed[entry.header_offset] = ZipEntry(
            **{**entry.__dict__, "data_offset": data_offset, "end_offset": end}
        )
        expected = end
    if expected != cd_offset:
        raise _fail(
            PackageSecurityError,
            "zip.hidden_data",
            "hidden data between the last entry and the central directory",
        )
    return [placed[e.header_offset] for e in entries]


_MADE_BY = (_UNIX << 8) | 20  # Unix, ZIP 2.0: what the format's writer records
_NEEDED = 20
_REGULAR_0644 = 0o100644 << 16


def check_canonical(buf: memoryview, entries: list[ZipEntry], own_date: set[str]) -> None:
    """A signed package's ZIP headers hold exactly what the format's writer writes (version
    2.0 made on Unix, mode 0644, no extra fields or comments, one date shared by every entry
    except those in `own_date`, local and central alike), so that no byte of the file escapes
    the signature: the manifest covers the members' contents, this rule the rest."""
    central = _central_positions(buf)
    stamps: dict[str, tuple[int, int]] = {}
    for entry in entries:
        pos = central[entry.header_offset]
        (_, made_by, needed, _, _, c_time, c_date, *_, x_len, c_len, _, internal, ext_attr, _) = (
            _CENTRAL.unpack_from(buf, pos)
        )
        (_, l_needed, _, _, l_time, l_date, _, _, _, _, l_x_len) = _LOCAL.unpack_from(
            buf, entry.header_offset
        )
        problem = None
        if made_by != _MADE_BY or needed != _NEEDED or l_needed != _NEEDED:
            problem = "its ZIP version fields"
        elif internal or ext_attr != _REGULAR_0644:
            problem = "its file attributes"
        elif x_len or c_len or l_x_len:
            problem = "an extra field or comment"
        elif (l_time, l_date) != (c_time, c_date):
            problem = "local and central dates that differ"
        if problem is not None:
            raise _noncanonical(entry.name, problem)
        if entry.name not in own_date:
            stamps[entry.name] = (c_time, c_date)
    if stamps:
        shared = Counter(stamps.values()).most_common(1)[0][0]
        for name, stamp in stamps.items():
            if stamp != shared:
                raise _noncanonical(name, "a date unlike the other members'")


def _noncanonical(name: str, problem: str) -> Exception:
    return _fail(
        PackageSecurityError,
        "zip.noncanonical",
        f"{name}: {problem}; a signed package's ZIP headers must be as the format writes them "
        "(was it edited after signing?)",
    )


def _central_positions(buf: memoryview) -> dict[int, int]:
    """Each entry's local header offset -> where its central header starts (the directory
    was checked by read_directory)."""
    _, fields = _find_end_record(buf)
    pos, found = fields[6], {}
    for _ in range(fields[4]):
        header = _CENTRAL.unpack_from(buf, pos)
        found[header[16]] = pos
        pos += _CENTRAL.size + header[10] + header[11] + header[12]
    return found


def read_entry(buf: memoryview, entry: ZipEntry, *, max_bytes: int, max_ratio: float) -> memoryview:
    """The entry's bytes, inflated under limits on what is actually produced; CRC checked."""
    raw = buf[entry.data_offset : entry.data_offset + entry.compressed_size]
    if entry.size > max_bytes:
        raise _fail(
            PackageLimitError,
            "limit.file_size",
            f"{entry.name}: {entry.size:,} bytes exceeds the limit of {max_bytes:,}",
        )
    if entry.method == STORED:
        data = raw
    else:
        limit = min(max_bytes, entry.size)
        inflater = zlib.decompressobj(-15)
        parts: list[bytes] = []
        produced = 0
        pending: bytes | memoryview = raw
        try:
            while pending:
                piece = inflater.decompress(pending, _CHUNK)
                produced += len(piece)
                if produced > max_ratio * max(entry.compressed_size, 1):
                    raise _fail(
                        PackageLimitError,
                        "limit.ratio",
                        f"{entry.name}: compression ratio exceeds the limit of "
                        f"{max_ratio:.0f}:1 (a ZIP bomb?)",
                    )
                if produced > limit:
                    raise _fail(
                        PackageLimitError,
                        "limit.size_mismatch",
                        f"{entry.name}: inflates beyond its declared size of "
                        f"{entry.size:,} bytes (a ZIP bomb?)",
                    )
                parts.append(piece)
                pending = inflater.unconsumed_tail
            tail = inflater.flush()
        except zlib.error as exc:
            raise _fail(
                PackageFormatError, "zip.corrupt", f"{entry.name}: corrupt compressed data ({exc})"
            ) from None
        produced += len(tail)
        parts.append(tail)
        if not inflater.eof or inflater.unused_data or produced != entry.size:
            raise _fail(
                PackageFormatError,
                "zip.corrupt",
                f"{entry.name}: compressed data does not match its declared size",
            )
        data = memoryview(b"".join(parts))
    if entry.compressed_size and len(data) / entry.compressed_size > max_ratio:
        raise _fail(
            PackageLimitError,
            "limit.ratio",
            f"{entry.name}: compression ratio {len(data) / entry.compressed_size:.0f}:1 "
            f"exceeds the limit of {max_ratio:.0f}:1",
        )
    if zlib.crc32(data) != entry.crc:
        raise _fail(PackageFormatError, "zip.crc", f"{entry.name}: CRC check failed (corrupt)")
    return data
