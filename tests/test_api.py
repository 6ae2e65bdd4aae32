"""The Python API: the one door of the CLI and the app (its re-exports, and the shells
import nothing else of APE), and its protocol store: adding a protocol never replaces one
already there."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from apesim import api
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace

PRN = shipped_protocols()["v1_prn_monthly"]
PRN_NAME = api.get_protocol("v1_prn_monthly").protocol.name


def renamed(name: str) -> str:
    return PRN.replace(f"name: {PRN_NAME}", f"name: {name}", 1)


def test_adding_under_a_taken_key_keeps_the_protocol_already_there(
    workspace: Workspace,
) -> None:
    first = api.add_protocol(workspace, renamed("Mine"), "custom.yaml")
    second = api.add_protocol(workspace, renamed("Theirs"), "custom.yaml")
    third = api.add_protocol(workspace, renamed("Another"), "custom.yaml")
    assert (first.key, second.key, third.key) == ("custom", "custom_2", "custom_3")
    assert api.get_protocol("custom", workspace).protocol.name == "Mine"
    assert api.get_protocol("custom_2", workspace).protocol.name == "Theirs"
    assert api.get_protocol("custom_3", workspace).protocol.name == "Another"


def test_adding_the_same_text_again_finds_it_rather_than_copying(workspace: Workspace) -> None:
    first = api.add_protocol(workspace, renamed("Mine"), "custom.yaml")
    again = api.add_protocol(workspace, renamed("Mine"), "custom.yaml")
    assert again.key == first.key == "custom"
    assert sorted(p.name for p in workspace.protocols_dir.iterdir()) == ["custom.yaml"]


def test_a_shipped_protocols_key_is_never_taken(workspace: Workspace) -> None:
    info = api.add_protocol(workspace, renamed("Mine"), "v1_prn_monthly.yaml")
    assert info.key == "v1_prn_monthly_user"
    assert api.get_protocol("v1_prn_monthly").protocol.name == PRN_NAME


# -- the one door ----------------------------------------------------------------------------

SRC = Path(api.__file__).parent
SHELLS = [*sorted((SRC / "cli").rglob("*.py")), *sorted((SRC / "app").rglob("*.py"))]
# What a shell may import of APE: the API, the errors it raises, the text escaping every
# shown string needs, and its own modules; the app also the analyses it draws.
ALLOWED = {"apesim.api", "apesim.errors", "apesim.text"}
ALLOWED_IN_CLI = ALLOWED | {"apesim.cli"}
ALLOWED_IN_APP = ALLOWED | {"apesim.app", "apesim.analysis"}
# The one exception, by design: the `ape` executable forks the package reader's worker
# before anything else loads (`package/early.py`, standard library only); going through
# `apesim.api` would first load it (about 0.09 s, most of what the early fork saves).
BY_DESIGN = {"cli/start.py": {"apesim.package.early"}}


def apesim_imports(source: str) -> set[str]:
    """The APE modules (or `apesim.X` names) a module's source imports, anywhere in it."""
    found = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.startswith("apesim")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "apesim":  # from apesim import api
                found |= {f"apesim.{alias.name}" for alias in node.names}
            elif node.module.startswith("apesim"):
                found.add(node.module)
    return found


def forbidden(source: str, allowed: set[str]) -> set[str]:
    return {
        name
        for name in apesim_imports(source)
        if not any(name == a or name.startswith(a + ".") for a in allowed)
    }


def test_the_import_check_sees_every_form_of_import() -> None:
    source = (
        "import apesim.package\n"
        "from apesim import api, engine\n"
        "from apesim.workspace.store import Workspace\n"
        "def f():\n    from apesim.protocol import parse_protocol\n"
        "from apesim.api import SimulationRecord\n"
    )
    assert forbidden(source, ALLOWED) == {
        "apesim.package",
        "apesim.engine",
        "apesim.workspace.store",
        "apesim.protocol",
    }


def test_the_shells_import_only_the_api() -> None:
    assert len(SHELLS) >= 16  # the cli package's modules, Home.py, common.py, charts.py, pages
    found = {
        str(path.relative_to(SRC)): sorted(
            forbidden(
                path.read_text(encoding="utf-8"),
                (ALLOWED_IN_CLI if path.parent.name == "cli" else ALLOWED_IN_APP)
                | BY_DESIGN.get(str(path.relative_to(SRC)), set()),
            )
        )
        for path in SHELLS
    }
    assert {name: bad for name, bad in found.items() if bad} == {}


def test_the_package_layer_does_not_import_the_api() -> None:
    for path in sorted((SRC / "package").rglob("*.py")):
        assert "apesim.api" not in apesim_imports(path.read_text(encoding="utf-8")), path


@pytest.mark.parametrize("name", sorted(api._LAZY))
def test_a_lazy_name_is_the_object_of_its_module(name: str) -> None:
    assert getattr(api, name) is getattr(importlib.import_module(api._LAZY[name]), name)


def test_every_exported_name_exists() -> None:
    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []
    assert set(api._LAZY) <= set(api.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_thing"):
        api.no_such_thing  # noqa: B018


def test_a_public_key_file_that_never_ends_is_refused_at_its_limit(endless: Path) -> None:
    from apesim.errors import KeyringError

    with pytest.raises(KeyringError) as caught:
        api.public_key_of(str(endless))
    assert caught.value.code == "trust.invalid" and "too large" in str(caught.value)


def test_an_earlier_protocol_file_that_never_ends_is_refused_at_its_limit(endless: Path) -> None:
    from apesim.errors import ProtocolError

    with pytest.raises(ProtocolError, match="larger than 1000000 bytes"):
        api.convert_protocol_file(endless)


def test_a_passphrase_file_that_never_ends_is_refused_at_its_limit(endless: Path) -> None:
    from apesim.errors import ApeError

    with pytest.raises(ApeError, match="at most 65,536 bytes"):
        api.read_passphrase_file(endless)


def test_a_passphrase_is_the_first_line_of_its_file(tmp_path: Path) -> None:
    from apesim.errors import ApeError

    (tmp_path / "p").write_text("correct horse\nsecond line\n")
    assert api.read_passphrase_file(tmp_path / "p") == "correct horse"
    (tmp_path / "empty").write_text("\n")
    with pytest.raises(ApeError, match="empty"):
        api.read_passphrase_file(tmp_path / "empty")
