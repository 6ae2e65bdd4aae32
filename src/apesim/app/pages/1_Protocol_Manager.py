"""Protocol Manager: the shipped and the user's protocols, adding one, and (under Manage)
importing a simulation package."""

from __future__ import annotations

import streamlit as st

from apesim import analysis, api
from apesim.app import common
from apesim.errors import ApeError, DuplicateImportError, PackageError, ProtocolError
from apesim.text import printable

VIEW_KEY = "pm_view"
MENU_KEY = "manage_menu_open"

ws = common.setup("Protocol Manager")
title, menu = st.columns([5, 1], vertical_alignment="bottom")
title.title("Protocol Manager")


def _toggle_menu() -> None:
    st.session_state[MENU_KEY] = not st.session_state.get(MENU_KEY, False)


def _show(view: str) -> None:
    """A Manage menu choice: switch the view and close the menu."""
    st.session_state[VIEW_KEY] = view
    st.session_state[MENU_KEY] = False


menu_open = st.session_state.get(MENU_KEY, False)
menu.button(
    "Manage",
    icon=":material/expand_less:" if menu_open else ":material/settings:",
    width="stretch",
    on_click=_toggle_menu,
    key="manage",
)
if menu_open:
    # The menu's choices open in the page's flow, under the title: they push the page down
    # and never cover the protocol table (a popover lay over its columns).
    choices = st.container(horizontal=True, horizontal_alignment="right", key="manage_choices")
    choices.button(
        "Import Simulation",
        icon=":material/move_to_inbox:",
        on_click=_show,
        args=("import",),
    )
    choices.button(
        "Protocols",
        icon=":material/description:",
        on_click=_show,
        args=("protocols",),
    )


def show_import() -> None:
    """Import Simulation: upload, preview every check, confirm, land on the overview."""
    st.header("Import Simulation")
    st.write(
        "Choose a simulation package (made with **Download Simulation Package** on the "
        "Analysis Overview). Nothing is imported until you confirm."
    )
    upload = common.one_file("Simulation package", "package_upload")
    if upload is None:
        _show_bulk_import()  # offered until one package is chosen for its preview
        return
    package = _opened(upload)
    if package is None:
        return
    cache = st.session_state.setdefault("package_reports", {})
    report = cache.get(upload.file_id)
    if report is None:
        with st.spinner("Checking the package…"):
            report = api.judge(
                api.inspect_with_base(package, ws=ws, source_name=upload.name),
                api.trust_list(ws),
            )
        cache.clear()
        cache[upload.file_id] = report

    if not report.ok and report.metadata is None:
        # Nothing is known about the file: the error says all there is (no empty tables).
        why = str(report.error) if report.error is not None else "it is not a package"
        st.error(
            f"This file cannot be imported. {common.literal(why)} Nothing was imported.",
            icon=":material/block:",
        )
        return
    existing = common.already_here(ws, report) if report.ok else None
    if report.ok and existing is None:
        st.success(
            f"{common.code(upload.name)} is a valid {common.literal(report.format)} "
            "simulation package.",
            icon=":material/check_circle:",
        )
    elif existing is not None:
        how = "imported" if existing.imported else "run here"
        st.warning(
            f"{common.code(upload.name)} is a valid {common.literal(report.format)} "
            f"simulation package, but it is already in this workspace: "
            f"**{common.literal(existing.name)}** ({common.code(existing.sim_id)}, {how}). "
            "Importing it again would add nothing.",
            icon=":material/content_copy:",
        )
    else:
        why = str(report.error) if report.error is not None else "it failed the checks below"
        st.error(f"This file cannot be imported. {common.literal(why)}", icon=":material/block:")

    blocked = _show_signature(report)

    facts, checks = st.columns([2, 3])
    with facts:
        st.subheader("What it is")
        st.table(common.package_facts(report))
    with checks:
        st.subheader("Validation checks")
        st.table(common.checks_frame(report))
    summary = api.validated_summary(report)  # recomputed from the tables, not the package's word
    if summary is not None:
        st.subheader("Summary statistics")
        st.table(common.literal_frame(analysis.summary_table(summary).set_index("statistic")))

    if not report.ok:
        st.write("Nothing was imported.")
        return
    parts = {
        "The whole simulation": None,
        "Summary only: metadata, statistics and audit trail, without the tables": "summary",
        "Protocol only: into my protocols": "protocol",
    }
    choice = st.radio("What to import", list(parts), key="import_only")
    only = parts[choice]
    if only == "protocol":
        if st.button("Import the protocol", type="primary", disabled=blocked):
            try:
                info = api.import_protocol(ws, package, source_name=upload.name)
            except PackageError as exc:
                st.error(f"Nothing was imported: {common.literal(exc)}")
            else:
                st.success(
                    f"Saved the protocol as {common.code(info.key)} "
                    f"({common.literal(info.name)}); run it from Run Simulation.",
                    icon=":material/check_circle:",
                )
        return
    if existing is not None and existing.summary_only and only is None:
        existing = None  # the full import replaces the summary
    if existing is None and st.button("Import this simulation", type="primary", disabled=blocked):
        try:
            with st.spinner("Importing…"):
                record = api.import_package(ws, package, source_name=upload.name, only=only)
        except DuplicateImportError as exc:  # imported meanwhile, in another session
            st.warning(common.literal(exc))
            existing = ws.get(exc.existing_sim_id) if ws.exists(exc.existing_sim_id) else None
        except PackageError as exc:
            st.error(f"Nothing was imported: {common.literal(exc)}")
        else:
            common.forget("package_upload")
            common.select(record.sim_id)
            st.session_state[VIEW_KEY] = "protocols"
            st.switch_page(common.OVERVIEW_PAGE)
    if existing is not None and st.button("Open the simulation already here", type="primary"):
        common.forget("package_upload")
        common.select(existing.sim_id)
        st.switch_page(common.OVERVIEW_PAGE)


def _show_bulk_import() -> None:
    """Several packages or batches at once: each validated and imported on its own, and a
    line for each (imported, duplicate, or failed with the reason)."""
    with st.expander("Import several packages or batches at once"):
        files = st.file_uploader(
            "Packages (.zip) and batches (.apebatch)",
            type=["zip", "apebatch"],
            accept_multiple_files=True,
            key="bulk_upload",
        )
        if files and st.button(f"Import {len(files)} file(s)", type="primary", key="bulk_import"):
            with st.spinner("Validating and importing each package…"):
                done = api.import_many(ws, [], uploads=[(f.name, f.getvalue()) for f in files])
            st.session_state["bulk_report"] = done
        report: api.BulkImport | None = st.session_state.get("bulk_report")
        if report is None:
            return
        summary = (
            f"{report.count('ok')} imported, {report.count('duplicate')} already here, "
            f"{report.count('failed')} failed"
        )
        (st.error if not report.ok else st.success)(summary)
        st.dataframe(common.bulk_frame(report), hide_index=True)


def _opened(upload: common.Upload) -> bytes | None:
    """The package's bytes: as uploaded, or an encrypted (age) upload decrypted with the
    passphrase or identity given here (in the workspace's staging area; nothing is kept)."""
    if not api.is_encrypted(upload.data):
        return upload.data
    opened = st.session_state.setdefault("decrypted_packages", {})
    if upload.file_id in opened:
        return bytes(opened[upload.file_id])
    st.info(
        "This package is encrypted (age). Give its passphrase, or paste the age identity it "
        "was encrypted for (`AGE-SECRET-KEY-1…`), to open it. It is decrypted in the "
        "workspace's staging area, and nothing is kept there.",
        icon=":material/lock:",
    )
    with st.form("decrypt_package"):
        passphrase = st.text_input("Passphrase", type="password")
        identity = st.text_area("or age identity", placeholder="AGE-SECRET-KEY-1…")
        submitted = st.form_submit_button("Open the package")
    if not submitted:
        return None
    try:
        with (
            st.spinner("Decrypting…"),
            api.opened_package(
                upload.data,
                ws,
                name=upload.name,
                passphrase=passphrase or None,
                identity_text=identity or None,
            ) as plain,
        ):
            opened.clear()
            opened[upload.file_id] = plain
    except ApeError as exc:
        st.error(f"The package was not opened: {common.literal(exc)}", icon=":material/block:")
        return None
    return bytes(opened[upload.file_id])


def _show_signature(report: api.PackageReport) -> bool:
    """The signature verdict, prominently; True when this workspace's policy refuses the
    package (unsigned, or signed by no trusted key, when a signature is required)."""
    verdict = report.verdict
    if verdict is None:
        return False
    if verdict.status == "trusted":
        names = ", ".join(sorted(verdict.trusted_names.values()))
        ids = ", ".join(
            s.key_id[:16] for s in verdict.signatures if s.key_id in verdict.trusted_names
        )
        st.success(
            f"Signed by **{common.literal(names)}**, trusted in this workspace (key "
            f"{common.code(ids)}): it is exactly what they signed.",
            icon=":material/verified:",
        )
    elif verdict.status == "unknown":
        first = verdict.signatures[0]
        st.warning(
            f"Signed, but by a key this workspace does not trust: it claims to be "
            f"**{common.literal(first.signer)}**, key {common.code(first.key_id)}. Check the "
            "key id with its owner, then trust it with "
            f"{common.code('ape keys trust ' + first.public_key + ' --name NAME')}.",
            icon=":material/gpp_maybe:",
        )
    else:
        st.info("Not signed: nothing shows who made this package.", icon=":material/info:")
    if verdict.status != "trusted" and api.signature_policy(ws).require_signature:
        st.error(
            "This workspace requires a trusted signature (`ape keys policy`): the package "
            "cannot be imported.",
            icon=":material/block:",
        )
        return True
    return False


def show_protocols() -> None:
    """The protocols, one of them as tables (and raw YAML), and adding a new one."""
    protocols = api.list_protocols(ws)
    st.dataframe(
        [
            {
                "name": printable(p.name),
                "version": printable(p.version),
                "regimen": p.regimen,
                "source": p.source,
                "key": printable(p.key),
            }
            for p in protocols
        ],
        hide_index=True,
    )
    names = {p.key: printable(f"{p.name} {p.version} ({p.source})") for p in protocols}
    key = st.selectbox(
        "View a protocol", list(names), format_func=names.__getitem__, key="view_protocol"
    )
    if key is not None:
        loaded = api.get_protocol(key, ws)
        if loaded.protocol.description:  # as written: a protocol may come from a package
            st.text(printable(loaded.protocol.description, newlines=True))
        tables = analysis.protocol_tables(loaded.protocol)
        items = list(tables.items())
        for row in range(0, len(items), 2):
            for column, (heading, table) in zip(st.columns(2), items[row : row + 2], strict=False):
                column.markdown(f"**{heading}**")
                column.table(common.literal_frame(table).style.format(common.plain_number))
        st.caption(f"Fingerprint (SHA-256 of the canonical protocol): `{loaded.fingerprint}`")
        if st.toggle("Show the raw YAML", key="show_yaml"):
            st.code(printable(loaded.text, newlines=True), language="yaml")

    st.header("Add a protocol")
    st.write("Upload a protocol YAML file: it is validated, then saved in your workspace.")
    upload = common.one_file("Protocol file", "protocol_upload", types=["yaml", "yml"])
    if upload is None:
        return
    try:
        text = upload.data.decode("utf-8")
        loaded = api.parse_protocol(text, upload.name)
    except UnicodeDecodeError:
        st.error(f"{common.code(upload.name)}: protocol file is not UTF-8 text")
        return
    except ProtocolError as exc:
        st.error(common.literal(exc))
        return
    st.success(
        f"{common.code(upload.name)} is valid: {common.literal(loaded.protocol.name)} "
        f"{common.literal(loaded.protocol.version)} ({loaded.protocol.regimen.type})."
    )
    if st.button("Add to my protocols", type="primary"):
        try:
            info = api.add_protocol(ws, text, upload.name)
        except ProtocolError as exc:
            st.error(common.literal(exc))
        else:
            common.forget("protocol_upload")
            st.session_state["protocol_added"] = common.added_protocol(info, upload.name)
            st.rerun()


added = st.session_state.pop("protocol_added", None)
if added:
    st.success(added)
if st.session_state.get(VIEW_KEY) == "import":
    show_import()
else:
    show_protocols()
