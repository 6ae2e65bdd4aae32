"""Every command of `ape`, in the order `ape --help` lists them: the module it lives in and
its one-line help (the first paragraph of the command's own help, which a test keeps equal),
so that `ape --help` lists them all without loading one."""

from __future__ import annotations

from apesim.cli.lazy import Lazy

COMMANDS: dict[str, Lazy] = {
    "run": Lazy(
        "apesim.cli.simulations",
        "Run a protocol and store the results in the workspace; with --workers or --scheduler\n"
        "on a Dask cluster (the same files, byte for byte).",
    ),
    "list": Lazy(
        "apesim.cli.simulations",
        "List the simulations in the workspace (when there are none, its path on stderr).",
    ),
    "workspace": Lazy(
        "apesim.cli.simulations",
        "Show the active workspace: its path, where the path came from (--workspace,\n"
        "APE_WORKSPACE or the default), its simulations, size, retention policy and package\n"
        "limits. Creates nothing, unless --set changes a setting.",
    ),
    "gc": Lazy(
        "apesim.cli.simulations",
        "Remove imported simulations past their retention (a dry run unless --apply). Runs\n"
        "of this workspace are never removed unless named. Each removal is recorded in the\n"
        "workspace's audit trail (sim id, package SHA-256, time).",
    ),
    "rerun": Lazy(
        "apesim.cli.simulations",
        "Run a simulation's exact protocol and parameters again and check the tables match.",
    ),
    "reproduce": Lazy(
        "apesim.cli.simulations",
        "Simulate again from the recorded protocol, parameters, seed and model, and compare.",
    ),
    "show": Lazy(
        "apesim.cli.simulations",
        "Show a simulation's metadata and summary statistics.",
    ),
    "export": Lazy(
        "apesim.cli.exports",
        "Export a simulation as a package (ZIP) others can verify and import; optionally\n"
        "signed (--sign) and encrypted (--encrypt-to, --passphrase) as APE_simulation_*.zip.age.",
    ),
    "import": Lazy(
        "apesim.cli.packages",
        "Validate a package completely (its signatures too), then import it as a read-only\n"
        "simulation, or only its summary or its protocol (--only). A differential package is\n"
        "rebuilt on its base (in the workspace, or --base FILE); an encrypted one is decrypted\n"
        "into the workspace's staging area first.",
    ),
    "inspect": Lazy(
        "apesim.cli.packages",
        "Show a package's manifest, statistics, signatures and validation report, without\n"
        "importing.",
    ),
    "list-remote": Lazy(
        "apesim.cli.packages",
        "List the packages (.zip) and batches (.apebatch) under an object-store prefix.",
    ),
    "verify": Lazy(
        "apesim.cli.packages",
        "Exit 0 if the package is valid (and its signatures verify), 2 (with the reason) if\nnot.",
    ),
    "sign": Lazy(
        "apesim.cli.keys",
        "Add a signature to a valid package (a reviewer countersigning); the signatures\n"
        "already there stay valid and are listed by `ape inspect`.",
    ),
    "audit": Lazy(
        "apesim.cli.simulations",
        "Show a simulation's audit trail and check its hash chain: every event carries the\n"
        "SHA-256 of the one before, and the registry keeps the last; exit 2 if it was altered.",
    ),
    "compare": Lazy(
        "apesim.cli.simulations",
        "Compare simulations side by side: the app's Compare table (protocol, origin, seed and\n"
        "the headline statistics). Runs with one seed are paired: the same virtual patients draw\n"
        "the same random numbers in each run (docs/model.md).",
    ),
    "report": Lazy(
        "apesim.cli.report",
        "Write one self-contained HTML report: headline results, charts, summary statistics,\n"
        "protocol, audit trail and checks. It opens in any browser, with no network and no\n"
        "Python; a package is validated and read in place, never imported.",
    ),
    "view": Lazy(
        "apesim.cli.serve",
        "Open a package read-only in the browser, without importing it and without a\n"
        "workspace: its Analysis Overview, its checks and its signatures' verdict (against the\n"
        "workspace's trust list, read only, or --trust FILE), its tables read from inside the\n"
        "ZIP.",
    ),
    "app": Lazy(
        "apesim.cli.serve",
        "Start the app (Streamlit) on the workspace and serve it until Ctrl-C; open the\n"
        "address it prints in your browser.",
    ),
    "protocols": Lazy(
        "apesim.cli.protocols",
        "List, show, validate, add and convert protocols.",
        attr="protocols_app",
        group=True,
    ),
    "keys": Lazy(
        "apesim.cli.keys",
        "Signing keys and age identities (your keyring), the workspace's trusted keys and "
        "its signature policy.",
        attr="keys_app",
        group=True,
    ),
    "sweep": Lazy(
        "apesim.cli.sweeps",
        "Scenario sweeps: run every draw of a sweep file, report, export.",
        attr="sweep_app",
        group=True,
    ),
}
