"""The simulation package format, version 1.1: names, versions, limits. The normative
description is docs/package-format.md; this module is its single source in code."""

from __future__ import annotations

import re
from dataclasses import dataclass

from apesim.limits import MAX_PROTOCOL_BYTES
from apesim.workspace import layout

FORMAT_NAME = "ape-simulation-package"
PACKAGE_VERSION = "1.1"
MAJOR, MINOR = 1, 1

# Format major version -> the first APE release that reads it (the spec's version table).
READERS_BY_MAJOR = {1: "0.1.0"}

MANIFEST = "manifest.json"
PATIENTS = "data/patients.parquet"
VISITS = "data/visits.parquet"
METADATA = "data/metadata.parquet"
PROTOCOL = "protocol.yaml"
PARAMETERS = "parameters.json"
SUMMARY = "summary_stats.json"
AUDIT = "audit_log.json"
README = "README.txt"
PREVIEW = "results_preview.csv"
# Format 1.1: the package describes itself to tools that do not know APE.
DATAPACKAGE = "datapackage.json"  # Frictionless Data Package v2
RO_CRATE = "ro-crate-metadata.json"  # RO-Crate 1.1, Process Run Crate 0.5
# ... and, unzipped, is a BagIt 1.0 bag: the tables are its payload (data/), the rest tags.
BAGIT = "bagit.txt"
BAG_MANIFEST = "manifest-sha256.txt"  # the payload's SHA-256s, `sha256sum -c` format
BAG_TAGMANIFEST = "tagmanifest-sha256.txt"  # every other file's but manifest.json's

PARQUET_FILES = (PATIENTS, VISITS, METADATA)
REQUIRED_FILES_1_0 = (PATIENTS, VISITS, METADATA, PROTOCOL, PARAMETERS, SUMMARY, AUDIT, README)
REQUIRED_FILES = (*REQUIRED_FILES_1_0, DATAPACKAGE, BAGIT, BAG_MANIFEST, RO_CRATE, BAG_TAGMANIFEST)
OPTIONAL_FILES = (PREVIEW,)
KNOWN_FILES = (MANIFEST, *REQUIRED_FILES, *OPTIONAL_FILES)
# Entry order inside the ZIP: the manifest first, so a streaming reader sees it first; the
# self-description last, as it describes the files before it.
ENTRY_ORDER = (
    MANIFEST,
    *PARQUET_FILES,
    PROTOCOL,
    PARAMETERS,
    SUMMARY,
    AUDIT,
    README,
    PREVIEW,
    DATAPACKAGE,
    BAGIT,
    BAG_MANIFEST,
    RO_CRATE,
    BAG_TAGMANIFEST,
)

# The files of each minor version of format 1 (a reader of a newer minor version accepts
# every older one): minor -> (required, optional).
FILES_BY_MINOR: dict[int, tuple[tuple[str, ...], tuple[str, ...]]] = {
    0: (REQUIRED_FILES_1_0, (PREVIEW,)),
    1: (REQUIRED_FILES, OPTIONAL_FILES),
}


def required_files(minor: int) -> tuple[str, ...]:
    """The files a package of format 1.`minor` must hold (this APE's newest for newer)."""
    return FILES_BY_MINOR[min(minor, MINOR)][0]


def known_files(minor: int) -> tuple[str, ...]:
    """Every file a package of format 1.`minor` may hold, the manifest included."""
    required, optional = FILES_BY_MINOR[min(minor, MINOR)]
    return (MANIFEST, *required, *optional)


PREVIEW_MAX_BYTES = 10 * 1024 * 1024

# Differential packages (format 1.1): only what differs from a base simulation, by patient
# (docs/package-format.md, "Differential packages"). The small files are the full package's.
DIFFERENTIAL_FORMAT = "ape-differential-package"
DIFFERENTIAL_VERSION = "1.1"
DELTA_PATIENTS = "delta/patients.parquet"
DELTA_VISITS = "delta/visits.parquet"
RESULT_MANIFEST = "result/manifest.json"  # the full package's manifest, byte for byte
DIFFERENTIAL_REQUIRED = (
    DELTA_PATIENTS,
    DELTA_VISITS,
    METADATA,
    RESULT_MANIFEST,
    PROTOCOL,
    PARAMETERS,
    SUMMARY,
    AUDIT,
    README,
)
DIFFERENTIAL_ORDER = (
    MANIFEST,
    DELTA_PATIENTS,
    DELTA_VISITS,
    METADATA,
    RESULT_MANIFEST,
    PROTOCOL,
    PARAMETERS,
    SUMMARY,
    AUDIT,
    README,
)
DIFFERENTIAL_PARQUET = (DELTA_PATIENTS, DELTA_VISITS, METADATA)
REBUILT_FILES = (PATIENTS, VISITS)  # the tables rebuilt from the base and the delta
# Export writes a full package instead when the differential would be larger than this
# share of the full package ("not much smaller").
DIFFERENTIAL_MAX_SHARE = 0.5


# Signatures (format 1.1): `signatures/<key id>.dsse.json`, outside the manifest's file list
# (they sign the manifest); nothing else may be unlisted. docs/package-format.md, "Signatures".
SIGNATURES_DIR = "signatures/"
SIGNATURE_SUFFIX = ".dsse.json"
SIGNATURE_NAME = re.compile(r"^signatures/[0-9a-f]{64}\.dsse\.json$")
SIGNATURES_SINCE = (1, 1)
SIGNATURE_MAX_BYTES = 64 * 1024
MAX_SIGNATURES = 8
MAX_ENTRIES_SIGNED = 64  # subjects of a signed statement: the manifest and its files
# Encryption (format 1.1): the whole package as an age file, `<package>.zip.age`.
ENCRYPTED_SUFFIX = ".age"
AGE_MAGIC = b"age-encryption.org/v1\n"
AGE_ARMOR = b"-----BEGIN AGE ENCRYPTED FILE-----"  # the same file in age's ASCII armor (age -a)

# Package entries that are a simulation folder's files as they are, byte for byte (export
# copies them in, import copies them out): entry name -> file in the folder.
FOLDER_FILES = {
    PATIENTS: layout.PATIENTS,
    VISITS: layout.VISITS,
    METADATA: layout.METADATA,
    PROTOCOL: layout.PROTOCOL,
    PARAMETERS: layout.PARAMETERS,
    SUMMARY: layout.SUMMARY,
}

SHA256_PATTERN = re.compile(r"^[0-9a-f]{64}$")
VERSION_PATTERN = re.compile(r"^([0-9]{1,4})\.([0-9]{1,4})$")  # ASCII digits only


def package_filename(sim_id: str, created_yyyymmdd: str) -> str:
    """`APE_simulation_<sim_id>_<YYYYMMDD>.zip`, with anything unsafe in the id replaced."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", sim_id)[:100] or "simulation"
    return f"APE_simulation_{safe}_{created_yyyymmdd}.zip"


def differential_filename(sim_id: str, created_yyyymmdd: str) -> str:
    """`APE_differential_<sim_id>_<YYYYMMDD>.zip`, named like a full package."""
    return package_filename(sim_id, created_yyyymmdd).replace(
        "APE_simulation_", "APE_differential_", 1
    )


def limit_hint(setting: str) -> str:
    """How to raise the limit that a workspace setting of this name holds, for messages."""
    flag = setting.replace("_", "-")
    return f" (limit {setting}: raise it with --{flag} or `ape workspace --set {setting}=...`)"


@dataclass(frozen=True)
class ReadLimits:
    """Limits enforced on what is actually read from an untrusted package."""

    max_total_bytes: int = 2 * 1024**3  # all entries, uncompressed
    max_entries: int = 64
    max_ratio: float = 200.0  # uncompressed / compressed, per entry
    max_text_bytes: int = 16 * 1024 * 1024  # each JSON/YAML/README/CSV file
    max_manifest_bytes: int = 1024 * 1024
    max_depth: int = 32  # JSON/YAML nesting
    max_rows: int = 500_000_000  # rows of one Parquet table
    # A Parquet file may decode to at most max_ratio times its size, or this much if more.
    min_parquet_budget: int = 64 * 1024 * 1024
    # Parquet structure, checked from the footer and page headers before anything is decoded.
    max_parquet_footer_bytes: int = 4 * 1024 * 1024
    max_row_groups: int = 1_000  # APE writes one per 1,048,576 rows: 500 at the row limit
    max_parquet_page_bytes: int = 64 * 1024 * 1024  # one page, uncompressed
    max_parquet_pages: int = 200_000  # in one file
    max_parquet_columns: int = 128  # APE's tables have at most 12; the earlier APE's about 20
    # A Parquet entry DEFLATEd inside the ZIP (writers store them) is inflated in memory.
    max_deflated_parquet_bytes: int = 256 * 1024 * 1024
    # The worker process that reads a package (package/isolation.py): the address space it
    # may add to what it starts with, and its CPU time.
    max_reader_memory: int = 8 * 1024**3
    max_reader_cpu_seconds: int = 600

    def text_limit(self, name: str) -> int:
        if name in (MANIFEST, RESULT_MANIFEST):
            return self.max_manifest_bytes
        if name == PREVIEW:
            return PREVIEW_MAX_BYTES
        if name == PROTOCOL:
            return MAX_PROTOCOL_BYTES
        if name.startswith(SIGNATURES_DIR):
            return SIGNATURE_MAX_BYTES
        return self.max_text_bytes


# -- batches (`.apebatch`): many packages in one file to send ---------------------------------
# A ZIP whose entries are all STORED: the packages under `packages/`, byte for byte, then
# `index.json` (each package's name, sim id, size and SHA-256), written last so that it sits
# next to the central directory. docs/package-format.md, "Batches", is the spec.
BATCH_FORMAT_NAME = "ape-simulation-batch"
BATCH_VERSION = "1.0"
BATCH_MAJOR = 1
BATCH_SUFFIX = ".apebatch"
BATCH_INDEX = "index.json"
BATCH_PACKAGES = "packages/"
BATCH_SIGNATURES = "signatures/"  # reserved for signatures over the canonical index
BATCH_MAX_MEMBERS = 10_000
BATCH_MAX_INDEX_BYTES = 16 * 1024 * 1024
BATCH_MEMBER_NAME = re.compile(r"^packages/[A-Za-z0-9_.-]{1,160}\.zip$")


def batch_filename(created_yyyymmdd: str, count: int) -> str:
    """`APE_batch_<YYYYMMDD>_<n>.apebatch`: the default name of a batch of `count` packages."""
    return f"APE_batch_{created_yyyymmdd}_{count}{BATCH_SUFFIX}"
