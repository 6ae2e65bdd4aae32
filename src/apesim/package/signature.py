"""Package signatures (format 1.1): a DSSE envelope per signer whose in-toto statement names
the SHA-256 of the canonical manifest (RFC 8785) and the signer's Ed25519 key.

The manifest's per-file SHA-256 values cover every other byte of the package, so signing
the manifest signs the package. Each signature is the member `signatures/<key id>.dsse.json`
(outside the manifest's file list: it signs the manifest). Signature files are untrusted
input: bounded in size, parsed strictly with a shallow depth limit, checked field by field,
and only then is the Ed25519 signature verified. Which keys are *trusted* is the caller's
question (`verdict`): the reader proves who signed, the workspace's trust list says whether
that signer counts.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import rfc8785
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from apesim.errors import PackageFormatError, PackageIntegrityError, PackageSecurityError
from apesim.package import format as fmt
from apesim.safeload import UnsafeTextError, load_json
from apesim.text import escape_char, first_control

PAYLOAD_TYPE = "application/vnd.in-toto+json"
STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "urn:apesim:package-signature:1"
PUBLIC_KEY_PREFIX = "ape-ed25519:"
_DEPTH = 8  # an envelope nests 3 levels, its statement 4
_MAX_PAYLOAD = 48 * 1024  # base64 characters of the statement
_MAX_SIGNER = 200
_TIME = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}Z$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True)
class PackageSignature:
    """A signature that verified: who signed (by key) and what they called themselves."""

    key_id: str  # SHA-256 of the raw 32-byte public key, lower-case hex
    public_key: str  # `ape-ed25519:<base64>`
    signer: str  # the name the signer gave (signed, but only a claim)
    signed: str  # when, as the signer said (UTC, ISO 8601)
    member: str  # where it was found: a package member or a file beside the package

    def to_json(self) -> dict[str, str]:
        return {
            "key_id": self.key_id,
            "public_key": self.public_key,
            "signer": self.signer,
            "signed": self.signed,
            "member": self.member,
        }


@dataclass(frozen=True)
class SigningKey:
    """A private key ready to sign, with the name its signatures carry."""

    name: str
    private: Ed25519PrivateKey = field(repr=False)


def key_id(public: Ed25519PublicKey) -> str:
    """The key id: SHA-256 of the raw public key."""
    return hashlib.sha256(raw_public(public)).hexdigest()


def raw_public(public: Ed25519PublicKey) -> bytes:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    return public.public_bytes(Encoding.Raw, PublicFormat.Raw)


def public_key_text(public: Ed25519PublicKey) -> str:
    return PUBLIC_KEY_PREFIX + base64.b64encode(raw_public(public)).decode("ascii")


def parse_public_key(text: str) -> Ed25519PublicKey:
    """`ape-ed25519:<base64 of 32 bytes>`; ValueError otherwise."""
    if not text.startswith(PUBLIC_KEY_PREFIX):
        raise ValueError(f"a public key starts with {PUBLIC_KEY_PREFIX!r}")
    raw = _b64(text[len(PUBLIC_KEY_PREFIX) :])
    if raw is None or len(raw) != 32:
        raise ValueError("a public key is 32 bytes in base64")
    if int.from_bytes(raw, "little") & _Y_MASK in _SMALL_ORDER_Y:
        # (R = identity, S = 0) verifies under such a key for many messages (for y = 1,
        # every one): anyone could sign as its holder
        raise ValueError("a weak public key (a point of small order): anyone can sign for it")
    return Ed25519PublicKey.from_public_bytes(raw)


_P = 2**255 - 19
_Y_MASK = (1 << 255) - 1  # the encoding's y, without the sign bit of x
_Y_ORDER_8 = 0x05FC536D880238B13933C6D305ACDFD5F098EFF289F4C345B027B2C28F95E826
# The y of Ed25519's eight points of small order (libsodium's blocklist): order 1, 2, 4
# and 8, and the non-canonical encodings p and p + 1 of y = 0 and y = 1.
_SMALL_ORDER_Y = frozenset({1, _P - 1, 0, _Y_ORDER_8, _P - _Y_ORDER_8, _P, _P + 1})


def member_name(kid: str) -> str:
    return f"{fmt.SIGNATURES_DIR}{kid}{fmt.SIGNATURE_SUFFIX}"


def manifest_digest(manifest: Any) -> str:
    """SHA-256 of the manifest's RFC 8785 canonical JSON: independent of its layout."""
    try:
        return hashlib.sha256(rfc8785.dumps(manifest)).hexdigest()
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise PackageFormatError(
            f"manifest.json: cannot be put in canonical form to check its signature ({exc})",
            code="signature.manifest",
        ) from None


def pae(payload_type: str, payload: bytes) -> bytes:
    """DSSE's pre-authentication encoding: what is actually signed."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def statement(
    manifest: dict[str, Any], public: Ed25519PublicKey, signer: str, signed: str
) -> dict[str, Any]:
    """The in-toto statement a signer signs: the canonical manifest's digest, each file's
    digest (to name the file when a manifest was rebuilt), and the signer's key."""
    subject = [{"name": fmt.MANIFEST, "digest": {"sha256": manifest_digest(manifest)}}]
    for name, spec in sorted(manifest.get("files", {}).items()):
        subject.append({"name": name, "digest": {"sha256": spec["sha256"]}})
    return {
        "_type": STATEMENT_TYPE,
        "subject": subject,
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "key_id": key_id(public),
            "public_key": public_key_text(public),
            "signer": signer,
            "signed": signed,
            "sim_id": manifest.get("sim_id"),
            "package_version": manifest.get("package_version"),
        },
    }


def sign_manifest(
    manifest: dict[str, Any], private: Ed25519PrivateKey, signer: str, signed: str
) -> tuple[str, bytes]:
    """The member name and bytes of a signature of `manifest` (deterministic: Ed25519)."""
    public = private.public_key()
    payload = json.dumps(
        statement(manifest, public, signer, signed), sort_keys=True, separators=(",", ":")
    ).encode("utf-8")
    sig = private.sign(pae(PAYLOAD_TYPE, payload))
    kid = key_id(public)
    envelope = {
        "payloadType": PAYLOAD_TYPE,
        "payload": base64.b64encode(payload).decode("ascii"),
        "signatures": [{"keyid": kid, "sig": base64.b64encode(sig).decode("ascii")}],
    }
    return member_name(kid), (json.dumps(envelope, indent=2, sort_keys=True) + "\n").encode()


# -- verification (untrusted input) ------------------------------------------------------


def _b64(text: str) -> bytes | None:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError, ValueError):
        return None


def _malformed(where: str, what: str) -> PackageFormatError:
    return PackageFormatError(f"{where}: {what}", code="signature.malformed")


def _json(where: str, data: bytes) -> Any:
    try:
        return load_json(data, max_depth=_DEPTH)
    except UnsafeTextError as exc:
        if exc.kind == "depth":
            raise PackageSecurityError(
                f"{where}: nested more than {_DEPTH} levels deep", code="limit.depth"
            ) from None
        raise _malformed(where, f"not a valid signature file ({exc})") from None


def _string(where: str, obj: dict[str, Any], key: str, max_len: int) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or len(value) > max_len:
        raise _malformed(where, f"{key}: expected a string of at most {max_len:,} characters")
    return value


def _exact_keys(where: str, obj: Any, keys: set[str], what: str) -> dict[str, Any]:
    if not isinstance(obj, dict) or set(obj) != keys:
        raise _malformed(where, f"{what} must be an object with exactly {sorted(keys)}")
    return obj


def verify_envelope(where: str, data: bytes, manifest: Any) -> PackageSignature:
    """Check one signature file of the package whose parsed manifest is `manifest`.

    `where` is the member's name (`signatures/<key id>.dsse.json`) or, for a signature kept
    beside the package, the file's name (then its key id is not checked against a name)."""
    envelope = _exact_keys(
        where, _json(where, data), {"payloadType", "payload", "signatures"}, "the envelope"
    )
    if envelope["payloadType"] != PAYLOAD_TYPE:
        raise _malformed(where, f"payloadType must be {PAYLOAD_TYPE!r}")
    sigs = envelope["signatures"]
    if not isinstance(sigs, list) or len(sigs) != 1:
        raise _malformed(where, "signatures must hold exactly one signature")
    entry = _exact_keys(where, sigs[0], {"keyid", "sig"}, "signatures[0]")
    kid = _string(where, entry, "keyid", 64)
    if not _HEX64.match(kid):
        raise _malformed(where, "keyid must be 64 lower-case hex digits")
    sig = _b64(_string(where, entry, "sig", 100))
    if sig is None or len(sig) != 64:
        raise _malformed(where, "sig must be 64 bytes in base64")
    payload = _b64(_string(where, envelope, "payload", _MAX_PAYLOAD))
    if payload is None:
        raise _malformed(where, "payload is not base64")
    body = _exact_keys(
        where,
        _json(where, payload),
        {"_type", "subject", "predicateType", "predicate"},
        "the statement",
    )
    if body["_type"] != STATEMENT_TYPE or body["predicateType"] != PREDICATE_TYPE:
        raise _malformed(where, f"not an APE package signature ({PREDICATE_TYPE})")
    predicate = body["predicate"]
    if not isinstance(predicate, dict):
        raise _malformed(where, "predicate must be an object")
    public_text = _string(where, predicate, "public_key", 100)
    try:
        public = parse_public_key(public_text)
    except ValueError as exc:
        raise _malformed(where, f"public_key: {exc}") from None
    signer = _string(where, predicate, "signer", _MAX_SIGNER)
    signed = _string(where, predicate, "signed", 20)
    if not _TIME.match(signed):
        raise _malformed(where, "signed: expected a UTC time like 2026-01-02T03:04:05Z")
    found = first_control(signer)
    if found is not None:
        raise PackageSecurityError(
            f"{where}: the signer's name contains the control character {escape_char(found)}",
            code="text.control",
        )
    actual = key_id(public)
    if predicate.get("key_id") != actual or kid != actual:
        raise PackageIntegrityError(
            f"{where}: the key id does not match the signer's public key",
            code="signature.key_id",
        )
    if where.startswith(fmt.SIGNATURES_DIR) and where != member_name(actual):
        raise PackageIntegrityError(
            f"{where}: named for another key than the one that signed it ({actual[:16]}…)",
            code="signature.key_id",
        )
    try:
        public.verify(sig, pae(PAYLOAD_TYPE, payload))
    except InvalidSignature:
        raise PackageIntegrityError(
            f"{where}: the signature does not verify (the signature file was altered)",
            code="signature.invalid",
        ) from None
    _check_subject(where, body["subject"], manifest)
    return PackageSignature(actual, public_text, signer, signed, where)


def _check_subject(where: str, subject: Any, manifest: Any) -> None:
    """The signed statement names this manifest, and each file as this manifest lists it;
    if not, name the file that differs (else the manifest)."""
    if not isinstance(subject, list) or not subject or len(subject) > fmt.MAX_ENTRIES_SIGNED:
        raise _malformed(where, "subject must be a non-empty list")
    digests: dict[str, str] = {}
    for item in subject:
        item = _exact_keys(where, item, {"name", "digest"}, "each subject")
        digest = _exact_keys(where, item["digest"], {"sha256"}, "each subject's digest")
        name, value = item["name"], digest["sha256"]
        if not isinstance(name, str) or not isinstance(value, str) or not _HEX64.match(value):
            raise _malformed(where, "each subject needs a name and a SHA-256")
        digests[name] = value
    if fmt.MANIFEST not in digests:
        raise _malformed(where, "the statement does not name manifest.json")
    files = manifest.get("files") if isinstance(manifest, dict) else None
    files = files if isinstance(files, dict) else {}
    for name in sorted(set(files) | (set(digests) - {fmt.MANIFEST})):
        spec = files.get(name)
        listed = spec.get("sha256") if isinstance(spec, dict) else None
        if digests.get(name) != listed:
            what = (
                "was not in the package that was signed"
                if name not in digests
                else "is missing from this package"
                if listed is None
                else "differs from the one that was signed"
            )
            raise PackageIntegrityError(
                f"{where}: {_shown(name)} {what} (the package was changed after signing)",
                code="signature.digest",
            )
    if digests[fmt.MANIFEST] == manifest_digest(manifest):
        return
    raise PackageIntegrityError(
        f"{where}: manifest.json differs from the one that was signed "
        "(the package was changed after signing, or the signature is another package's)",
        code="signature.digest",
    )


def _shown(name: str) -> str:
    return name if len(name) <= 120 else name[:120] + "…"


# -- the verdict (trusted input: the caller's trust list) --------------------------------


@dataclass(frozen=True)
class SignatureVerdict:
    """What the signatures of a valid package amount to, given a trust list:
    `trusted` (a trusted key signed), `unknown` (signed, but by no trusted key) or
    `unsigned`. `trusted_names` maps the key ids that are trusted to their names there."""

    status: str
    signatures: tuple[PackageSignature, ...]
    trusted_names: dict[str, str]

    @property
    def trusted(self) -> bool:
        return self.status == "trusted"

    def summary(self) -> str:
        """One line for people: who signed, and whether they are trusted here."""
        if self.status == "unsigned":
            return "unsigned: no signature in the package"
        parts = []
        for s in self.signatures:
            name = self.trusted_names.get(s.key_id)
            who = f"{name} (trusted)" if name else f"{s.signer!r} (not in the trust list)"
            parts.append(f"{who}, key {s.key_id[:16]}, signed {s.signed}")
        head = "signed and trusted" if self.trusted else "signed by an unknown key"
        return f"{head}: " + "; ".join(parts)

    def hint(self) -> str | None:
        """How to trust an unknown signer (for a warning), or None."""
        if self.status != "unknown":
            return None
        s = self.signatures[0]
        return (
            f"to trust this signer (after checking the key id {s.key_id} with them): "
            f"ape keys trust {s.public_key} --name NAME"
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "signatures": [
                {**s.to_json(), "trusted_as": self.trusted_names.get(s.key_id)}
                for s in self.signatures
            ],
        }


def verdict(signatures: list[PackageSignature], trusted: dict[str, str]) -> SignatureVerdict:
    """Combine a package's verified signatures with a trust list (key id -> name)."""
    if not signatures:
        return SignatureVerdict("unsigned", (), {})
    names = {s.key_id: trusted[s.key_id] for s in signatures if s.key_id in trusted}
    return SignatureVerdict("trusted" if names else "unknown", tuple(signatures), names)


def require(verdict: SignatureVerdict, source_name: str) -> None:
    """Refuse what is not signed by a trusted key (`--require-signature`)."""
    if verdict.status == "unsigned":
        raise PackageIntegrityError(
            f"{source_name}: the package is not signed, and a signature is required",
            code="signature.required",
        )
    if verdict.status == "unknown":
        raise PackageIntegrityError(
            f"{source_name}: signed only by keys that are not trusted here "
            f"({', '.join(s.key_id[:16] for s in verdict.signatures)}), and a trusted "
            "signature is required",
            code="signature.untrusted",
        )
