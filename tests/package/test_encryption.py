"""Encrypted packages (age, format 1.1): round trips with recipients and with a passphrase;
a wrong key, a truncated or altered file is refused with nothing left anywhere; and the
`age` command line tool reads APE's files and APE reads its (when it is installed)."""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pyrage
import pytest
from pyrage import x25519

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.errors import ApeError, PackageFormatError, PackageLimitError
from apesim.package import export_package, import_package, validate_package
from apesim.package import format as fmt
from apesim.package.encryption import Encryption, decrypted, load_identities
from apesim.package.signature import SigningKey
from apesim.workspace import Workspace
from apesim.workspace.store import SimulationRecord
from tests.package.conftest import snapshot

CREATED = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
AGE = shutil.which("age")


@pytest.fixture(scope="module")
def identity() -> x25519.Identity:
    return x25519.Identity.generate()


@pytest.fixture
def identity_file(identity: x25519.Identity, tmp_path: Path) -> Path:
    path = tmp_path / "keys" / "me.age"
    path.parent.mkdir()
    path.write_text(f"# public key: {identity.to_public()}\n{identity}\n")
    path.chmod(0o600)
    return path


@pytest.fixture
def larger_sim(workspace: Workspace) -> SimulationRecord:
    """A package of several age chunks (64 KiB each): a damaged late chunk is found only
    after the earlier ones were decrypted."""
    return api.run_simulation(
        workspace, "aflibercept_treat_and_extend", SimulationParameters(6000, 3.0, 5), name="L"
    )


def encrypted(
    ws: Workspace, sim: SimulationRecord, folder: Path, how: Encryption, *keys: SigningKey
) -> Path:
    folder.mkdir(exist_ok=True)
    result = export_package(ws, sim.sim_id, folder, created=CREATED, encrypt=how, sign=keys)
    assert result.path is not None
    return result.path


PASSPHRASE = "correct horse"


def _for(identity: x25519.Identity) -> Encryption:
    return Encryption((str(identity.to_public()),))


@pytest.fixture
def for_me(
    workspace: Workspace, small_sim: SimulationRecord, identity: x25519.Identity, tmp_path: Path
) -> Path:
    """The small simulation's package encrypted for `identity` (in out/)."""
    return encrypted(workspace, small_sim, tmp_path / "out", _for(identity))


@pytest.fixture
def larger_for_me(
    workspace: Workspace, larger_sim: SimulationRecord, identity: x25519.Identity, tmp_path: Path
) -> Path:
    """The larger simulation's package (several age chunks) encrypted for `identity`."""
    return encrypted(workspace, larger_sim, tmp_path / "out", _for(identity))


@pytest.fixture
def with_passphrase(workspace: Workspace, small_sim: SimulationRecord, tmp_path: Path) -> Path:
    """The small simulation's package encrypted with PASSPHRASE (in out/)."""
    return encrypted(workspace, small_sim, tmp_path / "out", Encryption(passphrase=PASSPHRASE))


def import_encrypted(
    ws: Workspace, path: Path, identities: list[Path] | None = None, passphrase: str | None = None
) -> SimulationRecord:
    with api.opened_package(path, ws, identities=identities, passphrase=passphrase) as source:
        return import_package(ws, source, source_name=path.name)


def test_round_trip_with_a_recipient(
    workspace: Workspace,
    larger_sim: SimulationRecord,
    identity: x25519.Identity,
    identity_file: Path,
    larger_for_me: Path,
    tmp_path: Path,
) -> None:
    path = larger_for_me
    assert path.name.endswith(".zip.age") and path.read_bytes().startswith(fmt.AGE_MAGIC)
    assert b"manifest.json" not in path.read_bytes()
    other = Workspace(tmp_path / "other")
    record = import_encrypted(other, path, [identity_file])
    assert other.get(record.sim_id).patients == 6000
    assert list((other.root / ".staging").iterdir()) == []
    exported = workspace.read_audit(workspace.get(larger_sim.sim_id))[-1]
    assert exported.details["encrypted_for"] == [str(identity.to_public())]


def test_round_trip_with_a_passphrase(
    small_sim: SimulationRecord, with_passphrase: Path, tmp_path: Path
) -> None:
    other = Workspace(tmp_path / "other")
    record = import_encrypted(other, with_passphrase, passphrase=PASSPHRASE)
    assert other.get(record.sim_id).sim_id == small_sim.sim_id


def test_each_of_two_recipients_can_decrypt(
    workspace: Workspace, small_sim: SimulationRecord, identity_file: Path, tmp_path: Path
) -> None:
    second = x25519.Identity.generate()
    first = identity_file.read_text().split()[3]
    path = encrypted(
        workspace, small_sim, tmp_path / "out", Encryption((first, str(second.to_public())))
    )
    second_file = tmp_path / "second.age"
    second_file.write_text(f"{second}\n")
    for key in (identity_file, second_file):
        with api.opened_package(path, workspace, identities=[key]) as plain:
            assert validate_package(plain).ok


def _damaged(path: Path, how: str) -> None:
    data = bytearray(path.read_bytes())
    if how == "truncated":
        del data[-5000:]
    elif how == "flipped_late":
        data[-3000] ^= 0x01  # in the last chunk: the earlier ones decrypt first
    elif how == "flipped_header":
        data[40] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("how", ["truncated", "flipped_late", "flipped_header", "wrong_key"])
def test_a_damaged_file_or_wrong_key_is_refused_with_nothing_left(
    how: str, identity_file: Path, larger_for_me: Path, tmp_path: Path
) -> None:
    path = larger_for_me
    assert path.stat().st_size > 3 * 65536
    key = identity_file
    if how == "wrong_key":
        key = tmp_path / "wrong.age"
        key.write_text(f"{x25519.Identity.generate()}\n")
    else:
        _damaged(path, how)
    other = Workspace(tmp_path / "other")
    before = snapshot(tmp_path)
    with pytest.raises(PackageFormatError) as caught:
        import_encrypted(other, path, [key])
    assert caught.value.code == "encryption.decrypt"
    assert str(caught.value).startswith(path.name) and "\n" not in str(caught.value)
    assert snapshot(tmp_path) == before  # no plaintext, no staging folder, nothing imported
    assert other.list() == []


def test_a_wrong_passphrase_is_refused(with_passphrase: Path, tmp_path: Path) -> None:
    with pytest.raises(PackageFormatError) as caught:
        import_encrypted(Workspace(tmp_path / "other"), with_passphrase, passphrase="wrong")
    assert caught.value.code == "encryption.decrypt"


def test_an_encrypted_package_without_a_key_says_what_to_give(
    with_passphrase: Path, tmp_path: Path
) -> None:
    with pytest.raises(ApeError) as caught:
        import_encrypted(Workspace(tmp_path / "other"), with_passphrase)
    assert caught.value.code == "encryption.key_needed"


def test_a_mistyped_recipient_fails_before_anything_is_written(tmp_path: Path) -> None:
    with pytest.raises(ApeError) as caught:
        api.parse_recipients(["age1notarecipient"])
    assert caught.value.code == "encryption.recipient"


def test_recipients_from_a_file(identity: x25519.Identity, tmp_path: Path) -> None:
    listed = tmp_path / "team.txt"
    listed.write_text(f"# the team\n\n{identity.to_public()}\n")
    assert api.parse_recipients([str(listed)]) == (str(identity.to_public()),)


@pytest.mark.skipif(AGE is None, reason="Debian's age is not installed (make test installs it)")
def test_the_age_tool_decrypts_an_ape_package(identity_file: Path, for_me: Path) -> None:
    plain = subprocess.run(
        [str(AGE), "--decrypt", "-i", str(identity_file), str(for_me)],
        capture_output=True,
        check=True,
        timeout=60,
    ).stdout
    assert validate_package(plain).ok


@pytest.mark.skipif(AGE is None, reason="Debian's age is not installed (make test installs it)")
def test_ape_imports_a_package_the_age_tool_encrypted(
    workspace: Workspace, small_sim: SimulationRecord, tmp_path: Path
) -> None:
    keygen = shutil.which("age-keygen")
    assert keygen is not None
    key_file = tmp_path / "key.txt"
    subprocess.run([keygen, "-o", str(key_file)], check=True, capture_output=True, timeout=60)
    recipient = subprocess.run(
        [keygen, "-y", str(key_file)], check=True, capture_output=True, text=True, timeout=60
    ).stdout.strip()
    sink = io.BytesIO()
    export_package(workspace, small_sim.sim_id, sink, created=CREATED)
    plain = tmp_path / "package.zip"
    plain.write_bytes(sink.getvalue())
    path = tmp_path / "package.zip.age"
    subprocess.run(
        [str(AGE), "-r", recipient, "-o", str(path), str(plain)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    plain.unlink()
    other = Workspace(tmp_path / "other")
    record = import_encrypted(other, path, [key_file])
    assert other.get(record.sim_id).sim_id == small_sim.sim_id


def test_pyrage_and_our_files_agree_on_the_format(identity: x25519.Identity, for_me: Path) -> None:
    """The file is plain age: pyrage's one-shot decrypt gives back a valid package."""
    assert validate_package(pyrage.decrypt(for_me.read_bytes(), [identity])).ok


def _age_on_a_terminal(args: list[str], passphrase: str, prompts: int) -> int:
    """Run the age tool on a pseudo-terminal (it reads passphrases only from one), answering
    each passphrase prompt; its exit code."""
    import os
    import pty
    import select
    import time

    assert AGE is not None
    pid, fd = pty.fork()
    if pid == 0:  # the child: age, on the terminal
        os.execv(AGE, [AGE, *args])
    seen, answered = b"", 0
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([fd], [], [], 0.2)
            if not ready:
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    return os.waitstatus_to_exitcode(status)
                continue
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the terminal closed: age exited
                break
            seen += chunk
            if answered < prompts and seen.lower().count(b"passphrase") > answered:
                os.write(fd, passphrase.encode() + b"\n")
                answered += 1
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status)
    finally:
        os.close(fd)


def _armored(path: Path, identity: x25519.Identity) -> Path:
    """The package in `path` encrypted again for `identity` in age's ASCII armor."""
    plain = pyrage.decrypt(path.read_bytes(), [identity])
    armored = path.with_name(f"armored-{path.name}")
    armored.write_bytes(pyrage.encrypt(plain, [identity.to_public()], armored=True))
    return armored


def test_an_armored_package_imports_like_a_binary_one(
    small_sim: SimulationRecord,
    identity: x25519.Identity,
    identity_file: Path,
    for_me: Path,
    tmp_path: Path,
) -> None:
    armored = _armored(for_me, identity)
    assert armored.read_bytes().startswith(fmt.AGE_ARMOR) and api.is_encrypted(armored)
    other = Workspace(tmp_path / "other")
    record = import_encrypted(other, armored, [identity_file])
    assert other.get(record.sim_id).sim_id == small_sim.sim_id
    assert list((other.root / ".staging").iterdir()) == []


def test_an_armored_passphrase_package_imports(
    small_sim: SimulationRecord, with_passphrase: Path, tmp_path: Path
) -> None:
    from pyrage import passphrase

    plain = passphrase.decrypt(with_passphrase.read_bytes(), PASSPHRASE)
    armored = tmp_path / "armored.zip.age"
    armored.write_bytes(passphrase.encrypt(plain, PASSPHRASE, armored=True))
    other = Workspace(tmp_path / "other")
    record = import_encrypted(other, armored, passphrase=PASSPHRASE)
    assert other.get(record.sim_id).sim_id == small_sim.sim_id


def test_a_damaged_armored_package_is_refused_with_nothing_left(
    identity: x25519.Identity, identity_file: Path, larger_for_me: Path, tmp_path: Path
) -> None:
    armored = _armored(larger_for_me, identity)
    data = bytearray(armored.read_bytes())
    at = len(data) - 4000  # a base64 character of the last chunk
    data[at] = ord("A") if data[at] != ord("A") else ord("B")
    armored.write_bytes(bytes(data))
    other = Workspace(tmp_path / "other")
    before = snapshot(tmp_path)
    with pytest.raises(PackageFormatError) as caught:
        import_encrypted(other, armored, [identity_file])
    assert caught.value.code == "encryption.decrypt" and "\n" not in str(caught.value)
    assert snapshot(tmp_path) == before and other.list() == []


def test_an_armored_file_is_held_to_a_limit_scaled_for_its_armor(
    identity: x25519.Identity, for_me: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Armor holds 48 bytes in a line of 64 characters, so an armored file is a third larger
    than the binary one: its size limit is scaled to match, neither skipped nor too tight."""
    from apesim.package import encryption

    monkeypatch.setattr(encryption, "_AGE_OVERHEAD", 1024)  # a limit this package can reach
    armored = _armored(for_me, identity)
    binary = len(pyrage.decrypt(for_me.read_bytes(), [identity]))
    assert armored.stat().st_size > binary + 1024  # over the binary limit: the armor's share
    folder = tmp_path / "staging"
    folder.mkdir()
    staging = contextlib.nullcontext(folder)
    with decrypted(armored, armored.name, staging, identities=[identity], max_bytes=binary) as p:
        assert validate_package(p).ok
    with (
        pytest.raises(PackageLimitError) as caught,
        decrypted(armored, armored.name, staging, identities=[identity], max_bytes=binary // 2),
    ):
        pass
    assert caught.value.code == "limit.total_size" and list(folder.iterdir()) == []


@pytest.mark.skipif(AGE is None, reason="Debian's age is not installed (make test installs it)")
def test_ape_imports_a_package_the_age_tool_armored(
    small_sim: SimulationRecord,
    identity: x25519.Identity,
    identity_file: Path,
    for_me: Path,
    tmp_path: Path,
) -> None:
    plain = tmp_path / "package.zip"
    plain.write_bytes(pyrage.decrypt(for_me.read_bytes(), [identity]))
    path = tmp_path / "package.zip.age"
    recipient = str(identity.to_public())
    subprocess.run(
        [str(AGE), "-a", "-r", recipient, "-o", str(path), str(plain)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    assert path.read_bytes().startswith(fmt.AGE_ARMOR)
    other = Workspace(tmp_path / "other")
    record = import_encrypted(other, path, [identity_file])
    assert other.get(record.sim_id).sim_id == small_sim.sim_id


@pytest.mark.skipif(AGE is None, reason="Debian's age is not installed (make test installs it)")
def test_the_age_tool_opens_a_passphrase_package_and_ape_opens_its(
    small_sim: SimulationRecord, with_passphrase: Path, tmp_path: Path
) -> None:
    plain = tmp_path / "plain.zip"
    assert _age_on_a_terminal(["-d", "-o", str(plain), str(with_passphrase)], PASSPHRASE, 1) == 0
    assert validate_package(plain.read_bytes()).ok
    theirs = tmp_path / "theirs.zip.age"
    assert _age_on_a_terminal(["-p", "-o", str(theirs), str(plain)], "lion 7", 2) == 0
    other = Workspace(tmp_path / "other")
    record = import_encrypted(other, theirs, passphrase="lion 7")
    assert other.get(record.sim_id).sim_id == small_sim.sim_id


def test_an_import_killed_while_the_plaintext_is_on_disk_leaves_it_only_until_the_next_open(
    identity_file: Path, for_me: Path, tmp_path: Path
) -> None:
    """kill -9 after decryption wrote the plaintext into the staging area (no cleanup code
    runs): the plaintext is there, under the workspace, locked by a dead process; the next
    opening of the workspace sweeps it, and nothing else was written."""
    import os
    import signal
    import sys

    other = tmp_path / "other"
    ape = str(Path(sys.executable).with_name("ape"))
    killed = subprocess.run(
        [ape, "import", str(for_me), "-w", str(other), "--identity", str(identity_file)],
        env={**os.environ, "APE_FAULT": "decrypt.written"},
        capture_output=True,
        timeout=300,
        check=False,
    )
    assert killed.returncode == -signal.SIGKILL, killed.stderr

    def plaintexts() -> list[Path]:
        """Every plaintext package under the test's folder (a ZIP's first bytes)."""
        return [
            p for p in tmp_path.rglob("*") if p.is_file() and p.read_bytes()[:4] == b"PK\x03\x04"
        ]

    [left] = plaintexts()
    assert left.parent.parent == other / ".staging"  # inside the workspace, nowhere else
    reopened = Workspace(other)
    assert plaintexts() == [] and list((other / ".staging").iterdir()) == []
    assert reopened.list() == []


def test_a_recipients_file_that_never_ends_is_refused_at_its_limit(endless: Path) -> None:
    with pytest.raises(ApeError) as caught:
        api.parse_recipients([str(endless)])
    assert caught.value.code == "encryption.recipient" and "too large" in str(caught.value)


def test_an_identity_file_that_never_ends_is_refused_at_its_limit(endless: Path) -> None:
    with pytest.raises(ApeError) as caught:
        load_identities([endless])
    assert caught.value.code == "encryption.identity" and "too large" in str(caught.value)


def test_a_passphrase_package_that_never_ends_is_refused_at_the_size_limit(
    endless: Path, tmp_path: Path
) -> None:
    staging = contextlib.nullcontext(tmp_path)
    with (
        pytest.raises(PackageLimitError) as caught,
        decrypted(endless, "zero.zip.age", staging, passphrase="p", max_bytes=1024),
    ):
        pass
    assert caught.value.code == "limit.total_size" and list(tmp_path.iterdir()) == []
