"""`ape export`: one package (signed, encrypted or differential), several, a batch, or an
object store."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated

import typer

from apesim import api
from apesim.cli.lazy import commands
from apesim.cli.options import (
    JsonOpt,
    KeysOpt,
    PassphraseFileOpt,
    WorkspaceOpt,
)
from apesim.cli.output import (
    err,
    escaped,
    examples,
    line,
    out,
    print_json,
    progress_bar,
)
from apesim.cli.resolve import (
    is_batch,
    keyring_signer,
    parse_created,
    read_passphrase,
    stored_workspace,
)
from apesim.errors import ApeError

app = commands()


@app.command(
    "export",
    epilog=examples(
        "ape export SIM -o packages/",
        "ape export SIM -o packages/trial.zip --created 2026-01-02",
        "ape export SIM -o packages/trial.zip --force",
        "ape export VARIANT --base BASE -o packages/   # only what differs from BASE",
        "ape export SIM --sign alice",
        "ape export SIM --sign alice --encrypt-to age1... --encrypt-to team.txt",
        "ape export SIM --passphrase",
        "ape export SIM_A SIM_B -o packages/",
        "ape export --all -o everything.apebatch",
        "ape export --protocol prn_monthly -o s3://bucket/ape/",
        "ape export --all -o gs://bucket/ape/all.apebatch",
    ),
)
def export_(
    sim_ids: Annotated[
        list[str] | None,
        typer.Argument(help="Simulations: ids, id prefixes or names (or --all, --protocol)."),
    ] = None,
    output: Annotated[  # a str: a Path would drop the trailing "/" that says "a directory"
        str | None,
        typer.Option(
            "--output",
            "-o",
            help="Package file, folder, .apebatch file, or s3:// / gs:// URL (a prefix "
            "ending in /, or NAME.apebatch).",
        ),
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="Every simulation in the workspace.")
    ] = False,
    protocol: Annotated[
        str | None,
        typer.Option("--protocol", help="Every simulation run with this protocol (key or name)."),
    ] = None,
    created: Annotated[
        str | None,
        typer.Option(
            "--created",
            help="The package's created date, ISO 8601 with a zone (e.g. 2026-01-02T03:04:05Z); "
            "the same date gives byte-identical packages. Default: SOURCE_DATE_EPOCH, else now.",
        ),
    ] = None,
    force: Annotated[
        bool,
        typer.Option("--force", help="Replace a different file of the same name."),
    ] = False,
    base: Annotated[
        str | None,
        typer.Option(
            "--base",
            help="Write a differential package: only what differs from this base simulation "
            "(an id, prefix or name of one exported or imported as a package, or its package "
            "file); a full package when that is not much larger.",
        ),
    ] = None,
    sign: Annotated[
        list[str] | None,
        typer.Option("--sign", help="Sign with this keyring key (repeatable)."),
    ] = None,
    key_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--key-passphrase-file",
            help="The signing key's passphrase, from a file (else asked for when needed).",
            dir_okay=False,
        ),
    ] = None,
    signature_beside: Annotated[
        bool,
        typer.Option(
            "--signature-beside", help="Also write the signature beside it (<file>.dsse.json)."
        ),
    ] = False,
    encrypt_to: Annotated[
        list[str] | None,
        typer.Option(
            "--encrypt-to",
            help="Encrypt (age) for this recipient: age1... or a file of them (repeatable).",
        ),
    ] = None,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Encrypt (age) with a passphrase, asked for.")
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Export a simulation as a package (ZIP) others can verify and import; optionally
    signed (--sign) and encrypted (--encrypt-to, --passphrase) as APE_simulation_*.zip.age.

    Several simulations (or --all, --protocol) go into a folder, one .apebatch file, or an
    object store (s3://bucket/prefix/, gs://...; NAME.apebatch for one batch object).

    An existing different file of the same name is never replaced without --force (an
    object in a store never is); a name given without .zip gets it."""
    ws = stored_workspace(workspace)
    refs = sim_ids or []
    if not refs and not every and protocol is None:
        raise ApeError("export: name simulations, or give --all or --protocol KEY")
    moment = parse_created(created) if created is not None else None
    single = len(refs) == 1 and not every and protocol is None
    if not single or (output is not None and (api.is_remote(output) or is_batch(output))):
        if base is not None or encrypt_to or passphrase or passphrase_file:
            raise ApeError(
                "export: --base, --encrypt-to and --passphrase go with one package file; "
                "several packages, batches and object stores take them unencrypted",
                code="export.options",
            )
        signers = [keyring_signer(name, key_passphrase_file, keys) for name in sign or []]
        _export_many(ws, refs, output, every, protocol, moment, force, signers, as_json)
        return
    sim_id = refs[0]
    dest: str | Path = output if output is not None else Path.cwd()
    if base is not None:
        if sign or encrypt_to or passphrase or passphrase_file:
            raise ApeError(
                "--base: a differential package is not signed or encrypted by this APE; "
                "export the full package to sign or encrypt it",
                code="export.options",
            )
        _export_differential(ws, sim_id, dest, base, moment, force, as_json)
        return
    signers = [keyring_signer(name, key_passphrase_file, keys) for name in sign or []]
    encryption = None
    secret = read_passphrase(
        passphrase, passphrase_file, "Passphrase to encrypt with", confirm=True
    )
    if encrypt_to or secret:
        encryption = api.Encryption(api.parse_recipients(encrypt_to or []), secret)
    with progress_bar("Exporting") as bar:
        task = bar.add_task("export", total=None)
        result = api.export_package(
            ws,
            sim_id,
            dest,
            created=moment,
            overwrite=force,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
            sign=signers,
            encrypt=encryption,
            beside=signature_beside,
        )
    if as_json:
        print_json(
            {
                "file": str(result.path),
                "size": result.size,
                "sha256": result.sha256,
                "signed_by": [api.key_id_of(k) for k in signers],
                "encrypted": encryption is not None,
            }
        )
        return
    line(f"{result.path} ({result.size:,} bytes)", ok=True)
    line(f"  sha256 {result.sha256}")
    for key in signers:
        line(f"  signed by {key.name}, key {api.key_id_of(key)}")
    if encryption is not None:
        whom = "a passphrase" if secret else f"{len(encryption.recipients)} recipient(s)"
        line(f"  encrypted (age) for {whom}")


def _export_many(
    ws: api.Workspace,
    refs: list[str],
    output: str | None,
    every: bool,
    protocol: str | None,
    moment: datetime | None,
    force: bool,
    signers: list[api.SigningKey],
    as_json: bool,
) -> None:
    """Several simulations into a folder, a batch or an object store (`api.export_many`)."""
    with progress_bar("Exporting", "simulations") as bar:
        task = bar.add_task("export", total=None)
        bulk = api.export_many(
            ws,
            refs,
            output if output is not None else str(Path.cwd()),
            every=every,
            protocol=protocol,
            created=moment,
            overwrite=force,
            sign=signers,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    if as_json:
        print_json(bulk.to_json())
        return
    for p in bulk.packages:
        out.print(
            f"[green]✓[/] {escaped(p.sim_id)}: {escaped(p.file)} ({p.size:,} bytes, {p.status})"
        )
    if bulk.batch is not None:
        out.print(
            f"[green]✓[/] batch {escaped(bulk.batch)}: {len(bulk.packages)} package(s), "
            f"{bulk.batch_size:,} bytes"
        )
        out.print(f"  sha256 {bulk.batch_sha256}")
    for key in signers:
        out.print(f"  signed by {escaped(key.name)}, key {api.key_id_of(key)}")


def _export_differential(
    ws: api.Workspace,
    sim_id: str,
    dest: str | Path,
    base: str,
    moment: datetime | None,
    force: bool,
    as_json: bool,
) -> None:
    with progress_bar("Comparing with the base") as bar:
        task = bar.add_task("export", total=None)
        made = api.export_differential(
            ws,
            sim_id,
            dest,
            base,
            created=moment,
            overwrite=force,
            progress=lambda done, total: bar.update(task, completed=done, total=total),
        )
    result = made.result
    if as_json:
        print_json(
            {
                "file": str(result.path),
                "size": result.size,
                "sha256": result.sha256,
                "differential": made.differential,
                "full_size": made.full_size,
                "fallback": made.fallback,
                "changed": made.changed,
                "added": made.added,
                "removed": made.removed,
            }
        )
        return
    if made.differential:
        out.print(
            f"[green]✓[/] {escaped(result.path)} ({result.size:,} bytes, {made.share:.1%} of "
            f"the full package's {made.full_size:,}): {made.changed:,} patients changed, "
            f"{made.added:,} added, {made.removed:,} removed"
        )
    else:
        err.print(f"ape: note: a full package was written: {escaped(made.fallback)}")
        out.print(f"[green]✓[/] {escaped(result.path)} ({result.size:,} bytes)")
    out.print(f"  sha256 {result.sha256}")
