"""The container reader's file-type and extra-field rules let ordinary archives through: a
regular file with or without a Unix mode, and extra areas of well-formed records, a ZIP64
record included (the hostile variants are cases of the corpus)."""

from __future__ import annotations

import io
import struct
import zipfile

import pytest

from apesim.errors import PackageSecurityError
from apesim.package import format as fmt
from apesim.package import inspect_package
from apesim.package.safezip import check_extra
from tests.package.corpus import entry_attributes, members


def _readme_extra(package: bytes, extra: bytes) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        for name, data in members(package).items():
            info = zipfile.ZipInfo(name, (2026, 1, 1, 0, 0, 0))
            if name == fmt.README:
                info.extra = extra
            zf.writestr(info, data)
    return out.getvalue()


@pytest.mark.parametrize(
    ("system", "attributes"),
    [(3, 0o100644 << 16), (3, 0o600 << 16), (0, 0x20), (0, 0x01)],
    ids=["unix_regular", "unix_mode_without_type", "msdos_archive_bit", "msdos_read_only"],
)
def test_regular_files_are_accepted(valid_package: bytes, system: int, attributes: int) -> None:
    report = inspect_package(entry_attributes(fmt.README, attributes, system)(valid_package))
    assert report.ok, report.error


def test_well_formed_extra_records_are_accepted(valid_package: bytes) -> None:
    zip64 = struct.pack("<HHQQ", 0x0001, 16, 0, 0)  # a ZIP64 record, sizes in the header
    timestamp = struct.pack("<HHBI", 0x5455, 5, 1, 0)
    report = inspect_package(_readme_extra(valid_package, zip64 + timestamp))
    assert report.ok, report.error


@pytest.mark.parametrize(
    "extra",
    [b"\x01\x00", struct.pack("<HH", 0x5455, 9) + b"\0" * 5, struct.pack("<HH", 1, 0) + b"\0"],
    ids=["header_cut_short", "length_overruns", "trailing_byte"],
)
def test_malformed_extra_areas_are_refused(extra: bytes) -> None:
    with pytest.raises(PackageSecurityError) as caught:
        check_extra(extra, "README.txt (local header)")
    assert caught.value.code == "zip.extra_field"
    assert str(caught.value).startswith("README.txt (local header): ")


def test_an_empty_extra_area_is_accepted() -> None:
    check_extra(b"", "README.txt (central header)")
