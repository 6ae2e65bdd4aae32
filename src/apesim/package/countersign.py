"""Adding a signature to an existing package (a reviewer countersigning): the package is
validated first (its own signatures too), then one member `signatures/<key id>.dsse.json`
is appended. Every other byte of the ZIP stays as it was, so the earlier signatures still
verify (they sign the manifest, which does not change)."""

from __future__ import annotations

import io
import json
import zipfile
from datetime import datetime

from apesim.errors import ApeError
from apesim.package import format as fmt
from apesim.package.reader import validate_package
from apesim.package.signature import SigningKey, member_name, sign_manifest
from apesim.package.signature import key_id as key_id_of
from apesim.results.metadata import iso_utc


def countersign(
    package: bytes, key: SigningKey, when: datetime, *, source_name: str = "package"
) -> bytes:
    """The package with one more signature, by `key`, dated `when`."""
    report = validate_package(package, source_name=source_name)
    manifest = report.manifest
    assert manifest is not None
    version = tuple(int(p) for p in str(manifest.get("package_version", "1.0")).split("."))
    if version < fmt.SIGNATURES_SINCE:
        raise ApeError(
            f"{source_name}: a package of format {manifest.get('package_version')} cannot hold "
            "signatures; export the simulation again to sign it",
            code="signature.version",
        )
    name = member_name(key_id_of(key.private.public_key()))
    if any(s.member == name for s in report.signatures):
        raise ApeError(
            f"{source_name}: already signed by this key ({key.name})", code="signature.exists"
        )
    if len(report.signatures) >= fmt.MAX_SIGNATURES:
        raise ApeError(
            f"{source_name}: holds {fmt.MAX_SIGNATURES} signatures already, the most a package may",
            code="limit.signatures",
        )
    member, data = sign_manifest(
        json.loads(json.dumps(manifest)), key.private, key.name, iso_utc(when)
    )
    out = io.BytesIO(package)
    out.seek(0, io.SEEK_END)
    with zipfile.ZipFile(out, "a", allowZip64=False) as zf:
        info = zipfile.ZipInfo(member, date_time=when.timetuple()[:6])
        info.create_system = 3
        info.external_attr = 0o100644 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, data, compresslevel=9)
    return out.getvalue()
