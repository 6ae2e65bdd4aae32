"""README.txt of a package: what it is, what each file holds, its data dictionary, every
summary statistic's definition, how to check and open it.

The dictionary comes from `results/dictionary.py` and the definitions from
`results/definitions.py` (docs/model.md shows the same text), so the README cannot drift
from the schema. A reader of format 1.1 makes the README again from the package and
compares (`consistency.readme`).
"""

from __future__ import annotations

import textwrap

from apesim.package import format as fmt
from apesim.package.datapackage import TABLES
from apesim.package.facts import PackageFacts
from apesim.results import definitions
from apesim.results.dictionary import Column, kind
from apesim.results.metadata import SimulationMetadata, iso_utc
from apesim.results.summary import format_value

_WIDTH = 92

# One line of Python that checks every file against the manifest.
_CHECK_ALL = (
    "    python3 -c \"import hashlib, json; m = json.load(open('manifest.json')); "
    "print([n for n, f in m['files'].items() if hashlib.sha256(open(n, 'rb').read())"
    ".hexdigest() != f['sha256']] or 'all files match')\""
)

_TEMPLATE = """\
APE simulation package
======================

This file is a simulation package written by APE, the AMD Protocol Explorer, a simulator of
anti-VEGF treatment protocols for neovascular age-related macular degeneration.

Simulation:    {name} ({sim_id})
Protocol:      {protocol_name}, version {protocol_version}
               fingerprint {fingerprint}
Population:    {patients:,} patients followed for {years:g} years, seed {seed}
Run:           {created} with engine {engine_version}
Packaged:      {packaged} by {created_by}, APE {ape_version}, package format {package_version}

Headline results: mean vision change {change_1y} letters at 1 year and {change_end} letters
at the end; {injections_1y} injections in year 1 on average.

What each file holds
--------------------
manifest.json          Package version, creator, and the size and SHA-256 of every other file
                       (with row counts and column types of the Parquet files).
data/patients.parquet  One row per patient: baseline age, sex, baseline and final vision
                       (ETDRS letters), injections, visits, discontinuation day and reason,
                       death day. Days count from the start of the simulation.
data/visits.parquet    One row per visit: patient id, day, visit number, disease state,
                       vision, whether an injection was given, next interval in days.
data/metadata.parquet  One row: simulation id, name, protocol, engine version, parameters,
                       creation time (UTC) and run time.
protocol.yaml          The protocol exactly as it was run.
parameters.json        Number of patients, years, seed and recruitment period.
summary_stats.json     Summary statistics, recomputed from the tables on import.
audit_log.json         The audit trail: one event per line, each carrying the SHA-256 of the
                       event before it, so that any change is detectable.
README.txt             This file.
results_preview.csv    The patients table as CSV (present only when under 10 MB).
datapackage.json       The tables as a Frictionless Data Package (v2): every column's type,
                       unit, allowed values and what an empty value means.
bagit.txt              With the next two, make the unzipped package a BagIt 1.0 bag: the
manifest-sha256.txt    tables are its payload; the SHA-256 of the tables, and of every
tagmanifest-sha256.txt other file but manifest.json, in the format of `sha256sum`.
ro-crate-metadata.json The package as an RO-Crate 1.1 (Process Run Crate profile): the run
                       and each import as actions, with their software, people and times.

Data dictionary
---------------
{dictionary}

Summary statistics (summary_stats.json)
---------------------------------------
{statistics}

Checking the files
------------------
manifest.json lists the SHA-256 of every other file. In the unzipped folder, on Linux
(coreutils; on macOS `shasum -a 256 -c`):
    sha256sum -c manifest-sha256.txt tagmanifest-sha256.txt
checks every file but manifest.json and tagmanifest-sha256.txt itself, whose checksum is
in manifest.json. Any BagIt tool (e.g. `bagit.py --validate .`) checks the folder as a
bag. To check every file against manifest.json (Python 3, nothing to install):
{check_all}

Opening the data
----------------
Python (pandas 2 or later, or pyarrow):
    import pandas as pd
    patients = pd.read_parquet("data/patients.parquet", dtype_backend="numpy_nullable")
    visits = pd.read_parquet("data/visits.parquet", dtype_backend="numpy_nullable")
  The days of discontinuation and death and the next interval are whole numbers that may
  be missing. Without dtype_backend pandas turns these columns into float64 (missing as
  NaN); "numpy_nullable" keeps them integers (Int32, Int16, missing as <NA>), and so does
  dtype_backend="pyarrow".
  pandas reads the categories (sex, reasons, states) as categoricals.
R (arrow):
    library(arrow)
    visits <- read_parquet("data/visits.parquet")
DuckDB:
    SELECT state, count(*) FROM 'data/visits.parquet' GROUP BY state;

Unzip the package first for R, DuckDB and the lines above: they read files, not members of
a ZIP. (The Parquet files are stored uncompressed inside the ZIP, since they are compressed
with zstd themselves, so pyarrow can also read them straight out of the archive.)

Importing into APE
------------------
    ape verify {filename}
    ape import {filename}
or, in the APE app: Protocol Manager > Manage > Import Simulation. APE checks every file
against the manifest before anything is written; the imported simulation is read-only.
"""


def _column(column: Column, arrow: dict[str, object]) -> str:
    """One column of the data dictionary: name, type, meaning, unit, values, nulls."""
    words = [column.description]
    if column.unit:
        words.append(f"Unit: {column.unit}.")
    if column.categories is not None:
        words.append(f"Values: {', '.join(column.categories)}.")
    if column.minimum is not None and column.maximum is not None:
        words.append(f"From {column.minimum} to {column.maximum}.")
    elif column.minimum is not None:
        words.append(f"At least {column.minimum}.")
    nullable = bool(arrow["nullable"]) and column.null_means
    words.append(f"Empty (null) when {column.null_means}." if nullable else "Never empty.")
    head = f"  {column.name} ({kind(str(arrow['type']))})"
    body = textwrap.fill(
        " ".join(words), _WIDTH, initial_indent="      ", subsequent_indent="      "
    )
    return f"{head}\n{body}"


def data_dictionary(facts: PackageFacts) -> str:
    """Every table and column, in words: the meaning from `results/dictionary.py`, the types
    as the manifest lists them."""
    parts = []
    for entry, table in TABLES.items():
        arrow = facts.columns(entry)
        parts.append(f"{entry}: {table.row}")
        parts.extend(_column(c, arrow[c.name]) for c in table.columns)
    return "\n".join(parts)


def render_readme(facts: PackageFacts) -> str:
    """README.txt's text. Its bytes are part of the package: the headline figures go through
    the summary's one formatter with one decimal and "n/a" when missing (the golden test
    holds them)."""
    meta, summary = facts.metadata, facts.summary
    return _TEMPLATE.format(
        name=meta.name,
        sim_id=meta.sim_id,
        protocol_name=meta.protocol_name,
        protocol_version=meta.protocol_version,
        fingerprint=meta.protocol_fingerprint,
        patients=meta.patients,
        years=meta.years,
        seed=meta.seed,
        created=iso_utc(meta.created_utc),
        engine_version=meta.engine_version,
        packaged=facts.created,
        created_by=facts.created_by,
        ape_version=facts.ape_version,
        package_version=fmt.PACKAGE_VERSION,
        change_1y=format_value(summary["vision_change"]["year1"]["mean"], "+1f", missing="n/a"),
        change_end=format_value(summary["vision_change"]["end"]["mean"], "+1f", missing="n/a"),
        injections_1y=format_value(summary["injections"]["year1_mean"], "1f", missing="n/a"),
        filename=facts.filename,
        dictionary=data_dictionary(facts),
        statistics=definitions.plain_text(_WIDTH),
        check_all=_CHECK_ALL,
    )


_DIFFERENTIAL_TEMPLATE = """\
APE differential simulation package
===================================

This file holds only what differs between a simulation and its base simulation, by
patient: it is written by APE, the AMD Protocol Explorer, and is opened by importing it into
an APE workspace that holds the base (or with the base's package file).

Simulation:    {name} ({sim_id})
Protocol:      {protocol_name}, version {protocol_version}
Population:    {patients:,} patients followed for {years:g} years, seed {seed}
Base:          simulation {base_sim_id}, package SHA-256 {base_package_sha256}
Differences:   {changed:,} patients changed, {added:,} added, {removed:,} removed
Packaged:      {packaged} by {created_by}, APE {ape_version}, package format {package_version}

What each file holds
--------------------
manifest.json            Package version, creator, the base (its package's and its tables'
                         SHA-256) and the result, and the size and SHA-256 of every file.
delta/patients.parquet   The changed and added patients' rows, with kept_visits: how many
                         of the base's visits of that patient begin this simulation's.
delta/visits.parquet     Those patients' visits after the kept ones.
result/manifest.json     The manifest of the full package: the SHA-256 of every file the
                         import rebuilds and checks.
data/metadata.parquet, protocol.yaml, parameters.json, summary_stats.json, audit_log.json
                         As in a full package.

Importing into APE
------------------
    ape import {{THIS FILE}}                       (the base is in the workspace)
    ape import {{THIS FILE}} --base BASE_PACKAGE.zip
APE rebuilds the full tables, checks them against result/manifest.json, and installs the
same simulation as the full package would.
"""


def render_differential_readme(
    meta: SimulationMetadata,
    *,
    base_sim_id: str,
    base_package_sha256: str,
    changed: int,
    added: int,
    removed: int,
    packaged: str,
    created_by: str,
    ape_version: str,
) -> str:
    """README.txt of a differential package: what it is, on which base, how to import it."""
    return _DIFFERENTIAL_TEMPLATE.format(
        name=meta.name,
        sim_id=meta.sim_id,
        protocol_name=meta.protocol_name,
        protocol_version=meta.protocol_version,
        patients=meta.patients,
        years=meta.years,
        seed=meta.seed,
        base_sim_id=base_sim_id,
        base_package_sha256=base_package_sha256,
        changed=changed,
        added=added,
        removed=removed,
        packaged=packaged,
        created_by=created_by,
        ape_version=ape_version,
        package_version=fmt.DIFFERENTIAL_VERSION,
    )
