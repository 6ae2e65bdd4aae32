"""`ro-crate-metadata.json`: the package as an RO-Crate 1.1 conforming to the Process Run
Crate profile 0.5, for archives and tools that know research objects but not APE.

The run is a `CreateAction` (APE's engine the instrument, the protocol and parameters its
objects, the tables and statistics its results, its user the agent, with start and end
times); each import recorded in the audit trail is a further action. Made from the
package's facts alone, so the reader makes it again and compares (`consistency.ro_crate`).
Written by our own small generator rather than the `rocrate` library: the document is a
few dozen entities whose bytes must be reproducible, and the library (with its
dependencies) would be needed at run time by every export for that.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from apesim.audit import AuditEvent
from apesim.package import format as fmt
from apesim.package.facts import PackageFacts
from apesim.safeload import dump_json

CONTEXT = "https://w3id.org/ro/crate/1.1/context"
RO_CRATE = "https://w3id.org/ro/crate/1.1"
PROCESS_RUN_CRATE = "https://w3id.org/ro/wfrun/process/0.5"
IMPORTED = "imported"
RUN = "simulation_run"

# What each member of the package is, for people and for tools (media type, description).
MEMBERS: dict[str, tuple[str, str]] = {
    fmt.MANIFEST: (
        "application/json",
        "The table of contents: the size and SHA-256 of every other file.",
    ),
    fmt.PATIENTS: ("application/vnd.apache.parquet", "One row per patient."),
    fmt.VISITS: ("application/vnd.apache.parquet", "One row per visit."),
    fmt.METADATA: ("application/vnd.apache.parquet", "One row describing the simulation."),
    fmt.PROTOCOL: ("application/yaml", "The protocol exactly as it was run."),
    fmt.PARAMETERS: ("application/json", "Patients, years, seed and recruitment period."),
    fmt.SUMMARY: ("application/json", "Summary statistics (README.txt defines each)."),
    fmt.AUDIT: ("application/json", "The hash-chained audit trail."),
    fmt.README: ("text/plain", "What this is, the data dictionary, how to open and check it."),
    fmt.PREVIEW: ("text/csv", "The patients table as CSV, for spreadsheets."),
    fmt.DATAPACKAGE: (
        "application/json",
        "The tables as a Frictionless Data Package (v2): types, units, categories, nulls.",
    ),
    fmt.BAGIT: ("text/plain", "BagIt declaration: the unzipped package is a BagIt 1.0 bag."),
    fmt.BAG_MANIFEST: ("text/plain", "SHA-256 of the tables (BagIt payload manifest)."),
}
_OBJECTS = (fmt.PROTOCOL, fmt.PARAMETERS)
_RESULTS = (fmt.PATIENTS, fmt.VISITS, fmt.METADATA, fmt.SUMMARY)


def _ref(ids: list[str]) -> Any:
    """One reference, or a list of them (RO-Crate prefers a single value to a list of one)."""
    refs = [{"@id": i} for i in ids]
    return refs[0] if len(refs) == 1 else refs


def _time(moment: datetime) -> str:
    """ISO 8601 as the profile checks it: seconds, milliseconds if any, and +00:00."""
    moment = moment.astimezone(UTC)
    spec = "milliseconds" if moment.microsecond else "seconds"
    return moment.isoformat(timespec=spec)


def _event_time(event: AuditEvent) -> str | None:
    """An event's time for the profile, or None when it is not a time (a trail's time is
    checked to be text only)."""
    try:
        moment = datetime.fromisoformat(event.time.replace("Z", "+00:00"))
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return _time(moment)


class _People:
    """The agents of the trail, one entity per distinct user name, numbered in order."""

    def __init__(self) -> None:
        self.ids: dict[str, str] = {}

    def ref(self, user: str) -> dict[str, str]:
        if user not in self.ids:
            self.ids[user] = f"#person-{len(self.ids) + 1}"
        return {"@id": self.ids[user]}

    def entities(self) -> list[dict[str, Any]]:
        return [{"@id": i, "@type": "Person", "name": name} for name, i in self.ids.items()]


def _run_action(facts: PackageFacts, people: _People) -> dict[str, Any]:
    meta = facts.metadata
    runs = [e for e in facts.events if e.action == RUN]
    user = (runs or facts.events)[0].user if facts.events else facts.created_by
    start = meta.created_utc.replace(microsecond=0)  # as the registry keeps it
    end = start + timedelta(seconds=meta.runtime_seconds)
    return {
        "@id": "#run",
        "@type": "CreateAction",
        "name": f"Simulation run {meta.sim_id}",
        "description": (
            f"APE's engine {meta.engine_version} ran the protocol {meta.protocol_name} "
            f"{meta.protocol_version} (fingerprint {meta.protocol_fingerprint}) for "
            f"{meta.patients:,} patients over {meta.years:g} years with seed {meta.seed}."
        ),
        "instrument": {"@id": "#engine"},
        "object": _ref([f for f in _OBJECTS if f in facts.files]),
        "result": _ref([f for f in _RESULTS if f in facts.files]),
        "agent": people.ref(user),
        "startTime": _time(start),
        "endTime": _time(end),
        "actionStatus": "http://schema.org/CompletedActionStatus",
    }


def _import_actions(facts: PackageFacts, people: _People) -> list[dict[str, Any]]:
    actions = []
    for n, event in enumerate((e for e in facts.events if e.action == IMPORTED), 1):
        details = event.details
        words = [f"Imported into an APE workspace from {details.get('source_file', 'a package')}"]
        if isinstance(details.get("package_sha256"), str):
            words.append(f"(SHA-256 {details['package_sha256']})")
        if isinstance(details.get("package_format"), str):
            words.append(f"of format {details['package_format']}")
        note = details.get("note")
        description = " ".join(str(w) for w in words) + (f"; {note}." if note else ".")
        action = {
            "@id": f"#import-{n}",
            "@type": "CreateAction",
            "name": f"Import {n}",
            "description": description,
            "instrument": {"@id": "#importer"},
            "result": {"@id": "./"},
            "agent": people.ref(event.user),
            "actionStatus": "http://schema.org/CompletedActionStatus",
        }
        end = _event_time(event)
        if end is not None:
            action["endTime"] = end
        actions.append(action)
    return actions


def ro_crate(facts: PackageFacts) -> dict[str, Any]:
    """The crate's JSON-LD document."""
    meta = facts.metadata
    people = _People()
    run = _run_action(facts, people)
    imports = _import_actions(facts, people)
    author = people.ref(facts.created_by)
    members = [fmt.MANIFEST, *(f for f in fmt.ENTRY_ORDER if f in facts.files)]
    files = []
    for name in members:
        media, description = MEMBERS[name]
        entity: dict[str, Any] = {
            "@id": name,
            "@type": "File",
            "name": name,
            "description": description,
            "encodingFormat": media,
        }
        if name in facts.files:
            entity["contentSize"] = str(facts.files[name]["size"])
        files.append(entity)
    root = {
        "@id": "./",
        "@type": "Dataset",
        "name": f"APE simulation {meta.name} ({meta.sim_id})",
        "description": (
            f"A simulation of {meta.patients:,} virtual patients with neovascular AMD treated "
            f"under the anti-VEGF protocol {meta.protocol_name} {meta.protocol_version} for "
            f"{meta.years:g} years, packaged by APE, the AMD Protocol Explorer."
        ),
        "identifier": meta.sim_id,
        "datePublished": facts.created,
        "author": author,
        "license": {"@id": "#terms"},
        "conformsTo": {"@id": PROCESS_RUN_CRATE},
        "hasPart": _ref(members),
        "mentions": _ref([run["@id"], *(a["@id"] for a in imports)]),
    }
    graph: list[dict[str, Any]] = [
        {
            "@id": fmt.RO_CRATE,
            "@type": "CreativeWork",
            "about": {"@id": "./"},
            "conformsTo": [{"@id": RO_CRATE}, {"@id": PROCESS_RUN_CRATE}],
        },
        root,
        {
            "@id": PROCESS_RUN_CRATE,
            "@type": "CreativeWork",
            "name": "Process Run Crate",
            "version": "0.5",
        },
        {
            "@id": "#terms",
            "@type": "CreativeWork",
            "name": "Terms of use not stated",
            "description": (
                "APE records no licence for a simulation: ask the package's author "
                f"({facts.created_by}) before reusing it."
            ),
        },
        *files,
        {
            "@id": "#engine",
            "@type": "SoftwareApplication",
            "name": "APE simulation engine",
            "description": "The engine of APE, the AMD Protocol Explorer, that ran the run.",
            "softwareVersion": meta.engine_version,
        },
        {
            "@id": "#ape",
            "@type": "SoftwareApplication",
            "name": "APE, the AMD Protocol Explorer",
            "description": "The APE that wrote this package.",
            "softwareVersion": facts.ape_version,
        },
        *(
            [
                {
                    "@id": "#importer",
                    "@type": "SoftwareApplication",
                    "name": "APE, the AMD Protocol Explorer",
                    "description": "The APE of the workspace that imported the package "
                    "(its version is not recorded).",
                }
            ]
            if imports
            else []
        ),
        run,
        *imports,
        *people.entities(),
    ]
    return {"@context": CONTEXT, "@graph": graph}


def ro_crate_json(facts: PackageFacts) -> bytes:
    """`ro-crate-metadata.json`'s bytes: sorted keys, two-space indentation, final newline."""
    return dump_json(ro_crate(facts)).encode("utf-8")
