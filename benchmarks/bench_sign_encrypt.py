"""Benchmark of signed and encrypted packages (format 1.1, issue 10): signing, verifying,
encrypting and decrypting, in seconds and peak memory, at 100,000 and 1,000,000 patients.

    python benchmarks/bench_sign_encrypt.py [--quick] [--sizes 100000,1000000] [--repeat N]

Each figure is a fresh process (peak resident memory from wait4, through a small launcher so
that the benchmark's own memory is not counted), best of `--repeat`. Two kinds of rows:

- the step alone, timed inside its process: signing the manifest (RFC 8785 + Ed25519),
  checking one signature (strict parse, canonical manifest, Ed25519), age encryption and
  decryption of the package file (X25519 recipient: streamed; passphrase: scrypt, whole
  file in memory), decryption as the reader does it (into a workspace's staging area,
  read back, removed);
- the commands, beside their plain twin measured in the same run: `ape export --sign` vs
  `ape export`, `ape verify` of the signed package vs the unsigned one, `ape export --sign
  --encrypt-to` vs `ape export --sign`, `ape verify FILE.age --identity` vs `ape verify`.

Treat-and-extend, 5 years, seed 42. Figures are recorded in docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from apesim import api
from apesim.engine.simulate import SimulationParameters
from apesim.workspace import Workspace

YEARS = 5.0
APE = str(Path(sys.executable).with_name("ape"))

_LAUNCHER = """
import os, sys
pid = os.fork()
if pid == 0:
    os.execv(sys.argv[2], sys.argv[2:])
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as out:
    out.write(f"{usage.ru_maxrss} {os.waitstatus_to_exitcode(status)}")
"""

# Each step prints the seconds of the step itself (the process's start-up excluded).
_SIGN = """
import json, sys, time, zipfile
from apesim import api
from apesim.package.signature import sign_manifest
key = api.load_signing_key("bench")
with zipfile.ZipFile(sys.argv[1]) as zf:
    manifest = json.loads(zf.read("manifest.json"))
start = time.perf_counter()
sign_manifest(manifest, key.private, key.name, "2026-01-01T00:00:00Z")
print(time.perf_counter() - start)
"""

_CHECK = """
import json, sys, time, zipfile
from apesim.package.signature import verify_envelope
start = time.perf_counter()
with zipfile.ZipFile(sys.argv[1]) as zf:
    manifest = json.loads(zf.read("manifest.json"))
    name = next(n for n in zf.namelist() if n.startswith("signatures/"))
    verify_envelope(name, zf.read(name), manifest)
print(time.perf_counter() - start)
"""

_ENCRYPT = """
import sys, time
from apesim.package.encryption import Encryption, encrypt
how = Encryption(passphrase=sys.argv[4]) if sys.argv[3] == "-" else Encryption((sys.argv[3],))
start = time.perf_counter()
with open(sys.argv[1], "rb") as plain, open(sys.argv[2], "wb") as out:
    encrypt(plain, out, how)
print(time.perf_counter() - start)
"""

_DECRYPT = """
import sys, time
from pathlib import Path
from apesim import api
source = Path(sys.argv[1])
ws = api.Workspace(sys.argv[2])
start = time.perf_counter()
if sys.argv[3] == "-":
    opened = api.opened_package(source, ws, passphrase=sys.argv[4])
else:
    opened = api.opened_package(source, ws, identities=[Path(sys.argv[3])])
with opened as plain:
    size = len(plain)
print(time.perf_counter() - start)
"""


@dataclass
class Timed:
    seconds: float
    peak: int  # resident bytes
    inner: float | None = None  # the step's own seconds, as the process printed them


def _run(args: list[str], env: dict[str, str]) -> Timed:
    with tempfile.NamedTemporaryFile("r") as report:
        start = time.perf_counter()
        done = subprocess.run(
            [sys.executable, "-c", _LAUNCHER, report.name, *args],
            env=env,
            check=False,
            capture_output=True,
            text=True,
        )
        elapsed = time.perf_counter() - start
        peak_kib, code = (int(v) for v in report.read().split())
    if code != 0 or done.returncode != 0:
        raise RuntimeError(f"{' '.join(args[:3])} failed ({code}): {done.stderr[-500:]}")
    inner = None
    lines = done.stdout.strip().splitlines()
    if lines:
        try:
            inner = float(lines[-1])
        except ValueError:
            inner = None
    return Timed(elapsed, peak_kib * 1024, inner)


def _best(runs: int, args: list[str], env: dict[str, str]) -> Timed:
    results = [_run(args, env) for _ in range(runs)]
    best = min(results, key=lambda r: r.inner if r.inner is not None else r.seconds)
    return Timed(
        min(r.seconds for r in results),
        max(r.peak for r in results),
        best.inner,
    )


def _py(script: str, *args: str) -> list[str]:
    return [sys.executable, "-c", script, *args]


def measure(patients: int, root: Path, runs: int) -> dict[str, Timed | int]:
    env = {**os.environ, "APE_KEYS": str(root / "keys"), "APE_WORKSPACE": str(root / "ws")}
    os.environ.update(env)
    ws = Workspace(root / "ws")
    record = api.run_simulation(
        ws,
        "aflibercept_treat_and_extend",
        SimulationParameters(patients=patients, years=YEARS, seed=42),
        name=f"bench {patients}",
    )
    signer = api.generate_key("bench", keys=root / "keys")
    api.trust_key(ws, signer.public, "bench")
    identity = api.generate_key("recipient", age=True, keys=root / "keys")
    out = root / "out"
    out.mkdir()
    plain = out / "plain.zip"
    signed = out / "signed.zip"
    sealed = out / "sealed.zip.age"
    ape = [APE]
    sim = record.sim_id
    export = ["export", sim, "--created", "2026-01-01"]

    figures: dict[str, Timed | int] = {}
    figures["export"] = _best(runs, [*ape, *export, "-o", str(plain), "--force"], env)
    figures["export_signed"] = _best(
        runs, [*ape, *export, "-o", str(signed), "--force", "--sign", "bench"], env
    )
    figures["export_sealed"] = _best(
        runs,
        [
            *ape,
            *export,
            "-o",
            str(sealed),
            "--force",
            "--sign",
            "bench",
            "--encrypt-to",
            identity.public,
        ],
        env,
    )
    figures["package_bytes"] = signed.stat().st_size
    figures["sign"] = _best(runs, _py(_SIGN, str(signed)), env)
    figures["check"] = _best(runs, _py(_CHECK, str(signed)), env)
    figures["verify"] = _best(runs, [*ape, "verify", str(plain)], env)
    figures["verify_signed"] = _best(runs, [*ape, "verify", str(signed)], env)
    figures["verify_sealed"] = _best(
        runs, [*ape, "verify", str(sealed), "--identity", str(identity.path)], env
    )
    age_file = out / "re.zip.age"
    figures["encrypt"] = _best(
        runs, _py(_ENCRYPT, str(signed), str(age_file), identity.public), env
    )
    figures["decrypt"] = _best(
        runs, _py(_DECRYPT, str(age_file), str(ws.root), str(identity.path)), env
    )
    pass_file = out / "pass.zip.age"
    figures["encrypt_pass"] = _best(
        runs, _py(_ENCRYPT, str(signed), str(pass_file), "-", "bench passphrase"), env
    )
    figures["decrypt_pass"] = _best(
        runs, _py(_DECRYPT, str(pass_file), str(ws.root), "-", "bench passphrase"), env
    )
    assert list((ws.root / ".staging").iterdir()) == [], "decryption left something behind"
    return figures


def _mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10,000 and 100,000 patients")
    parser.add_argument("--sizes", help="comma-separated patient counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (the best)")
    args = parser.parse_args()
    sizes = (
        [int(s) for s in args.sizes.split(",")]
        if args.sizes
        else ([10_000, 100_000] if args.quick else [100_000, 1_000_000])
    )
    results = {}
    for n in sizes:
        root = Path(tempfile.mkdtemp(prefix="ape-bench-sign-"))
        try:
            results[n] = measure(n, root, args.repeat if n < 1_000_000 else 1)
        finally:
            shutil.rmtree(root, ignore_errors=True)

    print(
        f"Signed and encrypted packages, treat-and-extend, {YEARS:g} years; "
        f"{os.cpu_count()} cores; python {sys.version.split()[0]}; "
        f"best of {args.repeat} (1 at 1,000,000)"
    )
    print("\nThe steps alone (seconds of the step; peak memory of its whole process):\n")
    print(
        "| patients | package | sign | check a signature | encrypt (recipient) "
        "| decrypt (recipient, via staging) | encrypt (passphrase) | decrypt (passphrase) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for n, f in results.items():

        def step(key: str, f: dict[str, Timed | int] = f) -> str:
            t = f[key]
            assert isinstance(t, Timed) and t.inner is not None
            return f"{t.inner:.3f} s ({_mb(t.peak)})"

        size = f["package_bytes"]
        assert isinstance(size, int)
        print(
            f"| {n:,} | {size / 1e6:.1f} MB | {step('sign')} | {step('check')} "
            f"| {step('encrypt')} | {step('decrypt')} | {step('encrypt_pass')} "
            f"| {step('decrypt_pass')} |"
        )
    print("\nThe commands beside their plain twins (wall seconds, peak memory):\n")
    print("| patients | command | plain | signed / encrypted | added |")
    print("|---:|---|---:|---:|---:|")
    pairs = (
        ("ape export --sign", "export", "export_signed"),
        ("ape export --sign --encrypt-to", "export_signed", "export_sealed"),
        ("ape verify (signed)", "verify", "verify_signed"),
        ("ape verify FILE.age --identity", "verify_signed", "verify_sealed"),
    )
    for n, f in results.items():
        for label, base_key, with_key in pairs:
            base, other = f[base_key], f[with_key]
            assert isinstance(base, Timed) and isinstance(other, Timed)
            print(
                f"| {n:,} | `{label}` | {base.seconds:.2f} s ({_mb(base.peak)}) "
                f"| {other.seconds:.2f} s ({_mb(other.peak)}) "
                f"| {other.seconds - base.seconds:+.2f} s ({other.seconds / base.seconds:.2f}x) |"
            )
    big = results.get(1_000_000)
    if big is not None:
        check = big["check"]
        assert isinstance(check, Timed) and check.inner is not None
        print(
            "\nTarget: verifying the signature of a 1,000,000-patient package offline under "
            f"1 s: {'met' if check.inner < 1 else 'NOT met'} ({check.inner:.3f} s)"
        )


if __name__ == "__main__":
    main()
