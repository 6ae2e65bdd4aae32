"""A package's bytes read from a path: bounded by the size limit, whatever the file is."""

from __future__ import annotations

from pathlib import Path

import pytest

from apesim.errors import PackageLimitError
from apesim.package.source import load_source


def test_a_package_file_that_never_ends_is_refused_at_the_size_limit(endless: Path) -> None:
    with pytest.raises(PackageLimitError) as caught:
        load_source(endless, 1024)
    assert caught.value.code == "limit.total_size" and "1,024" in str(caught.value)
