"""The workspace's trust list and signature settings: small JSON files, checked on read."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from apesim.errors import KeyringError
from apesim.package.signature import key_id, public_key_text
from apesim.workspace import trust

PUBLIC = Ed25519PrivateKey.from_private_bytes(bytes([5]) * 32).public_key()


def test_trust_then_untrust_by_name_or_key_id(tmp_path: Path) -> None:
    added = trust.trust_key(tmp_path, public_key_text(PUBLIC), "Bob")
    assert added.key_id == key_id(PUBLIC)
    assert trust.trust_map(trust.load_trust(tmp_path / trust.TRUST_FILE)) == {added.key_id: "Bob"}
    trust.trust_key(tmp_path, public_key_text(PUBLIC), "Robert")  # renamed, not doubled
    assert [k.name for k in trust.load_trust(tmp_path / trust.TRUST_FILE)] == ["Robert"]
    assert trust.untrust_key(tmp_path, added.key_id[:8]).name == "Robert"
    assert trust.load_trust(tmp_path / trust.TRUST_FILE) == []


def test_untrust_of_an_unknown_key_says_so(tmp_path: Path) -> None:
    with pytest.raises(KeyringError) as caught:
        trust.untrust_key(tmp_path, "nobody")
    assert caught.value.code == "trust.missing"


def test_a_malformed_public_key_is_refused(tmp_path: Path) -> None:
    with pytest.raises(KeyringError) as caught:
        trust.trust_key(tmp_path, "ape-ed25519:AAAA", "short")
    assert caught.value.code == "trust.invalid"


@pytest.mark.parametrize(
    "text",
    [
        b"[]",
        b'{"keys": [{"name": "x"}]}',
        b'{"keys": [{"name": "a\\u001b[2J", "public_key": "ape-ed25519:' + b"A" * 43 + b'="}]}',
        b'{"keys": [], "keys": []}',
    ],
)
def test_a_malformed_trust_file_is_refused(text: bytes, tmp_path: Path) -> None:
    (tmp_path / trust.TRUST_FILE).write_bytes(text)
    with pytest.raises(KeyringError) as caught:
        trust.load_trust(tmp_path / trust.TRUST_FILE)
    assert caught.value.code == "trust.invalid"


def test_settings_round_trip_and_default(tmp_path: Path) -> None:
    assert trust.load_settings(tmp_path) == trust.Settings()
    trust.save_settings(tmp_path, trust.Settings(require_signature=True, signing_key="alice"))
    assert trust.load_settings(tmp_path) == trust.Settings(True, "alice")


def test_a_trusted_name_far_too_long_is_quoted_short(tmp_path: Path) -> None:
    with pytest.raises(KeyringError) as caught:
        trust.trust_key(tmp_path, public_key_text(PUBLIC), "N" * 100_000)
    assert caught.value.code == "keys.name" and len(str(caught.value)) < 200
