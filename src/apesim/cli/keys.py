"""`ape sign` and `ape keys`: signing keys, age identities, trusted keys and the signature
policy."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from apesim import api
from apesim.cli.lazy import commands
from apesim.cli.options import (
    JsonOpt,
    KeysOpt,
    PassphraseFileOpt,
    WorkspaceOpt,
)
from apesim.cli.output import (
    escaped,
    examples,
    out,
    print_json,
)
from apesim.cli.resolve import (
    existing_workspace,
    keyring_signer,
    open_workspace,
    read_passphrase,
    stored_workspace,
)
from apesim.text import printable

app = commands()


@app.command(
    epilog=examples(
        "ape sign PACKAGE.zip --key reviewer",
        "ape sign PACKAGE.zip --key reviewer -o PACKAGE-countersigned.zip",
    )
)
def sign(
    package_file: Annotated[Path, typer.Argument(help="A simulation package (.zip).")],
    key: Annotated[str, typer.Option("--key", help="The keyring key to sign with.")],
    output: Annotated[
        Path | None,
        typer.Option("--output", "-o", help="Write the signed package here (default: in place)."),
    ] = None,
    key_passphrase_file: Annotated[
        Path | None,
        typer.Option(
            "--key-passphrase-file", help="The key's passphrase, from a file.", dir_okay=False
        ),
    ] = None,
    keys: KeysOpt = None,
) -> None:
    """Add a signature to a valid package (a reviewer countersigning); the signatures
    already there stay valid and are listed by `ape inspect`."""
    signer = keyring_signer(key, key_passphrase_file, keys)
    target = api.countersign_package(package_file, signer, output)
    out.print(
        f"[green]✓[/] {escaped(target)}: signed by {escaped(signer.name)}, "
        f"key {api.key_id_of(signer)}"
    )


keys_app = typer.Typer(
    name="keys",
    add_completion=False,  # only `ape` itself offers completion
    no_args_is_help=True,
    rich_markup_mode="rich",
    help="Signing keys and age identities (your keyring), the workspace's trusted keys and "
    "its signature policy.",
    epilog=examples(
        "ape keys generate alice",
        "ape keys list",
        "ape keys trust bob.pub --name Bob",
        "ape keys policy --require-signature",
    ),
)


@keys_app.command(
    "generate",
    epilog=examples(
        "ape keys generate alice",
        "ape keys generate alice --passphrase",
        "ape keys generate team --age",
    ),
)
def keys_generate(
    name: Annotated[str, typer.Argument(help="The key's name in the keyring.")],
    age: Annotated[
        bool,
        typer.Option("--age", help="An age identity (to decrypt packages), not a signing key."),
    ] = False,
    passphrase: Annotated[
        bool, typer.Option("--passphrase", help="Protect the private key with a passphrase.")
    ] = False,
    passphrase_file: PassphraseFileOpt = None,
    trust: Annotated[
        bool,
        typer.Option("--trust/--no-trust", help="Trust the new signing key in the workspace."),
    ] = True,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Make a key: an Ed25519 signing key (private file 0600, optionally passphrase-protected)
    or an age identity; print its public half to give to others."""
    secret = read_passphrase(passphrase, passphrase_file, f"Passphrase for {name}", confirm=True)
    info = api.generate_key(name, age=age, passphrase=secret, keys=keys)
    trusted = None
    if info.kind == "signing" and trust:
        trusted = api.trust_key(open_workspace(workspace), info.public, name)
    if as_json:
        print_json({**info.to_json(), "trusted_as": trusted.name if trusted else None})
        return
    out.print(f"[green]✓[/] {info.kind} key {escaped(name)}: {escaped(info.path)}")
    out.print(Text(info.public))
    if info.key_id:
        out.print(f"  key id {info.key_id}")
    if trusted:
        out.print("  trusted in this workspace")


@keys_app.command("list", epilog=examples("ape keys list", "ape keys list --json"))
def keys_list(
    keys: KeysOpt = None, workspace: WorkspaceOpt = None, as_json: JsonOpt = False
) -> None:
    """The keyring's keys and the workspace's trusted keys."""
    mine = api.list_keys(keys)
    ws = existing_workspace(workspace)
    trusted = api.trusted_keys(ws) if ws is not None else []
    policy = api.signature_policy(ws) if ws is not None else None
    if as_json:
        print_json(
            {
                "keyring": str(api.keyring_dir(keys)),
                "keys": [k.to_json() for k in mine],
                "trusted": [
                    {
                        "name": t.name,
                        "key_id": t.key_id,
                        "public_key": t.public_key,
                        "added": t.added,
                    }
                    for t in trusted
                ],
                "require_signature": bool(policy and policy.require_signature),
                "signing_key": policy.signing_key if policy else None,
            }
        )
        return
    table = Table(title=Text(f"Keyring {printable(api.keyring_dir(keys))}"), title_justify="left")
    for column in ("name", "kind", "key id / recipient", "protected"):
        table.add_column(column)
    for k in mine:
        table.add_row(
            Text(printable(k.name)),
            k.kind,
            Text(k.key_id or k.public),
            "yes" if k.protected else "",
        )
    out.print(table)
    table = Table(title="Trusted in this workspace", title_justify="left")
    for column in ("name", "key id", "added"):
        table.add_column(column)
    for t in trusted:
        table.add_row(Text(printable(t.name)), t.key_id, t.added)
    out.print(table)
    if policy is not None:
        out.print(
            f"require signature: {'yes' if policy.require_signature else 'no'}; "
            f"app signs with: {escaped(policy.signing_key or '-')}"
        )


@keys_app.command(
    "trust",
    epilog=examples(
        "ape keys trust bob.pub", "ape keys trust ape-ed25519:AbC...= --name 'Bob (reviewer)'"
    ),
)
def keys_trust(
    key: Annotated[
        str,
        typer.Argument(help="A public key (ape-ed25519:...), a .pub file or a keyring key's name."),
    ],
    name: Annotated[str | None, typer.Option("--name", help="The name to trust it under.")] = None,
    workspace: WorkspaceOpt = None,
) -> None:
    """Trust a public key in the workspace: packages it signs are shown as signed by `name`."""
    trusted = api.trust_key(open_workspace(workspace), key, name)
    out.print(f"[green]✓[/] trusted {escaped(trusted.name)}, key {trusted.key_id}")


@keys_app.command("untrust", epilog=examples("ape keys untrust Bob", "ape keys untrust 7b08a855"))
def keys_untrust(
    ref: Annotated[str, typer.Argument(help="A trusted key's name or key id (8+ hex digits).")],
    workspace: WorkspaceOpt = None,
) -> None:
    """Stop trusting a key in the workspace."""
    removed = api.untrust_key(stored_workspace(workspace), ref)
    out.print(f"[green]✓[/] no longer trusted: {escaped(removed.name)}, key {removed.key_id}")


@keys_app.command(
    "policy",
    epilog=examples(
        "ape keys policy",
        "ape keys policy --require-signature",
        "ape keys policy --default-key alice",
    ),
)
def keys_policy(
    require: Annotated[
        bool | None,
        typer.Option(
            "--require-signature/--allow-unsigned",
            help="Whether imports into this workspace require a trusted signature.",
            show_default=False,
        ),
    ] = None,
    default_key: Annotated[
        str | None, typer.Option("--default-key", help="The key the app signs downloads with.")
    ] = None,
    no_default_key: Annotated[
        bool, typer.Option("--no-default-key", help="The app signs nothing.")
    ] = False,
    keys: KeysOpt = None,
    workspace: WorkspaceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Show or change the workspace's signature policy."""
    ws = open_workspace(workspace)
    if require is not None or default_key is not None or no_default_key:
        policy = api.set_signature_policy(
            ws,
            require_signature=require,
            signing_key=default_key,
            clear_signing_key=no_default_key,
            keys=keys,
        )
    else:
        policy = api.signature_policy(ws)
    if as_json:
        print_json(
            {"require_signature": policy.require_signature, "signing_key": policy.signing_key}
        )
        return
    out.print(
        f"require signature: {'yes' if policy.require_signature else 'no'}; "
        f"app signs with: {escaped(policy.signing_key or '-')}"
    )
