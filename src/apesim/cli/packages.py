"""Commands that read packages: import, inspect, verify, and list-remote for an object store."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from apesim import api
from apesim.cli.lazy import commands
from apesim.cli.options import (
    BaseFileOpt,
    IdentityOpt,
    JsonOpt,
    KeysOpt,
    MaxEntriesOpt,
    MaxGibOpt,
    MaxRatioOpt,
    PassphraseFileOpt,
    PassphraseOpt,
    SignatureOpt,
    TrustOpt,
    WorkspaceOpt,
)
from apesim.cli.output import (
    escaped,
    examples,
    line,
    out,
    print_json,
    progress_bar,
    record_table,
    report_table,
    show_verdict,
    summary_table,
)
from apesim.cli.resolve import (
    is_batch,
    open_workspace,
    package_limits,
    read_passphrase,
    workspace_if_any,
)
from apesim.errors import ApeError, PackageFormatError
from apesim.text import printable

app = commands()


@app.command(
    "import",
    epilog=examples(
        "ape import PACKAGE.zip",
        "ape import PACKAGE.zip -w ~/ape-trial --json",
        "ape import APE_differential_SIM.zip --base BASE_PACKAGE.zip",
        "ape import PACKAGE.zip --require-signature",
        "ape import PACKAGE.zip.age --identity ~/.config/ape/keys/me.age",
        "ape import packages/ 'more/*.zip' everything.apebatch",
        "ape import s3://bucket/ape/ --fail-fast",
        "ape import PACKAGE.zip --only summary",
        "ape import PACKAGE.zip --only protocol",
    ),
)
def import_(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Packages (.zip, .age), batches (.apebatch), folders, globs, or s3:// / gs:// "
            "URLs (an object, or a prefix ending in /)."
        ),
    ],
    fail_fast: Annotated[
        bool, typer.Option("--fail-fast", help="Stop at the first package that fails.")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(
            "--only",
            help="Take only part of one package: 'summary' (metadata, statistics and audit "
            "trail, without the tables) or 'protocol' (into the protocol library).",
            show_default=False,
        ),
    ] = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
    max_gib: MaxGibOpt = None,
    max_entries: MaxEntriesOpt = None,
    max_ratio: MaxRatioOpt = None,
    base: BaseFileOpt = None,
    require_signature: Annotated[
        bool | None,
        typer.Option(
            "--require-signature/--allow-unsigned",
            help="Refuse a package no trusted key signed. Default: the workspace's policy.",
            show_default=False,
        ),
    ] = None,
    trust_file: TrustOpt = None,
    signature: SignatureOpt = None,
    identity: IdentityOpt = None,
    passphrase: PassphraseOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
) -> None:
    """Validate a package completely (its signatures too), then import it as a read-only
    simulation, or only its summary or its protocol (--only). A differential package is
    rebuilt on its base (in the workspace, or --base FILE); an encrypted one is decrypted
    into the workspace's staging area first.

    Several packages, a folder, a glob, a batch or a URL: each package on its own (a bad
    one does not stop the others unless --fail-fast; one already here is skipped as a
    duplicate), one line each (ok / duplicate / failed with its finding code), exit 2 if
    any failed."""
    if only not in (None, "summary", "protocol"):
        raise ApeError(f"--only: {only!r} is not 'summary' or 'protocol'")
    ws = open_workspace(workspace)
    one = paths[0] if len(paths) == 1 else None
    if one is None or api.is_remote(one) or is_batch(one) or not Path(one).is_file():
        options = base is not None or identity or passphrase or passphrase_file or signature or only
        pattern = one is not None and any(c in one for c in "*?[")
        if options and one is not None and not pattern and not Path(one).exists():
            raise ApeError(f"{printable(one)}: no such file", code="import.missing")
        if options:
            raise ApeError(
                "import: --base, --identity, --passphrase, --signature and --only go with one "
                "package file",
                code="import.options",
            )
        with progress_bar("Importing", "packages") as bar:
            task = bar.add_task("import", total=None)
            bulk = api.import_many(
                ws,
                paths,
                fail_fast=fail_fast,
                limits=package_limits(max_gib, workspace, max_entries, max_ratio),
                require_signature=require_signature,
                trust=api.trust_list(ws, trust_file) if trust_file is not None else None,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        if as_json:
            print_json(bulk.to_json())
        else:
            _print_bulk_import(bulk)
        if not bulk.ok:
            raise typer.Exit(2)
        return
    package_file = Path(one)
    trust, beside = _read_options(package_file, ws, trust_file, signature)
    secret = read_passphrase(passphrase, passphrase_file, "Passphrase of the package")
    identities = [api.identity_path(i, keys) for i in identity or []]
    limits = package_limits(max_gib, workspace, max_entries, max_ratio)
    checks: dict[str, Any] = {
        "trust": trust if trust_file is not None else None,
        "beside": beside,
        "require_signature": require_signature,
    }
    with api.opened_package(
        package_file, ws, identities=identities, passphrase=secret, max_bytes=limits.max_total_bytes
    ) as source:
        if only == "protocol":
            info = api.import_protocol(
                ws, source, source_name=package_file.name, limits=limits, **checks
            )
        else:
            record = api.import_package(
                ws,
                source,
                source_name=package_file.name,
                limits=limits,
                base=base,
                only=only,
                **checks,
            )
    if only == "protocol":
        if as_json:
            print_json({"file": str(package_file), **vars(info)})
            return
        line(
            f"the protocol of {package_file.name} is saved as {info.key} ({info.name}); "
            f"run it with `ape run -p {info.key} ...`",
            ok=True,
        )
        return
    if as_json:
        print_json(api.show_simulation(ws, record.sim_id))
        return
    what = "the summary of " if only else ""
    line(
        f"imported {what}{record.sim_id} ({record.name}) from {package_file.name}; "
        "it is read-only"
        + ("; its tables were left out (import the full package to see them)" if only else ""),
        ok=True,
    )
    verdict = api.audit_trail(ws, record.sim_id).events[-1].details.get("signature")
    if isinstance(verdict, dict) and verdict.get("status") == "trusted":
        names = ", ".join(map(str, verdict.get("trusted_as", [])))
        line(f"signed by {names} (trusted)", ok=True)
    elif isinstance(verdict, dict) and verdict.get("status") == "unknown":
        sys.stderr.write(
            "ape: warning: signed only by keys not in the trust list "
            f"({printable(', '.join(k[:16] for k in verdict.get('key_ids', [])))}); "
            "`ape inspect` shows how to trust them\n"
        )
    else:
        sys.stderr.write("ape: note: the package is not signed\n")


def _print_bulk_import(bulk: api.BulkImport) -> None:
    """One line a package: ok (its sim id), duplicate or failed (finding code and reason)."""
    from rich.text import Text

    marks = {
        "ok": "[green]✓ ok[/]",
        "duplicate": "[yellow]= duplicate[/]",
        "failed": "[red]✗ failed[/]",
    }
    for item in bulk.items:
        detail = item.sim_id or ""
        if item.status != "ok":
            detail = f"{item.code}: {item.message or ''}"
        out.print(f"{marks[item.status]} {escaped(item.source)}  {escaped(detail)}")
    summary = (
        f"{bulk.count('ok')} imported, {bulk.count('duplicate')} duplicate(s), "
        f"{bulk.count('failed')} failed"
    )
    if bulk.stopped:
        summary += "; stopped at the first failure (--fail-fast)"
    out.print(summary)
    for batch in bulk.batches:
        for sig in batch["signatures"]:
            who = (
                f"trusted as {sig['trusted_as']}"
                if sig["trusted_as"]
                else "a key not in the trust list"
            )
            out.print(
                Text(
                    f"batch {printable(batch['source'])}: index signed by "
                    f"{printable(sig['signer'])} (key {sig['key_id'][:16]}…, {who})"
                )
            )


def _read_options(
    package_file: Path,
    ws: api.Workspace | Path | None,
    trust_file: Path | None,
    signature: list[Path] | None,
) -> tuple[dict[str, str], list[tuple[str, bytes]]]:
    return api.trust_list(ws, trust_file), api.signatures_beside(package_file, signature)


def _checked(
    package_file: Path,
    limits: api.ReadLimits,
    base: Path | None,
    workspace: Path | None,
    *,
    trust_file: Path | None,
    signature: list[Path] | None,
    identity: list[str] | None,
    secret: str | None,
    keys: Path | None,
) -> api.PackageReport:
    """Every check of a package, its signatures judged against the trust list (the
    workspace's, or --trust FILE); a differential one rebuilt on its base (--base FILE,
    else found in the workspace if there is one); an encrypted one decrypted first (in the
    workspace's staging area)."""
    if is_batch(package_file.name):
        raise PackageFormatError(
            f"{package_file}: a batch of packages (.apebatch), not one package: `ape import` "
            "validates each of its packages before it imports them",
            code="package.batch",
        )
    trust, beside = _read_options(
        package_file, api.workspace_location(workspace).path, trust_file, signature
    )
    identities = [api.identity_path(i, keys) for i in identity or []]
    # A workspace is opened only to decrypt (its staging area) or for a differential
    # package's base: a full package is read without touching one.
    staging = open_workspace(workspace) if api.is_encrypted(package_file) else None
    with api.opened_package(
        package_file,
        staging,
        identities=identities,
        passphrase=secret,
        max_bytes=limits.max_total_bytes,
    ) as source:
        report = api.inspect_with_base(
            source,
            ws=lambda: workspace_if_any(workspace),
            base=base,
            source_name=package_file.name,
            limits=limits,
        )
    return api.judge(report, trust, beside)


@app.command(
    epilog=examples(
        "ape inspect PACKAGE.zip",
        "ape inspect PACKAGE.zip --json",
        "ape inspect PACKAGE.zip.age --passphrase",
        "ape inspect s3://bucket/ape/APE_simulation_ID_20260102.zip",
        "ape inspect gs://bucket/ape/APE_simulation_ID_20260102.zip --full",
    )
)
def inspect(
    package: Annotated[
        str,
        typer.Argument(help="A simulation package (.zip or .age), or its s3:// or gs:// URL."),
    ],
    full: Annotated[
        bool,
        typer.Option("--full", help="For a URL: download the whole package and run every check."),
    ] = False,
    as_json: JsonOpt = False,
    max_gib: MaxGibOpt = None,
    max_entries: MaxEntriesOpt = None,
    max_ratio: MaxRatioOpt = None,
    base: BaseFileOpt = None,
    trust_file: TrustOpt = None,
    signature: SignatureOpt = None,
    identity: IdentityOpt = None,
    passphrase: PassphraseOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Show a package's manifest, statistics, signatures and validation report, without
    importing.

    For a URL, by default only the ZIP's directory, the manifest and the tables' footers
    are read (a few byte ranges, not the whole object): what the package declares, not yet
    verified; --full downloads it and runs every check. The limits are checked on the sizes
    the ZIP's directory declares, before any file is read: a package over one is reported
    with the limit it would exceed."""
    if api.is_remote(package):
        _inspect_remote(package, full, max_gib, as_json)
        return
    package_file = Path(package)
    secret = read_passphrase(passphrase, passphrase_file, "Passphrase of the package")
    report = _checked(
        package_file,
        package_limits(max_gib, workspace, max_entries, max_ratio),
        base,
        workspace,
        trust_file=trust_file,
        signature=signature,
        identity=identity,
        secret=secret,
        keys=keys,
    )
    if as_json:
        print_json(report.to_json())
    else:
        out.print(
            f"[bold]{escaped(report.source_name)}[/]: {report.size:,} bytes, "
            f"format: {escaped(report.format)}"
        )
        out.print(f"sha256 {report.sha256}")
        if report.metadata:
            out.print(record_table(report.metadata))
        summary = api.validated_summary(report)
        if summary is not None:
            out.print(summary_table(summary))
        for warning in report.warnings:
            sys.stderr.write(f"ape: warning: {printable(warning)}\n")
        out.print(report_table(report))
        show_verdict(report)
    if report.error is not None:
        if not as_json:
            sys.stderr.write(f"ape: error: {report.error}\n")
        raise typer.Exit(2)


def _inspect_remote(url: str, full: bool, max_gib: float | None, as_json: bool) -> None:
    """A remote package: declared contents from a few byte ranges, or (--full) downloaded
    and checked."""
    from rich.table import Table
    from rich.text import Text

    if full:
        report = api.inspect_remote(url, full=True, limits=package_limits(max_gib))
        assert isinstance(report, api.PackageReport)
        if as_json:
            print_json(report.to_json())
        else:
            out.print(f"[bold]{escaped(report.source_name)}[/]: {report.size:,} bytes")
            out.print(f"sha256 {report.sha256}")
            out.print(report_table(report))
        if report.error is not None:
            if not as_json:
                sys.stderr.write(f"ape: error: {report.error}\n")
            raise typer.Exit(2)
        return
    peek = api.inspect_remote(url, limits=package_limits(max_gib))
    assert isinstance(peek, api.RemotePeek)
    if as_json:
        print_json(peek.to_json())
    else:
        out.print(f"[bold]{escaped(peek.url)}[/]: {peek.size:,} bytes")
        manifest = peek.manifest or {}
        for key in ("sim_id", "package_version", "created_date", "created_by", "ape_version"):
            if key in manifest:
                out.print(f"  {key}: {escaped(manifest[key])}")
        table = Table("file", "bytes", "sha256", "rows", title="Files the manifest lists")
        for name, entry in sorted((manifest.get("files") or {}).items()):
            rows = peek.tables.get(name, {}).get("rows")
            table.add_row(
                Text(printable(name)),
                f"{entry.get('size', 0):,}",
                Text(printable(str(entry.get("sha256", ""))[:16] + "…")),
                "" if rows is None else f"{rows:,}",
            )
        out.print(table)
        out.print(
            f"Read {peek.bytes_read:,} of {peek.size:,} bytes in {peek.requests} range "
            "request(s): declared, not verified (--full checks every byte)."
        )
    if peek.problems:
        if not as_json:
            sys.stderr.write(f"ape: error: {printable(peek.problems[0]['message'])}\n")
        raise typer.Exit(2)


@app.command(
    "list-remote",
    epilog=examples(
        "ape list-remote s3://bucket/ape/",
        "ape list-remote gs://bucket/ape/ --json",
    ),
)
def list_remote(
    url: Annotated[str, typer.Argument(help="An s3:// or gs:// prefix (ending in /).")],
    as_json: JsonOpt = False,
) -> None:
    """List the packages (.zip) and batches (.apebatch) under an object-store prefix."""
    from rich.table import Table
    from rich.text import Text

    if not api.is_remote(url):
        raise ApeError(f"{url}: not an s3:// or gs:// URL", code="remote.url")
    found = api.list_remote(url)
    if as_json:
        print_json([{"url": o.url, "size": o.size} for o in found])
        return
    table = Table("object", "bytes")
    for o in found:
        table.add_row(Text(printable(o.url)), f"{o.size:,}")
    out.print(table)
    if not found:
        sys.stderr.write(f"ape: nothing under {printable(url)}\n")


@app.command(
    epilog=examples(
        "ape verify PACKAGE.zip",
        "ape verify PACKAGE.zip --json",
        "ape verify PACKAGE.zip --require-signature --trust team_keys.json",
    )
)
def verify(
    package: Annotated[
        str,
        typer.Argument(help="A simulation package (.zip or .age), or its s3:// or gs:// URL."),
    ],
    max_gib: MaxGibOpt = None,
    max_entries: MaxEntriesOpt = None,
    max_ratio: MaxRatioOpt = None,
    as_json: JsonOpt = False,
    base: BaseFileOpt = None,
    require_signature: Annotated[
        bool,
        typer.Option("--require-signature", help="Exit 2 unless a trusted key signed it."),
    ] = False,
    trust_file: TrustOpt = None,
    signature: SignatureOpt = None,
    identity: IdentityOpt = None,
    passphrase: PassphraseOpt = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Exit 0 if the package is valid (and its signatures verify), 2 (with the reason) if
    not.

    With --json: the verdict as JSON on stdout (file, valid, format, size, sha256, error
    with its stable code, warnings, signature), exit 2 still if it is not valid. A URL's
    package is downloaded (to memory, within the size limit) and checked the same way."""
    limits = package_limits(max_gib, workspace, max_entries, max_ratio)
    if api.is_remote(package):
        if base or signature or identity or passphrase or passphrase_file:
            raise ApeError(
                f"{printable(package)}: --base, --signature, --identity and passphrases go "
                "with a package file; download the package to use them"
            )
        remote = api.inspect_remote(package, full=True, limits=limits)
        assert isinstance(remote, api.PackageReport)
        trust = api.trust_list(api.workspace_location(workspace).path, trust_file)
        checked = api.judge(remote, trust)
    else:
        secret = read_passphrase(passphrase, passphrase_file, "Passphrase of the package")
        checked = _checked(
            Path(package),
            limits,
            base,
            workspace,
            trust_file=trust_file,
            signature=signature,
            identity=identity,
            secret=secret,
            keys=keys,
        )
    if checked.ok and require_signature:
        try:
            api.require_signature(checked)
        except ApeError as exc:
            if not as_json:
                raise
            checked.error = exc  # type: ignore[assignment]
    if as_json:
        full = checked.to_json()
        keys_shown = ("file", "valid", "format", "size", "sha256", "error", "warnings", "signature")
        print_json({key: full[key] for key in keys_shown})
        if checked.error is not None or not checked.ok:
            raise typer.Exit(2)
        return
    if checked.error is not None:
        raise checked.error
    report = checked
    for warning in report.warnings:
        sys.stderr.write(f"ape: warning: {printable(warning)}\n")
    line(f"{report.source_name}: valid {report.format} package", ok=True)
    show_verdict(report)
