"""Encrypted packages (format 1.1): the whole package, signed first, as one age file
(`<package>.zip.age`) for X25519 recipients or a passphrase (scrypt), through pyrage.

age encrypts in 64 KiB chunks, each authenticated, but a reader learns that the file was
truncated or altered only when it reaches the bad chunk: pyrage raises after it has written
the plaintext before it (tens of MB). So a package is never decrypted to where a user would
find it: `decrypted` streams it into a file in the workspace's staging area (a folder the
workspace removes whatever happens, and sweeps if the process dies), reads it back into
memory for validation, and removes it before anything else happens. Recipients stream in
bounded memory; a passphrase needs the whole file in memory (pyrage's passphrase API takes
bytes), so passphrase files are limited to the package limit. Files in age's ASCII armor
(`age -a`: base64 between BEGIN and END lines) are read too, with limits scaled to match.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from apesim import faults
from apesim.errors import ApeError, PackageFormatError, PackageLimitError
from apesim.package import format as fmt
from apesim.safeload import read_at_most

_AGE_OVERHEAD = 1024 * 1024  # header and per-chunk tags: far less than this for 2 GiB
_ARMOR_SLACK = 1024  # the armor's BEGIN and END lines, and whitespace after the END line


@dataclass(frozen=True)
class Encryption:
    """How to encrypt a package: age recipients (`age1...`) and/or one passphrase."""

    recipients: tuple[str, ...] = ()
    passphrase: str | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if not self.recipients and not self.passphrase:
            raise ApeError("encryption: give at least one recipient or a passphrase")
        if self.recipients and self.passphrase:
            raise ApeError(
                "encryption: age encrypts a file for recipients or for a passphrase, not both"
            )


def parse_recipients(values: Sequence[str]) -> tuple[str, ...]:
    """`age1...` strings, or files holding them one a line (`#` comments and blank lines
    skipped, as age's `-R`); each is checked now, so a typo fails before any export."""
    from pyrage import x25519

    found: list[str] = []
    for value in values:
        lines = [value]
        if not value.startswith("age1"):
            path = Path(value)
            try:
                raw = read_at_most(path, 1024 * 1024)
                if len(raw) > 1024 * 1024:
                    raise ApeError(
                        f"{value}: too large for a file of age recipients",
                        code="encryption.recipient",
                    )
                lines = raw.decode("utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                raise ApeError(
                    f"{value}: neither an age recipient (age1...) nor a readable file of them",
                    code="encryption.recipient",
                ) from None
        for line in lines:
            text = line.strip()
            if not text or text.startswith("#"):
                continue
            try:
                x25519.Recipient.from_str(text)
            except Exception:
                raise ApeError(
                    f"{value}: {text[:80]!r} is not an age X25519 recipient (age1...)",
                    code="encryption.recipient",
                ) from None
            found.append(text)
    return tuple(found)


def load_identities(paths: Sequence[Path]) -> list[Any]:
    """age X25519 identities from identity files (`AGE-SECRET-KEY-1...` lines; `age-keygen`
    and `ape keys generate --age` write them)."""
    identities = []
    for path in paths:
        try:
            raw = read_at_most(path, 1024 * 1024)
            if len(raw) > 1024 * 1024:
                raise ApeError(
                    f"{path}: too large for an identity file", code="encryption.identity"
                )
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ApeError(
                f"{path}: cannot read the identity file ({exc})", code="encryption.identity"
            ) from None
        identities.extend(parse_identities(text, str(path)))
    return identities


def parse_identities(text: str, where: str) -> list[Any]:
    """The age identities in `text` (other lines, such as comments, are skipped)."""
    from pyrage import x25519

    found = []
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("AGE-SECRET-KEY-"):
            try:
                found.append(x25519.Identity.from_str(line))
            except Exception:
                raise ApeError(
                    f"{where}: holds a malformed age identity", code="encryption.identity"
                ) from None
    if not found:
        raise ApeError(f"{where}: holds no age identity", code="encryption.identity")
    return found


def encrypt(plain: BinaryIO, out: BinaryIO, how: Encryption) -> None:
    """Encrypt the package in `plain` into `out` (streamed for recipients)."""
    import pyrage
    from pyrage import passphrase, x25519

    if how.passphrase:
        out.write(passphrase.encrypt(plain.read(), how.passphrase))
        return
    recipients = [x25519.Recipient.from_str(r) for r in how.recipients]
    pyrage.encrypt_io(plain, out, recipients)


def is_encrypted(source: Path | bytes) -> bool:
    """Whether the file (or bytes) starts like an age file, binary or armored (its name is
    not trusted)."""
    return _start(source).startswith((fmt.AGE_MAGIC, fmt.AGE_ARMOR))


def _start(source: Path | bytes) -> bytes:
    """The first bytes of the file (or bytes), enough to tell an age file; b"" if unreadable."""
    size = max(len(fmt.AGE_MAGIC), len(fmt.AGE_ARMOR))
    if isinstance(source, bytes):
        return source[:size]
    try:
        with source.open("rb") as fh:
            return fh.read(size)
    except OSError:
        return b""


def _cipher_limit(binary: int, armored: bool) -> int:
    """The largest age file that can hold `binary` bytes of age's binary format: armored, each
    48 bytes are a line of 64 base64 characters and a line break (CRLF at most)."""
    return -(-binary // 48) * 66 + _ARMOR_SLACK if armored else binary


def _failed(name: str, how: str) -> PackageFormatError:
    return PackageFormatError(
        f"{name}: cannot decrypt ({how}); nothing was kept", code="encryption.decrypt"
    )


@contextlib.contextmanager
def decrypted(
    source: Path | bytes,
    name: str,
    staging: contextlib.AbstractContextManager[Path],
    *,
    identities: Sequence[Any] = (),
    passphrase: str | None = None,
    max_bytes: int = 2 * 1024**3,
) -> Iterator[bytes]:
    """The plaintext of the age file `source` (a path, or its bytes), decrypted into a file
    in `staging` (a workspace staging folder) and read back; the file is gone before the
    caller sees the bytes, and on any failure. A wrong key, a truncated or altered file is
    `encryption.decrypt`."""
    import pyrage
    from pyrage import passphrase as age_passphrase

    try:
        size = len(source) if isinstance(source, bytes) else source.stat().st_size
    except OSError as exc:
        raise PackageFormatError(
            f"{name}: cannot read ({exc.strerror})", code="source.unreadable"
        ) from None
    limit = _cipher_limit(max_bytes + _AGE_OVERHEAD, _start(source).startswith(fmt.AGE_ARMOR))
    if size > limit:
        raise PackageLimitError(
            f"{name}: {size:,} bytes exceeds the limit of {max_bytes:,}", code="limit.total_size"
        )
    if not identities and not passphrase:
        raise ApeError(
            f"{name}: the package is encrypted: give its age identity (--identity FILE) or "
            "its passphrase",
            code="encryption.key_needed",
        )
    if passphrase:  # pyrage's passphrase API is bytes in, bytes out: nothing on disk
        try:
            data = source if isinstance(source, bytes) else read_at_most(source, limit)
        except OSError as exc:
            raise PackageFormatError(
                f"{name}: cannot read ({exc.strerror})", code="source.unreadable"
            ) from None
        if len(data) > limit:  # a device or a pipe has no size to check first
            raise PackageLimitError(
                f"{name}: more than {max_bytes:,} bytes", code="limit.total_size"
            )
        try:
            plain = age_passphrase.decrypt(data, passphrase)
        except Exception as exc:
            raise _failed(name, _reason(exc)) from None
        yield plain
        return
    with staging as folder:
        target = folder / "package.zip"
        try:
            with _opened(source) as cipher, open(target, "xb") as sink:
                os.chmod(target, 0o600)
                pyrage.decrypt_io(_Bounded(cipher, limit), sink, list(identities))
            faults.point("decrypt.written")  # plaintext on disk: a kill here is swept
            plain = target.read_bytes()
        except (pyrage.DecryptError, OSError, ValueError) as exc:
            raise _failed(name, _reason(exc)) from None
        finally:
            target.unlink(missing_ok=True)
        if len(plain) > max_bytes:
            raise PackageLimitError(
                f"{name}: decrypts to more than {max_bytes:,} bytes", code="limit.total_size"
            )
        yield plain


def _opened(source: Path | bytes) -> contextlib.AbstractContextManager[BinaryIO]:
    if isinstance(source, bytes):
        return contextlib.nullcontext(io.BytesIO(source))
    return source.open("rb")


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if "No matching keys" in text or "incorrect" in text.lower():
        return "the key or passphrase does not open it"
    if "Decryption failed" in text:  # scrypt: a wrong passphrase, or a damaged header
        return "the passphrase does not open it, or the file was altered"
    if "decryption error" in text or "truncated" in text.lower():
        return "the file is truncated or was altered"
    return text[:200]


class _Bounded(io.RawIOBase):
    """A reader that stops at `limit` bytes (the file was checked, but may grow)."""

    def __init__(self, inner: BinaryIO, limit: int) -> None:
        self._inner, self._left = inner, limit

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")[: self._left]
        n = self._inner.readinto(view)  # type: ignore[attr-defined]
        self._left -= n or 0
        return n or 0
