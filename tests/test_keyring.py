"""The keyring: private keys 0600 (and refused when others may read them), passphrase
protection, age identities the age tool reads, and key ids."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from pyrage import x25519

from apesim import keyring
from apesim.errors import KeyringError
from apesim.package.signature import key_id, parse_public_key


def test_a_new_signing_key_is_private_and_its_id_is_the_hash_of_its_public_key(
    tmp_path: Path,
) -> None:
    info = keyring.generate_key("alice", directory=tmp_path)
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    assert info.key_id == key_id(parse_public_key(info.public))
    assert (tmp_path / "alice.pub").read_text() == f"{info.public} alice\n"
    key = keyring.load_signing_key("alice", directory=tmp_path)
    assert key.name == "alice" and key_id(key.private.public_key()) == info.key_id


def test_the_private_key_is_0600_whatever_the_umask(tmp_path: Path) -> None:
    import os

    old = os.umask(0)
    try:
        info = keyring.generate_key("loose", directory=tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600


def test_a_protected_key_needs_its_passphrase(tmp_path: Path) -> None:
    info = keyring.generate_key("bob", passphrase="s3cret", directory=tmp_path)
    assert info.protected and b"ENCRYPTED PRIVATE KEY" in info.path.read_bytes()
    with pytest.raises(KeyringError) as caught:
        keyring.load_signing_key("bob", directory=tmp_path)
    assert caught.value.code == "keys.passphrase_needed"
    with pytest.raises(KeyringError) as caught:
        keyring.load_signing_key("bob", "wrong", directory=tmp_path)
    assert caught.value.code == "keys.passphrase"
    assert keyring.load_signing_key("bob", "s3cret", directory=tmp_path).name == "bob"


def test_a_private_key_others_may_read_is_refused(tmp_path: Path) -> None:
    info = keyring.generate_key("carol", directory=tmp_path)
    info.path.chmod(0o640)
    with pytest.raises(KeyringError) as caught:
        keyring.load_signing_key("carol", directory=tmp_path)
    assert caught.value.code == "keys.permissions"


def test_a_key_is_never_replaced(tmp_path: Path) -> None:
    keyring.generate_key("dave", directory=tmp_path)
    with pytest.raises(KeyringError) as caught:
        keyring.generate_key("dave", age=True, directory=tmp_path)
    assert caught.value.code == "keys.exists"


def test_a_key_name_is_not_a_path(tmp_path: Path) -> None:
    with pytest.raises(KeyringError) as caught:
        keyring.generate_key("../evil", directory=tmp_path)
    assert caught.value.code == "keys.name"


def test_an_age_identity_is_in_age_keygen_format(tmp_path: Path) -> None:
    info = keyring.generate_key("team", age=True, directory=tmp_path)
    assert info.kind == "age" and info.public.startswith("age1")
    assert stat.S_IMODE(info.path.stat().st_mode) == 0o600
    lines = info.path.read_text().splitlines()
    assert lines[1] == f"# public key: {info.public}"
    assert str(x25519.Identity.from_str(lines[2]).to_public()) == info.public
    assert keyring.identity_path("team", tmp_path) == info.path


def test_list_keys_shows_both_kinds(tmp_path: Path) -> None:
    keyring.generate_key("a", directory=tmp_path)
    keyring.generate_key("b", age=True, directory=tmp_path)
    assert [(k.name, k.kind) for k in keyring.list_keys(tmp_path)] == [
        ("a", "signing"),
        ("b", "age"),
    ]


def test_a_key_file_that_is_a_folder_is_refused_in_one_line(tmp_path: Path) -> None:
    keyring.generate_key("erin", directory=tmp_path)
    (tmp_path / "erin.key").unlink()
    (tmp_path / "erin.key").mkdir()
    with pytest.raises(KeyringError) as caught:
        keyring.load_signing_key("erin", directory=tmp_path)
    assert caught.value.code == "keys.invalid" and "erin.key" in str(caught.value)
    assert keyring.list_keys(tmp_path) == []  # not a key: listed as nothing


def test_a_huge_key_file_is_refused_without_reading_it_whole(tmp_path: Path) -> None:
    import tracemalloc

    keyring.generate_key("frank", directory=tmp_path)
    with (tmp_path / "frank.key").open("r+b") as fh:
        fh.truncate(64 * 1024 * 1024)  # sparse: 64 MiB of nothing
    tracemalloc.start()
    try:
        with pytest.raises(KeyringError) as caught:
            keyring.load_signing_key("frank", directory=tmp_path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert caught.value.code == "keys.invalid" and "too large" in str(caught.value)
    assert peak < 4 * 1024 * 1024


def test_a_private_key_that_does_not_match_its_public_half_is_refused(tmp_path: Path) -> None:
    keyring.generate_key("grace", directory=tmp_path)
    keyring.generate_key("heidi", directory=tmp_path)
    (tmp_path / "grace.pub").write_bytes((tmp_path / "heidi.pub").read_bytes())
    with pytest.raises(KeyringError) as caught:
        keyring.load_signing_key("grace", directory=tmp_path)
    assert caught.value.code == "keys.mismatch" and "grace.pub" in str(caught.value)


def test_a_key_name_far_too_long_is_quoted_short(tmp_path: Path) -> None:
    with pytest.raises(KeyringError) as caught:
        keyring.generate_key("a" * 5000, directory=tmp_path)
    assert caught.value.code == "keys.name" and len(str(caught.value)) < 200


def test_a_file_where_the_keyring_folder_should_be_is_refused_in_one_line(
    tmp_path: Path,
) -> None:
    occupied = tmp_path / "keys"
    occupied.write_bytes(b"not a folder")
    with pytest.raises(KeyringError) as caught:
        keyring.generate_key("ivan", directory=occupied)
    assert caught.value.code == "keys.folder" and str(caught.value).startswith(f"{occupied}: ")
    assert occupied.read_bytes() == b"not a folder"
