"""The user's keys: Ed25519 signing keys and age identities, one file each in a folder.

`--keys DIR`, else APE_KEYS, else `keys/` under the user's configuration directory. A
signing key is `NAME.key` (PKCS#8 PEM, encrypted when a passphrase is given) with
`NAME.pub` (`ape-ed25519:<base64> NAME`); an age identity is `NAME.age` in the format of
`age-keygen`, so the `age` tool reads it too. Private files are created 0600 and refused
when others may read them (as ssh does).
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from apesim.package.signature import SigningKey

from apesim.errors import KeyringError

APE_KEYS = "APE_KEYS"
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_MAX_KEY_FILE = 64 * 1024


@dataclass(frozen=True)
class KeyInfo:
    """A key in the keyring: `signing` (public `ape-ed25519:...`, with its key id) or
    `age` (public `age1...`)."""

    name: str
    kind: str
    public: str
    key_id: str | None
    protected: bool
    path: Path

    def to_json(self) -> dict[str, object]:
        return {
            "name": self.name,
            "kind": self.kind,
            "public": self.public,
            "key_id": self.key_id,
            "protected": self.protected,
            "path": str(self.path),
        }


def keyring_dir(path: Path | str | None = None) -> Path:
    if path is not None:
        return Path(path)
    env = os.environ.get(APE_KEYS)
    if env:
        return Path(env)
    from platformdirs import user_config_dir

    return Path(user_config_dir("ape", appauthor=False)) / "keys"


def _check_name(name: str) -> None:
    if not NAME_PATTERN.match(name):
        shown = repr(name[:80]) + ("..." if len(name) > 80 else "")  # one line, not a page
        raise KeyringError(
            f"{shown}: a key name is letters, digits, '_', '.' or '-' (at most 64)",
            code="keys.name",
        )


def _write_private(path: Path, data: bytes) -> None:
    """Create `path` readable by its owner only (whatever the umask); never replace."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        raise KeyringError(f"{path}: exists already", code="keys.exists") from None
    try:
        with os.fdopen(fd, "wb") as fh:
            if hasattr(os, "fchmod"):
                os.fchmod(fh.fileno(), 0o600)
            fh.write(data)
    except BaseException:
        path.unlink(missing_ok=True)
        raise


def _read_private(path: Path) -> bytes:
    try:
        info = path.stat()
        if os.name == "posix" and info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise KeyringError(
                f"{path}: the private key may be read by others (mode "
                f"{stat.S_IMODE(info.st_mode):o}); chmod 600 it",
                code="keys.permissions",
            )
        data = _head(path, _MAX_KEY_FILE + 1)
        if len(data) > _MAX_KEY_FILE:
            raise KeyringError(f"{path}: too large for a key file", code="keys.invalid")
        return data
    except FileNotFoundError:
        raise KeyringError(
            f"no key {path.stem!r} in {path.parent} (`ape keys list` shows the keys)",
            code="keys.missing",
        ) from None
    except OSError as exc:
        raise KeyringError(
            f"{path}: cannot read ({exc.strerror or 'not a file'})", code="keys.invalid"
        ) from None


def generate_key(
    name: str, *, age: bool = False, passphrase: str | None = None, directory: Path | None = None
) -> KeyInfo:
    """A new signing key (or age identity) named `name` in the keyring."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apesim.package.signature import key_id, public_key_text

    _check_name(name)
    folder = keyring_dir(directory)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a file where the keyring folder should be
        raise KeyringError(
            f"{folder}: not a folder; give the keyring's folder (--keys DIR or APE_KEYS)",
            code="keys.folder",
        ) from None
    except OSError as exc:
        raise KeyringError(
            f"{folder}: cannot make the keyring's folder ({exc.strerror})", code="keys.folder"
        ) from None
    with contextlib.suppress(OSError):
        os.chmod(folder, 0o700)
    if any((folder / f"{name}{suffix}").exists() for suffix in (".key", ".age")):
        raise KeyringError(f"a key named {name!r} exists already in {folder}", code="keys.exists")
    if age:
        if passphrase:
            raise KeyringError(
                "an age identity is kept unencrypted, as age-keygen keeps it; protect the "
                "folder instead",
                code="keys.passphrase",
            )
        from pyrage import x25519

        identity = x25519.Identity.generate()
        recipient = str(identity.to_public())
        created = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        text = f"# created: {created}\n# public key: {recipient}\n{identity}\n"
        path = folder / f"{name}.age"
        _write_private(path, text.encode("ascii"))
        return KeyInfo(name, "age", recipient, None, False, path)
    private = Ed25519PrivateKey.generate()
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(passphrase.encode("utf-8"))
        if passphrase
        else serialization.NoEncryption()
    )
    pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )
    path = folder / f"{name}.key"
    _write_private(path, pem)
    public = public_key_text(private.public_key())
    (folder / f"{name}.pub").write_text(f"{public} {name}\n", encoding="ascii")
    return KeyInfo(name, "signing", public, key_id(private.public_key()), bool(passphrase), path)


def list_keys(directory: Path | None = None) -> list[KeyInfo]:
    folder = keyring_dir(directory)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.iterdir()):
        if not NAME_PATTERN.match(path.stem):
            continue
        try:
            if path.suffix == ".key":
                found.append(_signing_info(path))
            elif path.suffix == ".age":
                found.append(KeyInfo(path.stem, "age", age_recipient(path), None, False, path))
        except KeyringError:
            continue  # shown by `keys list` as nothing: an unreadable file is not a key
    return found


def _head(path: Path, size: int = _MAX_KEY_FILE) -> bytes:
    """At most `size` bytes of a key file (a file, not a folder): a stranger's huge file
    in the keyring is never read whole."""
    with path.open("rb") as fh:
        if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
            raise IsADirectoryError(path)
        return fh.read(size)


def _signing_info(path: Path) -> KeyInfo:
    from apesim.package.signature import key_id, parse_public_key

    pub = path.with_suffix(".pub")
    try:
        text = _head(pub, 4096).decode("ascii").split()[0]
        public = parse_public_key(text)
    except (OSError, UnicodeDecodeError, IndexError, ValueError):
        raise KeyringError(f"{pub}: missing or not a public key", code="keys.invalid") from None
    try:
        protected = b"ENCRYPTED" in _head(path, 64)
    except OSError as exc:
        raise KeyringError(
            f"{path}: cannot read ({exc.strerror or 'not a file'})", code="keys.invalid"
        ) from None
    return KeyInfo(path.stem, "signing", text, key_id(public), protected, path)


def find_key(name: str, directory: Path | None = None) -> KeyInfo:
    _check_name(name)
    path = keyring_dir(directory) / f"{name}.key"
    if not path.exists():
        raise KeyringError(
            f"no signing key {name!r} in {path.parent} (`ape keys generate {name}` makes one)",
            code="keys.missing",
        )
    return _signing_info(path)


def load_signing_key(
    name: str, passphrase: str | None = None, directory: Path | None = None
) -> SigningKey:
    """The `SigningKey` named `name`; a protected key needs its passphrase
    (`keys.passphrase_needed` when none is given, `keys.passphrase` when it is wrong)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from apesim.package.signature import SigningKey as Key
    from apesim.package.signature import public_key_text

    info = find_key(name, directory)
    data = _read_private(info.path)
    if info.protected and not passphrase:
        raise KeyringError(
            f"the key {name!r} is protected by a passphrase; give it", code="keys.passphrase_needed"
        )
    try:
        private = serialization.load_pem_private_key(
            data, passphrase.encode("utf-8") if info.protected and passphrase else None
        )
    except (ValueError, TypeError):
        wrong = info.protected  # an encrypted PEM that does not open: the passphrase
        raise KeyringError(
            f"the passphrase of the key {name!r} is wrong"
            if wrong
            else f"{info.path}: not an Ed25519 private key",
            code="keys.passphrase" if wrong else "keys.invalid",
        ) from None
    if not isinstance(private, Ed25519PrivateKey):
        raise KeyringError(f"{info.path}: not an Ed25519 private key", code="keys.invalid")
    if public_key_text(private.public_key()) != info.public:
        # else the signature would carry another key id than `ape keys list` shows
        raise KeyringError(
            f"{info.path}: the private key does not match {info.path.with_suffix('.pub').name}",
            code="keys.mismatch",
        )
    return Key(name, private)


def age_recipient(path: Path) -> str:
    """The public key (`age1...`) of an age identity file."""
    from pyrage import x25519

    for line in _read_private(path).decode("ascii", "replace").splitlines():
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                return str(x25519.Identity.from_str(line.strip()).to_public())
            except Exception:
                break
    raise KeyringError(f"{path}: not an age identity file", code="keys.invalid")


def identity_path(name_or_path: str, directory: Path | None = None) -> Path:
    """An identity file given as a path, or the age identity `NAME` of the keyring."""
    path = Path(name_or_path)
    if path.exists() or not NAME_PATTERN.match(name_or_path):
        return path
    return keyring_dir(directory) / f"{name_or_path}.age"
