"""Builders of broken and malicious packages, each made from a valid package by code.

Every case names the rule it breaks and the error it must raise. Structural attacks edit
the ZIP's bytes; content attacks rebuild the ZIP with Python's zipfile, optionally with a
manifest recomputed so that the attack reaches the later stages.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import struct
import warnings
import zipfile
from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.parquet as pq
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apesim.errors import (
    PackageError,
    PackageFormatError,
    PackageIntegrityError,
    PackageLimitError,
    PackageSecurityError,
    PackageVersionError,
)
from apesim.package import format as fmt
from apesim.package.format import ReadLimits
from apesim.package.signature import PAYLOAD_TYPE, key_id, member_name, pae, sign_manifest
from apesim.results.parquet_io import parquet_options
from tests.package.parquet_forge import I32, Forged, V, forge


@dataclass(frozen=True)
class Case:
    name: str
    build: Callable[[bytes], bytes]
    error: type[PackageError]
    code: str
    limits: ReadLimits | None = None


def members(package: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        return {i.filename: zf.read(i) for i in zf.infolist()}


def rebuild(
    files: dict[str, bytes],
    *,
    refresh: bool = True,
    manifest_edit: Callable[[dict], None] | None = None,
) -> bytes:
    """A ZIP of `files`; with `refresh`, the manifest's sizes and hashes are recomputed."""
    files = dict(files)
    if fmt.MANIFEST in files and (refresh or manifest_edit):
        manifest = json.loads(files[fmt.MANIFEST])
        if refresh:
            for name, data in files.items():
                if name in manifest["files"]:
                    manifest["files"][name]["size"] = len(data)
                    manifest["files"][name]["sha256"] = hashlib.sha256(data).hexdigest()
        if manifest_edit:
            manifest_edit(manifest)
        files[fmt.MANIFEST] = json.dumps(manifest, indent=2).encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in files.items():
            method = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            info.create_system, info.external_attr = 3, 0o100644 << 16  # as the writer's
            zf.writestr(info, data, compress_type=method)
    return out.getvalue()


def with_file(name: str, data: bytes, *, listed: bool = True) -> Callable[[bytes], bytes]:
    def build(package: bytes) -> bytes:
        files = members(package)
        files[name] = data

        def edit(manifest: dict) -> None:
            if listed:
                manifest["files"][name] = {
                    "size": len(data),
                    "sha256": hashlib.sha256(data).hexdigest(),
                }

        return rebuild(files, manifest_edit=edit)

    return build


def edited(
    name: str, change: Callable[[bytes], bytes], *, refresh: bool = True
) -> Callable[[bytes], bytes]:
    def build(package: bytes) -> bytes:
        files = members(package)
        files[name] = change(files[name])
        return rebuild(files, refresh=refresh)

    return build


def manifest_edit(change: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    return lambda package: rebuild(members(package), manifest_edit=change)


def _offsets(package: bytes) -> tuple[int, int, int]:
    """(end record offset, central directory offset, central directory size)."""
    eocd = package.rfind(b"PK\x05\x06")
    cd_size, cd_offset = struct.unpack_from("<II", package, eocd + 12)
    return eocd, cd_offset, cd_size


def _central_records(package: bytes) -> list[int]:
    _, cd_offset, cd_size = _offsets(package)
    out, pos = [], cd_offset
    while pos < cd_offset + cd_size:
        out.append(pos)
        n, x, c = struct.unpack_from("<HHH", package, pos + 28)
        pos += 46 + n + x + c
    return out


def set_flag_bit(bit: int) -> Callable[[bytes], bytes]:
    def build(package: bytes) -> bytes:
        data = bytearray(package)
        central = _central_records(package)[0]
        local = struct.unpack_from("<I", data, central + 42)[0]
        for at in (central + 8, local + 6):
            struct.pack_into("<H", data, at, struct.unpack_from("<H", data, at)[0] | bit)
        return bytes(data)

    return build


def rename_entry(old: str, new: str) -> Callable[[bytes], bytes]:
    """Rename an entry in both headers (same length keeps every offset valid)."""
    assert len(old) == len(new)

    def build(package: bytes) -> bytes:
        return package.replace(old.encode(), new.encode())

    return build


def prepend_with_offsets(package: bytes) -> bytes:
    """A self-extractor-style stub before the archive, offsets adjusted (like `zip -A`)."""
    stub = b"MZ" + b"\x90" * 510
    out = io.BytesIO()
    out.write(stub)
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members(package).items():
            method = zipfile.ZIP_STORED if name.endswith(".parquet") else zipfile.ZIP_DEFLATED
            zf.writestr(name, data, compress_type=method)
    return out.getvalue()


def duplicate_central_record(package: bytes) -> bytes:
    """A second central record for the first entry's bytes under another name: overlap."""
    eocd, cd_offset, cd_size = _offsets(package)
    first = _central_records(package)[0]
    n, x, c = struct.unpack_from("<HHH", package, first + 28)
    record = bytearray(package[first : first + 46 + n + x + c])
    name = b"overlap" + b"_" * (n - 7) if n >= 7 else b"o" * n
    record[46 : 46 + n] = name[:n]
    end = bytearray(package[eocd:])
    count = struct.unpack_from("<H", end, 10)[0] + 1
    struct.pack_into("<HHI", end, 8, count, count, cd_size + len(record))
    return package[: cd_offset + cd_size] + bytes(record) + bytes(end)


def overlapping_entries(package: bytes) -> bytes:
    """Point the second entry's central record at the first entry's local header."""
    data = bytearray(package)
    records = _central_records(package)
    first_local = struct.unpack_from("<I", data, records[0] + 42)[0]
    struct.pack_into("<I", data, records[1] + 42, first_local)
    return bytes(data)


def local_crc_differs(package: bytes) -> bytes:
    data = bytearray(package)
    local = struct.unpack_from("<I", data, _central_records(package)[1] + 42)[0]
    struct.pack_into("<I", data, local + 14, struct.unpack_from("<I", data, local + 14)[0] ^ 1)
    return bytes(data)


def symlink_entry(package: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members(package).items():
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            if name == fmt.README:
                info.create_system = 3
                info.external_attr = 0o120777 << 16
            zf.writestr(info, data)
    return out.getvalue()


def duplicate_name(package: bytes) -> bytes:
    files = members(package)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf, warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns of the duplicate
        for name, data in files.items():
            zf.writestr(name, data)
        zf.writestr(fmt.PROTOCOL, files[fmt.PROTOCOL])
    return out.getvalue()


def understated_size(package: bytes) -> bytes:
    """Both headers claim README.txt inflates to 100 bytes; it inflates to more."""
    data = bytearray(package)
    for central in _central_records(package):
        n = struct.unpack_from("<H", data, central + 28)[0]
        if bytes(data[central + 46 : central + 46 + n]) == fmt.README.encode():
            local = struct.unpack_from("<I", data, central + 42)[0]
            struct.pack_into("<I", data, central + 24, 100)
            struct.pack_into("<I", data, local + 22, 100)
    return bytes(data)


def many_entries(package: bytes) -> bytes:
    files = members(package)
    for i in range(70):
        files[f"extra{i}.txt"] = b"x"
    return rebuild(files, refresh=False)


def bomb_readme(package: bytes) -> bytes:
    files = members(package)
    files[fmt.README] = b"\0" * (8 * 1024 * 1024)
    return rebuild(files)


def parquet_with(name: str, change: Callable[[pa.Table], pa.Table]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        table = change(pq.read_table(io.BytesIO(data), use_threads=False))
        sink = io.BytesIO()
        pq.write_table(table, sink)
        return sink.getvalue()

    return edited(name, edit)


def _json_edit(change: Callable[[dict], None]) -> Callable[[bytes], bytes]:
    def edit(data: bytes) -> bytes:
        value = json.loads(data)
        change(value)
        return json.dumps(value, indent=2, sort_keys=True).encode()

    return edit


def _tamper_audit(data: bytes) -> bytes:
    return data.replace(b'"user":"', b'"user":"mallory-', 1)


def _orphan_visit(table: pa.Table) -> pa.Table:
    ids = table.column("patient_id").to_pylist()
    ids[-1] = 999_999
    return table.set_column(0, table.schema.field(0), pa.array(ids, pa.int32()))


def _invalid_utf8_name(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("name")
    bad = pa.array([b"caf\xe9 \xff"], pa.binary()).view(pa.string())  # no validation
    return table.set_column(i, table.schema.field(i), bad)


def _three_metadata_rows(table: pa.Table) -> pa.Table:
    return pa.concat_tables([table, table, table])


def _metadata_rows(package: bytes) -> bytes:
    """Three metadata rows, declared in the manifest: refused before they are decoded."""
    files = members(parquet_with(fmt.METADATA, _three_metadata_rows)(package))
    return rebuild(files, manifest_edit=lambda m: m["files"][fmt.METADATA].update(rows=3))


def _unknown_state(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("state")
    states = table.column(i).combine_chunks()
    odd = pa.DictionaryArray.from_arrays(
        states.indices, pa.array(["NAIVE", "STABLE", "ACTIVE", "<script>x</script>"])
    )
    return table.set_column(i, table.schema.field(i), odd)


def _vision_30000(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("vision")
    values = table.column(i).to_pylist()
    values[0] = 30_000
    return table.set_column(i, table.schema.field(i), pa.array(values, pa.int16()))


def _constant_visits(rows: int) -> Callable[[pa.Table], pa.Table]:
    """A visits table of `rows` identical rows: tiny on disk, large once decoded."""

    def change(table: pa.Table) -> pa.Table:
        return table.slice(0, 1).take(pa.array([0] * rows))

    return change


def _visits_bomb(package: bytes) -> bytes:
    """300,000 identical visits, their count declared honestly in the manifest."""
    rows = 300_000
    files = members(package)
    table = _constant_visits(rows)(pq.read_table(io.BytesIO(files[fmt.VISITS]), use_threads=False))
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="zstd")
    files[fmt.VISITS] = sink.getvalue()
    return rebuild(files, manifest_edit=lambda m: m["files"][fmt.VISITS].update(rows=rows))


def _years(value: float) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index("years")
        return table.set_column(i, table.schema.field(i), pa.array([value], pa.float64()))

    return change


def _float_vision(table: pa.Table) -> pa.Table:
    i = table.schema.get_field_index("vision")
    return table.set_column(
        i, pa.field("vision", pa.float32(), nullable=False), table.column(i).cast(pa.float32())
    )


def _incompressible(n: int) -> str:
    """Text that deflate cannot shrink much (so the size limit, not the ratio, trips)."""
    chunks, i = [], 0
    while len(chunks) * 64 < n:
        chunks.append(hashlib.sha256(str(i).encode()).hexdigest())
        i += 1
    return "".join(chunks)[:n]


ALIAS_BOMB = b"""a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
name: *c
"""


def _set(path: str, value: object) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        keys = path.split(".")
        for key in keys[:-1]:
            d = d[key]
        d[keys[-1]] = value

    return change


def _delete(path: str) -> Callable[[dict], None]:
    def change(d: dict) -> None:
        keys = path.split(".")
        for key in keys[:-1]:
            d = d[key]
        del d[keys[-1]]

    return change


# --- Round two (issue 15): builders, one block per area --------------------------------
# (Parquet footer and pages)
def _forged(name: str, edit: Callable[[Forged], None]) -> Callable[[bytes], bytes]:
    """The package with one Parquet file forged at the Thrift level, manifest refreshed."""
    return edited(name, lambda data: forge(data, edit))


def _required_but_levelled(column: str) -> Callable[[Forged], None]:
    """Declare an optional column REQUIRED: its size statistics still carry two definition
    levels (Arrow's C++ aborted the process on this)."""

    def edit(f: Forged) -> None:
        f.schema(column)[3] = V(I32, 0)

    return edit


def _text_as_int32(column: str) -> Callable[[Forged], None]:
    """Give a string column the physical type INT32 in the schema and every chunk (Arrow's
    C++ aborted the process on its byte-array size statistics)."""

    def edit(f: Forged) -> None:
        f.schema(column)[1] = V(I32, 1)
        i = f.column_index(column)
        for g in range(len(f.pages)):
            f.meta(g, i)[1] = V(I32, 1)

    return edit


def _page_declares(column: str, size: int, *, dictionary: bool) -> Callable[[Forged], None]:
    """A page of `column` that declares `size` uncompressed bytes (Arrow allocates that)."""

    def edit(f: Forged) -> None:
        pages = f.pages[0][f.column_index(column)]
        page = next(p for p in pages if (p.header[1].value == 2) == dictionary)
        page.header[2] = V(I32, size)

    return edit


def _row_groups(empty: int) -> Callable[[bytes], bytes]:
    """The patients table followed by `empty` empty row groups (300,000 took 8 s and 2 GB)."""

    def change(data: bytes) -> bytes:
        table = pq.read_table(io.BytesIO(data), use_threads=False)
        sink = io.BytesIO()
        with pq.ParquetWriter(sink, table.schema, **parquet_options(table.schema)) as writer:
            writer.write_table(table)
            for _ in range(empty):
                writer.write_table(table.slice(0, 0))
        return sink.getvalue()

    return change


def _deflated_parquet(package: bytes) -> bytes:
    """The visits table DEFLATEd inside the ZIP (a 1 GiB one at 186:1 was inflated whole)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members(package).items():
            zf.writestr(
                zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0)),
                data,
                compress_type=zipfile.ZIP_DEFLATED,
            )
    return out.getvalue()


# (ZIP container)


def entry_attributes(
    target: str, external_attr: int, create_system: int = 3
) -> Callable[[bytes], bytes]:
    """The package again, `target`'s central record carrying these external attributes (the
    upper 16 bits are st_mode when `create_system` is Unix, 3; the low byte MS-DOS bits)."""

    def build(package: bytes) -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as zf:
            for name, data in members(package).items():
                info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
                if name == target:
                    info.create_system = create_system
                    info.external_attr = external_attr
                zf.writestr(info, data)
        return out.getvalue()

    return build


def _unix_mode(mode: int) -> Callable[[bytes], bytes]:
    return entry_attributes(fmt.README, mode << 16)


_EXTRA = struct.pack("<HH", 0xCAFE, 4) + b"\0\0\0\0"  # one well-formed record, 8 bytes


def _with_extra(package: bytes) -> bytes:
    """README.txt carrying the well-formed extra record `_EXTRA` in both headers."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members(package).items():
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            if name == fmt.README:
                info.extra = _EXTRA
            zf.writestr(info, data)
    return out.getvalue()


def extra_overrun(header: str) -> Callable[[bytes], bytes]:
    """README.txt's extra record in the `local` or `central` header claims 64 bytes of data
    where the extra area holds 4 (the area's own length, and every offset, stay valid)."""

    def build(package: bytes) -> bytes:
        data = bytearray(_with_extra(package))
        for central in _central_records(bytes(data)):
            n = struct.unpack_from("<H", data, central + 28)[0]
            if bytes(data[central + 46 : central + 46 + n]) == fmt.README.encode():
                local = struct.unpack_from("<I", data, central + 42)[0]
                extra = central + 46 + n if header == "central" else local + 30 + n
                assert bytes(data[extra : extra + 8]) == _EXTRA
                struct.pack_into("<H", data, extra + 2, 64)
        return bytes(data)

    return build


def _preview_cell(row: int, column: int, value: bytes) -> Callable[[bytes], bytes]:
    """results_preview.csv with one cell of data row `row` replaced (manifest refreshed)."""

    def change(data: bytes) -> bytes:
        lines = data.split(b"\n")
        cells = lines[row + 1].split(b",")
        cells[column] = value
        lines[row + 1] = b",".join(cells)
        return b"\n".join(lines)

    return edited(fmt.PREVIEW, change)


# (text and consistency)
# Text that would drive a terminal or forge a line: an ESC sequence (clear the screen, red),
# a C1 CSI, a right-to-left override, a newline forging a second error line.
HOSTILE_TEXT = {
    "esc": "x\x1b[2J\x1b[31mred",
    "c1": "x\x9b31mred",
    "bidi": "report\u202etxt.exe",
    "newline": "ok\nape: error: forged",
}


def _metadata_text(column: str, value: str) -> Callable[[bytes], bytes]:
    """data/metadata.parquet with one text column replaced (manifest refreshed)."""

    def change(table: pa.Table) -> pa.Table:
        i = table.schema.get_field_index(column)
        return table.set_column(i, table.schema.field(i), pa.array([value], pa.string()))

    return parquet_with(fmt.METADATA, change)


def _protocol_yaml_name(value: str) -> Callable[[bytes], bytes]:
    """protocol.yaml whose name is `value` (a double-quoted YAML scalar with escapes)."""

    def change(data: bytes) -> bytes:
        text = data.decode()
        start = text.index("\nname: ") + len("\nname: ")
        end = text.index("\n", start)
        quoted = json.dumps(value)  # JSON escapes are YAML double-quoted escapes
        return (text[:start] + quoted + text[end:]).encode()

    return edited(fmt.PROTOCOL, change)


# --- end of round-two builders ----------------------------------------------------------


CASES: list[Case] = [
    # Container
    Case(
        "not_a_zip",
        lambda p: b"this is not a zip file at all" * 10,
        PackageFormatError,
        "zip.not_zip",
    ),
    Case("empty_file", lambda p: b"", PackageFormatError, "zip.not_zip"),
    Case("truncated_end", lambda p: p[:-200], PackageFormatError, "zip.truncated"),
    Case("truncated_half", lambda p: p[: len(p) // 2], PackageFormatError, "zip.truncated"),
    Case("prepended_stub", prepend_with_offsets, PackageSecurityError, "zip.prepended"),
    Case(
        "prepended_raw",
        lambda p: b"#!/bin/sh\nexit 0\n" + p,
        PackageSecurityError,
        "zip.hidden_data",
    ),
    Case(
        "appended_payload",
        lambda p: p + b"<script>evil()</script>",
        PackageSecurityError,
        "zip.appended",
    ),
    Case("encrypted_entry", set_flag_bit(0x1), PackageSecurityError, "zip.encrypted"),
    Case("overlapping_entries", overlapping_entries, PackageSecurityError, "zip.overlap"),
    Case("duplicate_central_record", duplicate_central_record, PackageSecurityError, "zip.overlap"),
    Case("local_central_disagree", local_crc_differs, PackageSecurityError, "zip.header_mismatch"),
    Case("too_many_entries", many_entries, PackageLimitError, "limit.entries"),
    # Names
    Case(
        "absolute_name",
        rename_entry("README.txt", "/README.tx"),
        PackageSecurityError,
        "name.absolute",
    ),
    Case(
        "traversal_name",
        rename_entry("README.txt", "../READMEx"),
        PackageSecurityError,
        "name.traversal",
    ),
    Case(
        "backslash_name",
        rename_entry("data/visits.parquet", "data\\visits.parquet"),
        PackageSecurityError,
        "name.backslash",
    ),
    Case(
        "drive_letter_name",
        rename_entry("README.txt", "C:README.t"),
        PackageSecurityError,
        "name.drive",
    ),
    Case(
        "nul_in_name", rename_entry("README.txt", "README\0txt"), PackageSecurityError, "name.nul"
    ),
    Case("symlink_entry", symlink_entry, PackageSecurityError, "name.symlink"),
    Case("duplicate_name", duplicate_name, PackageSecurityError, "name.duplicate"),
    Case("unknown_file", with_file("notes.txt", b"hello"), PackageSecurityError, "name.unknown"),
    Case(
        "nested_archive_name",
        with_file("data/inner.zip", b"PK\x03\x04"),
        PackageSecurityError,
        "name.nested_archive",
    ),
    Case(
        "nested_archive_content",
        edited(fmt.README, lambda d: b"PK\x03\x04" + d),
        PackageSecurityError,
        "name.nested_archive",
    ),
    # Limits
    Case("compression_bomb", bomb_readme, PackageLimitError, "limit.ratio"),
    Case(
        "total_size_limit",
        lambda p: p,
        PackageLimitError,
        "limit.total_size",
        ReadLimits(max_total_bytes=5_000),
    ),
    Case("understated_size", understated_size, PackageLimitError, "limit.size_mismatch"),
    Case(
        "manifest_too_large",
        manifest_edit(_set("padding", _incompressible(1_100_000))),
        PackageLimitError,
        "limit.file_size",
    ),
    # Manifest and version
    Case(
        "manifest_missing",
        lambda p: rebuild({k: v for k, v in members(p).items() if k != fmt.MANIFEST}),
        PackageFormatError,
        "manifest.missing",
    ),
    Case(
        "manifest_not_json",
        edited(fmt.MANIFEST, lambda d: d[:-5], refresh=False),
        PackageFormatError,
        "json.invalid",
    ),
    Case(
        "manifest_duplicate_key",
        edited(fmt.MANIFEST, lambda d: d.replace(b"{", b'{"sim_id": "x",', 1), refresh=False),
        PackageFormatError,
        "json.duplicate_key",
    ),
    Case(
        "manifest_missing_field",
        manifest_edit(_delete("created_date")),
        PackageFormatError,
        "manifest.schema",
    ),
    Case(
        "manifest_size_wrong_type",
        manifest_edit(lambda m: m["files"]["README.txt"].update(size="12")),
        PackageFormatError,
        "manifest.schema",
    ),
    Case(
        "traversal_sim_id",
        manifest_edit(_set("sim_id", "../../evil")),
        PackageFormatError,
        "manifest.sim_id",
    ),
    Case(
        "newer_major_version",
        manifest_edit(_set("package_version", "2.0")),
        PackageVersionError,
        "version.newer_major",
    ),
    # Files and checksums
    Case(
        "unlisted_file",
        lambda p: rebuild(members(p), manifest_edit=lambda m: m["files"].pop(fmt.README)),
        PackageIntegrityError,
        "file.unlisted",
    ),
    Case(
        "listed_file_missing",
        lambda p: rebuild({k: v for k, v in members(p).items() if k != fmt.README}, refresh=False),
        PackageIntegrityError,
        "file.missing",
    ),
    Case(
        "checksum_mismatch",
        edited(fmt.VISITS, lambda d: d[:100] + bytes([d[100] ^ 1]) + d[101:], refresh=False),
        PackageIntegrityError,
        "checksum.sha256",
    ),
    Case(
        "size_mismatch",
        manifest_edit(lambda m: m["files"][fmt.README].update(size=1)),
        PackageIntegrityError,
        "checksum.size",
    ),
    # Content
    Case(
        "yaml_alias_bomb",
        edited(fmt.PROTOCOL, lambda d: ALIAS_BOMB),
        PackageSecurityError,
        "yaml.alias",
    ),
    Case(
        "protocol_invalid",
        edited(fmt.PROTOCOL, lambda d: d.replace(b"STABLE: 0.83", b"STABLE: 0.93")),
        PackageFormatError,
        "protocol.invalid",
    ),
    Case(
        "json_nan",
        edited(fmt.SUMMARY, lambda d: d.replace(b'"deaths": ', b'"deaths": NaN, "x": ', 1)),
        PackageFormatError,
        "json.nonfinite",
    ),
    Case(
        "json_deep_nesting",
        edited(fmt.PARAMETERS, lambda d: b"[" * 500 + b"]" * 500),
        PackageLimitError,
        "limit.depth",
    ),
    Case(
        "parameters_wrong_type",
        edited(fmt.PARAMETERS, _json_edit(_set("patients", "many"))),
        PackageFormatError,
        "parameters.schema",
    ),
    Case("audit_tampered", edited(fmt.AUDIT, _tamper_audit), PackageIntegrityError, "audit.chain"),
    # Tables and consistency
    Case(
        "not_parquet",
        edited(fmt.VISITS, lambda d: b"patient_id,day\n1,2\n"),
        PackageFormatError,
        "parquet.invalid",
    ),
    Case(
        "parquet_wrong_type",
        parquet_with(fmt.VISITS, _float_vision),
        PackageFormatError,
        "parquet.schema",
    ),
    Case(
        "parquet_text_not_utf8",
        parquet_with(fmt.METADATA, _invalid_utf8_name),
        PackageFormatError,
        "parquet.invalid",
    ),
    Case(
        "parquet_decompression_bomb",
        _visits_bomb,
        PackageLimitError,
        "limit.ratio",
        ReadLimits(min_parquet_budget=1024 * 1024),
    ),
    Case(
        "metadata_many_rows",
        _metadata_rows,
        PackageLimitError,
        "limit.rows",
    ),
    Case(
        "unknown_category_value",
        parquet_with(fmt.VISITS, _unknown_state),
        PackageIntegrityError,
        "consistency.values",
    ),
    Case(
        "vision_out_of_range",
        parquet_with(fmt.VISITS, _vision_30000),
        PackageIntegrityError,
        "consistency.values",
    ),
    Case(
        "years_out_of_range",
        lambda p: edited(fmt.PARAMETERS, _json_edit(_set("years", 1e308)))(
            parquet_with(fmt.METADATA, _years(1e308))(p)
        ),
        PackageIntegrityError,
        "consistency.values",
    ),
    Case(
        "json_number_overflows_to_infinity",
        edited(
            fmt.PARAMETERS,
            lambda d: d.replace(b'"recruitment_months": 0.0', b'"recruitment_months": 1e999'),
        ),
        PackageFormatError,
        "json.nonfinite",
    ),
    Case(
        "json_lone_surrogate",
        manifest_edit(_set("created_by", "\ud800")),
        PackageFormatError,
        "json.invalid",
    ),
    Case(
        "created_date_impossible",
        manifest_edit(_set("created_date", "2026-13-45T99:99:99Z")),
        PackageFormatError,
        "manifest.schema",
    ),
    Case(
        "version_in_other_digits",
        manifest_edit(_set("package_version", "\u0661.\u0660")),
        PackageFormatError,
        "manifest.schema",
    ),
    Case(
        "orphan_visit",
        parquet_with(fmt.VISITS, _orphan_visit),
        PackageIntegrityError,
        "consistency.orphan_visit",
    ),
    Case(
        "rows_differ_from_manifest",
        manifest_edit(lambda m: m["files"][fmt.PATIENTS].update(rows=1)),
        PackageIntegrityError,
        "consistency.rows",
    ),
    Case(
        "summary_tampered",
        edited(fmt.SUMMARY, _json_edit(_set("deaths", 123_456))),
        PackageIntegrityError,
        "consistency.summary",
    ),
    Case(
        "sim_id_differs_from_metadata",
        manifest_edit(_set("sim_id", "sim-someone-else")),
        PackageIntegrityError,
        "consistency.sim_id",
    ),
    # --- Round two (issue 15) ---
    # (Parquet footer and pages)
    Case(
        "parquet_required_column_with_definition_levels",
        _forged(fmt.PATIENTS, _required_but_levelled("discontinuation_day")),
        PackageFormatError,
        "parquet.schema",
    ),
    Case(
        "parquet_string_column_of_type_int32",
        _forged(fmt.PATIENTS, _text_as_int32("sex")),
        PackageFormatError,
        "parquet.schema",
    ),
    Case(
        "parquet_metadata_string_of_1_gib",
        _forged(fmt.METADATA, _page_declares("name", 1 << 30, dictionary=False)),
        PackageLimitError,
        "limit.parquet_page",
    ),
    Case(
        "parquet_dictionary_page_of_800_mib",
        _forged(fmt.VISITS, _page_declares("state", 800 << 20, dictionary=True)),
        PackageLimitError,
        "limit.parquet_page",
    ),
    Case(
        "parquet_too_many_row_groups",
        edited(fmt.PATIENTS, _row_groups(1_000)),
        PackageLimitError,
        "limit.row_groups",
    ),
    Case(
        "parquet_empty_row_groups",
        edited(fmt.PATIENTS, _row_groups(3)),
        PackageFormatError,
        "parquet.layout",
    ),
    Case(
        "parquet_footer_too_large",
        lambda p: p,
        PackageLimitError,
        "limit.parquet_footer",
        ReadLimits(max_parquet_footer_bytes=1_000),
    ),
    Case(
        "parquet_deflated_beyond_limit",
        _deflated_parquet,
        PackageLimitError,
        "limit.file_size",
        ReadLimits(max_deflated_parquet_bytes=2_000),
    ),
    # (ZIP container)
    Case("char_device_entry", _unix_mode(0o020644), PackageSecurityError, "zip.file_type"),
    Case("block_device_entry", _unix_mode(0o060644), PackageSecurityError, "zip.file_type"),
    Case("fifo_entry", _unix_mode(0o010644), PackageSecurityError, "zip.file_type"),
    Case("socket_entry", _unix_mode(0o140644), PackageSecurityError, "zip.file_type"),
    Case("unknown_file_type_entry", _unix_mode(0o160644), PackageSecurityError, "zip.file_type"),
    Case("setuid_entry", _unix_mode(0o104755), PackageSecurityError, "zip.setuid"),
    Case("setgid_entry", _unix_mode(0o102755), PackageSecurityError, "zip.setuid"),
    Case("sticky_entry", _unix_mode(0o101644), PackageSecurityError, "zip.setuid"),
    Case("directory_entry_unix", _unix_mode(0o040755), PackageSecurityError, "name.directory"),
    Case(
        "directory_entry_msdos",
        entry_attributes(fmt.README, 0x10, create_system=0),
        PackageSecurityError,
        "name.directory",
    ),
    Case(
        "volume_label_entry",
        entry_attributes(fmt.README, 0x08, create_system=0),
        PackageSecurityError,
        "zip.file_type",
    ),
    Case("local_extra_overrun", extra_overrun("local"), PackageSecurityError, "zip.extra_field"),
    Case(
        "central_extra_overrun", extra_overrun("central"), PackageSecurityError, "zip.extra_field"
    ),
    Case(
        "preview_formula_cell",
        _preview_cell(0, 3, b'"=HYPERLINK(""https://evil.example/"",""F"")"'),
        PackageIntegrityError,
        "consistency.preview",
    ),
    Case(
        "preview_disagrees_with_patients",
        _preview_cell(0, 5, b"99"),
        PackageIntegrityError,
        "consistency.preview",
    ),
    # (text and consistency)
    *(
        Case(f"{field}_{kind}", build(text), PackageSecurityError, "text.control")
        for kind, text in HOSTILE_TEXT.items()
        for field, build in (
            ("sim_name", lambda t: _metadata_text("name", t)),
            ("metadata_protocol_name", lambda t: _metadata_text("protocol_name", t)),
            ("protocol_yaml_name", _protocol_yaml_name),
            ("engine_version", lambda t: _metadata_text("engine_version", t)),
            ("created_by", lambda t: manifest_edit(_set("created_by", t))),
        )
    ),
    Case(
        "protocol_version_newline",
        lambda p: _metadata_text("protocol_version", "1.0\nforged")(p),
        PackageSecurityError,
        "text.control",
    ),
    Case(
        "ape_version_esc",
        manifest_edit(_set("ape_version", "0.1.0\x1b]0;owned\x07")),
        PackageSecurityError,
        "text.control",
    ),
    Case(
        "created_by_line_separator",
        manifest_edit(_set("created_by", "a\u2028b")),
        PackageSecurityError,
        "text.control",
    ),
    Case(
        "sim_name_bidi_isolate",
        _metadata_text("name", "a\u2066b\u2069"),
        PackageSecurityError,
        "text.control",
    ),
    Case(
        "protocol_name_differs_from_protocol_yaml",
        _metadata_text("protocol_name", "Aflibercept 8 mg every 16 weeks"),
        PackageIntegrityError,
        "consistency.protocol_name",
    ),
    Case(
        "protocol_version_differs_from_protocol_yaml",
        _metadata_text("protocol_version", "2.0"),
        PackageIntegrityError,
        "consistency.protocol_version",
    ),
]


# --- Signatures (format 1.1, issue 10): hostile signature files -------------------------
# A signature is untrusted input like any member: bounded, parsed strictly, and a valid
# signature of another package is refused, not ignored.

FORGER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
OTHER_KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(1, 33)))


def _manifest_of(package: bytes) -> dict:
    return json.loads(members(package)[fmt.MANIFEST])


def _with_signature(
    make: Callable[[bytes], tuple[str, bytes]], *, edit: Callable[[dict], None] | None = None
) -> Callable[[bytes], bytes]:
    """The package with one more member under signatures/, made from the package by `make`
    (the manifest is left as it is unless `edit`)."""

    def build(package: bytes) -> bytes:
        files = members(package)
        name, data = make(package)
        files[name] = data
        return rebuild(files, refresh=False, manifest_edit=edit)

    return build


def signed_member(package: bytes, key: Ed25519PrivateKey = FORGER_KEY) -> tuple[str, bytes]:
    return sign_manifest(_manifest_of(package), key, "forger", "2026-01-02T03:04:05Z")


def _envelope_edit(change: Callable[[dict], None]) -> Callable[[bytes], tuple[str, bytes]]:
    def make(package: bytes) -> tuple[str, bytes]:
        name, data = signed_member(package)
        envelope = json.loads(data)
        change(envelope)
        return name, json.dumps(envelope).encode()

    return make


def _statement_edit(change: Callable[[dict], None]) -> Callable[[bytes], tuple[str, bytes]]:
    """A statement changed and signed again with the key it names (a valid signature)."""

    def make(package: bytes) -> tuple[str, bytes]:
        name, data = signed_member(package)
        envelope = json.loads(data)
        body = json.loads(base64.b64decode(envelope["payload"]))
        change(body)
        payload = json.dumps(body).encode()
        envelope["payload"] = base64.b64encode(payload).decode()
        sig = FORGER_KEY.sign(pae(PAYLOAD_TYPE, payload))
        envelope["signatures"][0]["sig"] = base64.b64encode(sig).decode()
        return name, json.dumps(envelope).encode()

    return make


def _another_packages_signature(package: bytes) -> tuple[str, bytes]:
    manifest = _manifest_of(package)
    manifest["sim_id"] = "sim-20200101-000000-000000"
    return sign_manifest(manifest, FORGER_KEY, "forger", "2026-01-02T03:04:05Z")


def _flip_sig(envelope: dict) -> None:
    sig = bytearray(base64.b64decode(envelope["signatures"][0]["sig"]))
    sig[0] ^= 1
    envelope["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()


def _kid(key: Ed25519PrivateKey) -> str:
    return key_id(key.public_key())


def _nested_json(package: bytes) -> tuple[str, bytes]:
    return member_name(_kid(FORGER_KEY)), b'{"payload": ' + b"[" * 40 + b"]" * 40 + b"}"


def _many_signatures(package: bytes) -> bytes:
    files = members(package)
    for i in range(fmt.MAX_SIGNATURES + 1):
        key = Ed25519PrivateKey.from_private_bytes(bytes([i + 7]) * 32)
        name, data = signed_member(package, key)
        files[name] = data
    return rebuild(files, refresh=False)


def _listed(package: bytes) -> bytes:
    name, data = signed_member(package)
    files = members(package)
    files[name] = data

    def edit(manifest: dict) -> None:
        manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    return rebuild(files, refresh=False, manifest_edit=edit)


def _disk_start(package: bytes) -> bytes:
    """The first central record says its entry starts on disk 1 (a flipped bit there was
    accepted before issue 10's byte-flip test)."""
    out = bytearray(package)
    at = _central_records(package)[0] + 34
    out[at] = 1
    return bytes(out)


SIGNATURE_CASES = [
    Case("central_disk_start_not_zero", _disk_start, PackageFormatError, "zip.multidisk"),
    Case(
        "signature_huge",
        _with_signature(
            lambda p: (member_name(_kid(FORGER_KEY)), _incompressible(70_000).encode())
        ),
        PackageLimitError,
        "limit.file_size",
    ),
    Case(
        "signature_malformed_json",
        _with_signature(lambda p: (member_name(_kid(FORGER_KEY)), b'{"payload": ')),
        PackageFormatError,
        "signature.malformed",
    ),
    Case(
        "signature_nested_json",
        _with_signature(_nested_json),
        PackageSecurityError,
        "limit.depth",
    ),
    Case(
        "signature_nested_folder",
        _with_signature(lambda p: ("signatures/x/" + member_name(_kid(FORGER_KEY))[11:], b"{}")),
        PackageSecurityError,
        "name.unknown",
    ),
    Case(
        "signature_nested_archive",
        _with_signature(lambda p: (member_name(_kid(FORGER_KEY)), b"PK\x03\x04" + b"\0" * 60)),
        PackageSecurityError,
        "name.nested_archive",
    ),
    Case(
        "signature_names_another_packages_digest",
        _with_signature(_another_packages_signature),
        PackageIntegrityError,
        "signature.digest",
    ),
    Case(
        "signature_names_another_file_digest",
        _with_signature(
            _statement_edit(lambda b: b["subject"][1]["digest"].update(sha256="0" * 64))
        ),
        PackageIntegrityError,
        "signature.digest",
    ),
    Case(
        "signature_does_not_verify",
        _with_signature(_envelope_edit(_flip_sig)),
        PackageIntegrityError,
        "signature.invalid",
    ),
    Case(
        "signature_under_another_keys_name",
        _with_signature(lambda p: (member_name(_kid(OTHER_KEY)), signed_member(p)[1])),
        PackageIntegrityError,
        "signature.key_id",
    ),
    Case(
        "signature_envelope_with_two_signatures",
        _with_signature(_envelope_edit(lambda e: e["signatures"].append(dict(e["signatures"][0])))),
        PackageFormatError,
        "signature.malformed",
    ),
    Case(
        "signature_payload_not_base64",
        _with_signature(_envelope_edit(lambda e: e.update(payload="not base64!"))),
        PackageFormatError,
        "signature.malformed",
    ),
    Case(
        "signature_extra_envelope_key",
        _with_signature(_envelope_edit(lambda e: e.update(extra="x"))),
        PackageFormatError,
        "signature.malformed",
    ),
    Case(
        "signature_signer_escape",
        _with_signature(_statement_edit(lambda b: b["predicate"].update(signer="a\x1b[2Jb"))),
        PackageSecurityError,
        "text.control",
    ),
    Case(
        "signature_listed_in_manifest",
        _listed,
        PackageFormatError,
        "manifest.schema",
    ),
    Case("too_many_signatures", _many_signatures, PackageLimitError, "limit.signatures"),
    Case(
        "signature_in_a_1_0_package",
        _with_signature(signed_member, edit=_set("package_version", "1.0")),
        PackageSecurityError,
        "name.unknown",
    ),
]
CASES.extend(SIGNATURE_CASES)


def redescribed(files: dict[str, bytes]) -> dict[str, bytes]:
    """The files with format 1.1's self-description (README, datapackage.json, the crate and
    the BagIt files) made again from the others, as a forger who knows the format would
    after changing a file: what is left to catch them is the signature."""
    from apesim import audit
    from apesim.package.bag import BAGIT_TXT, payload_manifest, tag_manifest
    from apesim.package.crate import ro_crate_json
    from apesim.package.datapackage import datapackage_json
    from apesim.package.facts import PackageFacts
    from apesim.package.readme import render_readme
    from apesim.results.metadata import SimulationMetadata

    files = dict(files)
    manifest = json.loads(files[fmt.MANIFEST])
    meta = SimulationMetadata.from_table(
        pq.ParquetFile(pa.BufferReader(files[fmt.METADATA])).read()
    )
    made = (fmt.DATAPACKAGE, fmt.BAGIT, fmt.BAG_MANIFEST, fmt.RO_CRATE, fmt.BAG_TAGMANIFEST)
    kept = [n for n in manifest["files"] if n not in made]
    entries: dict[str, dict] = {}
    for name in kept:
        entries[name] = {**manifest["files"][name], "size": len(files[name])}
        entries[name]["sha256"] = hashlib.sha256(files[name]).hexdigest()

    def facts() -> PackageFacts:
        return PackageFacts(
            meta,
            json.loads(files[fmt.SUMMARY]),
            audit.parse(files[fmt.AUDIT]),
            manifest["created_date"],
            manifest["created_by"],
            manifest["ape_version"],
            dict(entries),
        )

    for name, make in (
        (fmt.README, lambda: render_readme(facts()).encode("utf-8")),
        (fmt.DATAPACKAGE, lambda: datapackage_json(facts())),
        (fmt.BAGIT, lambda: BAGIT_TXT),
        (fmt.BAG_MANIFEST, lambda: payload_manifest(entries)),
        (fmt.RO_CRATE, lambda: ro_crate_json(facts())),
        (fmt.BAG_TAGMANIFEST, lambda: tag_manifest(entries)),
    ):
        files[name] = make()
        entries[name] = {
            "size": len(files[name]),
            "sha256": hashlib.sha256(files[name]).hexdigest(),
        }
    return files
