"""The Python API's protocol store: adding a protocol never replaces one already there."""

from __future__ import annotations

from apesim import api
from apesim.protocol.loader import shipped_protocols
from apesim.workspace import Workspace

PRN = shipped_protocols()["prn_monthly"]
PRN_NAME = api.get_protocol("prn_monthly").protocol.name


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
    info = api.add_protocol(workspace, renamed("Mine"), "prn_monthly.yaml")
    assert info.key == "prn_monthly_user"
    assert api.get_protocol("prn_monthly").protocol.name == PRN_NAME
