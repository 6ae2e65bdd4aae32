"""Reading untrusted input files: never more than the limit, whatever the file is."""

from __future__ import annotations

from pathlib import Path

from apesim.safeload import read_at_most


def test_a_file_that_never_ends_is_read_only_to_one_byte_past_the_limit(endless: Path) -> None:
    assert read_at_most(endless, 1000) == bytes(1001)


def test_a_file_within_the_limit_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "small"
    path.write_bytes(b"abc")
    assert read_at_most(path, 3) == b"abc"
