"""The standard tools that read a package without knowing APE, run offline: Frictionless
(`datapackage.json`), roc-validator (`ro-crate-metadata.json`) and bagit.

roc-validator fetches the RO-Crate 1.1 JSON-LD context from the web; here every HTTP
request it makes is answered by `offline_http`: the context from the copy that ships inside
the `rocrate` package, anything else refused (no test reaches the network).
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import requests
import requests.adapters
import rocrate

CONTEXT_URL = "https://w3id.org/ro/crate/1.1/context"
CONTEXT_FILE = Path(rocrate.__file__).parent / "data" / "ro-crate.jsonld"


@contextmanager
def offline_http() -> Iterator[list[str]]:
    """Every request through `requests` served locally: the RO-Crate 1.1 context, else a
    connection error. Yields the list of URLs asked for."""
    asked: list[str] = []

    def send(self: Any, request: Any, **kwargs: Any) -> requests.Response:
        asked.append(request.url)
        if request.url.rstrip("/") != CONTEXT_URL:
            raise requests.ConnectionError(f"offline test: {request.url} refused")
        response = requests.Response()
        response.status_code = 200
        response._content = CONTEXT_FILE.read_bytes()
        response.headers["Content-Type"] = "application/ld+json"
        response.url = request.url
        response.request = request
        return response

    original = requests.adapters.HTTPAdapter.send
    requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]
    try:
        yield asked
    finally:
        requests.adapters.HTTPAdapter.send = original  # type: ignore[method-assign]


def unzip(package: bytes, folder: Path) -> Path:
    """The package's files under `folder`, as `unzip` would leave them."""
    folder.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        zf.extractall(folder)
    return folder


def crate_issues(folder: Path, profile: str = "process-run-crate") -> list[str]:
    """roc-validator's REQUIRED issues for the unzipped crate in `folder` (empty: valid)."""
    from rocrate_validator import services
    from rocrate_validator.models import ValidationSettings

    with offline_http() as asked:
        settings = ValidationSettings(
            rocrate_uri=str(folder),
            profile_identifier=profile,
            requirement_severity="REQUIRED",
            no_cache=True,
        )
        result = services.validate(settings)
    assert set(asked) <= {CONTEXT_URL}, asked
    return [f"{i.check.identifier}: {i.message}" for i in result.get_issues()]


def frictionless_errors(folder: Path) -> list[str]:
    """`frictionless validate datapackage.json` in `folder`: its errors (empty: valid)."""
    from frictionless import Package, system

    with system.use_context(trusted=False):
        report = Package(str(folder / "datapackage.json")).validate()
    if report.valid:
        return []
    return [f"{kind}: {message}" for kind, message in report.flatten(["type", "message"])]


def bag_errors(folder: Path) -> list[str]:
    """bagit-python's validation of the unzipped package as a bag (empty: valid)."""
    import bagit

    try:
        bagit.Bag(str(folder)).validate()
    except bagit.BagError as exc:
        details = getattr(exc, "details", None) or []
        return [str(exc), *(str(d) for d in details)]
    return []
