"""The CLI's options turned into what the API takes: workspaces, passphrases, signing keys,
package limits and dates."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import typer

from apesim import api
from apesim.errors import ApeError, WorkspaceError


def open_workspace(path: Path | None) -> api.Workspace:
    """The workspace of --workspace (else APE_WORKSPACE, else the default), made if new."""
    return api.Workspace(api.workspace_location(path).path)


def stored_workspace(path: Path | None) -> api.Workspace:
    """The workspace of a command that reads stored simulations: one named by --workspace
    that does not exist (a typo, say) is an error naming the path, not a new empty one."""
    location = api.workspace_location(path)
    if location.source == "--workspace" and not api.workspace_exists(location.path):
        raise WorkspaceError(
            f"no workspace at {location.describe()}; check the path (`ape workspace` shows "
            "the active one), or run a simulation there first",
            code="workspace.missing",
        )
    return api.Workspace(location.path)


def existing_workspace(path: Path | None) -> api.Workspace | None:
    """The workspace whose protocols are looked up, if its folder exists (a mistyped
    --workspace is not created by a look-up)."""
    location = api.workspace_location(path)
    return api.Workspace(location.path) if location.path.is_dir() else None


def workspace_if_any(path: Path | None) -> api.Workspace | None:
    """The workspace, if one exists there (none is created by a command that reads a
    package); opened only when a differential package needs its base."""
    location = api.workspace_location(path)
    return api.Workspace(location.path) if api.workspace_exists(location.path) else None


def read_passphrase(ask: bool, file: Path | None, what: str, confirm: bool = False) -> str | None:
    """A passphrase from a file's first line, or asked for (hidden), or None."""
    if file is not None:
        return api.read_passphrase_file(file)
    if ask:
        text: str = typer.prompt(what, hide_input=True, confirmation_prompt=confirm)
        return text
    return None


def keyring_signer(name: str, passphrase_file: Path | None, keys: Path | None) -> api.SigningKey:
    """A keyring key, asking for its passphrase when it has one and no file gives it."""
    given = read_passphrase(False, passphrase_file, "")
    if given is None and api.signing_key_protected(name, keys):
        given = read_passphrase(True, None, f"Passphrase of the key {name}")
    return api.load_signing_key(name, given, keys)


def package_limits(
    max_gib: float | None,
    workspace: Path | None = None,
    entries: int | None = None,
    ratio: float | None = None,
) -> api.ReadLimits:
    """The limits a package is read under: these flags, else the workspace's settings
    (read without opening the workspace), else the format's defaults."""
    return api.read_limits(
        api.workspace_settings(workspace),
        max_unpacked_gib=max_gib,
        max_entries=entries,
        max_ratio=ratio,
    )


def parse_created(text: str) -> datetime:
    """--created: an ISO 8601 date and time with a zone, or a plain date (midnight UTC)."""
    given = text.strip()
    try:
        moment = datetime.fromisoformat(given.removesuffix("Z").removesuffix("z"))
        if given[-1:] in "Zz" and moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
    except (ValueError, IndexError):
        raise ApeError(
            f"--created: not an ISO 8601 date and time: {text!r} "
            "(e.g. 2026-01-02T03:04:05Z, or the date 2026-01-02 for midnight UTC)"
        ) from None
    if moment.tzinfo is None:
        if "T" not in given.upper() and " " not in given:  # a plain date: midnight UTC
            return moment.replace(tzinfo=UTC)
        raise ApeError(f"--created: give a time zone, e.g. {moment:%Y-%m-%dT%H:%M:%S}Z for UTC")
    return moment


def is_batch(name: str) -> bool:
    """Whether a file or object name is an .apebatch (several packages in one file)."""
    return name.lower().endswith(".apebatch")
