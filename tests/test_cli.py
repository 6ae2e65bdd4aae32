"""The `ape` command line: exit codes, one-line errors, and JSON output, through
`apesim.cli.main` in-process and through the installed `ape` script as a subprocess."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apesim import api
from apesim.cli import main
from apesim.protocol.loader import shipped_protocols

TE = "v1_aflibercept_treat_and_extend"
APE = Path(sys.executable).with_name("ape")


def ape(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run the CLI in-process: (exit code, stdout, stderr)."""
    with pytest.raises(SystemExit) as info:
        main(list(argv))
    captured = capsys.readouterr()
    code = info.value.code
    assert isinstance(code, int)
    return code, captured.out, captured.err


def ape_json(capsys: pytest.CaptureFixture[str], *argv: str) -> Any:
    code, out, err = ape(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def assert_usage_error(code: int, out: str, err: str) -> str:
    """Exit 2, nothing on stdout, exactly one line on stderr, no traceback."""
    assert code == 2
    assert out == ""
    assert err.endswith("\n") and err.count("\n") == 1, f"not one line: {err!r}"
    assert err.startswith("ape: error: ")
    assert "Traceback" not in err
    return err


def small_run(capsys: pytest.CaptureFixture[str], *extra: str) -> dict[str, Any]:
    shown: dict[str, Any] = ape_json(
        capsys, "run", "--protocol", TE, "--patients", "40", "--years", "1", "--seed", "5", *extra
    )
    return shown


# -- success ---------------------------------------------------------------------------


def test_run_prints_parseable_json(capsys: pytest.CaptureFixture[str]) -> None:
    shown = small_run(capsys, "--name", "first try")
    assert shown["simulation"]["name"] == "first try"
    assert shown["simulation"]["patients"] == 40
    assert shown["parameters"] == {
        "patients": 40,
        "years": 1.0,
        "seed": 5,
        "recruitment_months": 0.0,
    }
    assert shown["summary"]["patients"] == 40


def test_run_then_list_then_show(capsys: pytest.CaptureFixture[str]) -> None:
    shown = small_run(capsys)
    sim_id = shown["simulation"]["sim_id"]
    listed = ape_json(capsys, "list")
    assert [r["sim_id"] for r in listed] == [sim_id]
    assert listed[0] == shown["simulation"]
    assert ape_json(capsys, "show", sim_id) == shown
    assert ape_json(capsys, "show", shown["simulation"]["name"]) == shown


def test_same_seed_gives_the_same_summary(capsys: pytest.CaptureFixture[str]) -> None:
    first, second = small_run(capsys), small_run(capsys)
    assert first["simulation"]["sim_id"] != second["simulation"]["sim_id"]
    assert first["summary"] == second["summary"]


def test_human_output_of_run_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ape(capsys, "run", "-p", TE, "-n", "30", "-y", "1", "--name", "plain")
    assert code == 0
    assert "30 patients" in out and "Summary statistics" in out
    code, out, _ = ape(capsys, "show", "plain")
    assert code == 0 and "plain" in out


def test_list_of_an_empty_workspace(capsys: pytest.CaptureFixture[str]) -> None:
    assert ape_json(capsys, "list") == []


def test_workspace_option_overrides_the_environment(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = tmp_path / "other-ws"
    small_run(capsys, "--workspace", str(other))
    assert len(ape_json(capsys, "list", "--workspace", str(other))) == 1
    assert ape_json(capsys, "list") == []


def test_protocols_list_and_show(capsys: pytest.CaptureFixture[str]) -> None:
    listed = ape_json(capsys, "protocols", "list")
    assert {p["key"] for p in listed} >= set(shipped_protocols())
    shown = ape_json(capsys, "protocols", "show", TE)
    assert shown["fingerprint"] == next(p["fingerprint"] for p in listed if p["key"] == TE)
    code, out, _ = ape(capsys, "protocols", "show", TE)
    assert code == 0 and out == shipped_protocols()[TE]


def test_protocols_validate_a_valid_file(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "good.yaml"
    path.write_text(shipped_protocols()[TE], encoding="utf-8")
    [result] = ape_json(capsys, "protocols", "validate", str(path))
    assert result["valid"] is True and len(result["fingerprint"]) == 64


# -- invalid input: exit 2, one line, no traceback -------------------------------------


def test_unknown_protocol(capsys: pytest.CaptureFixture[str]) -> None:
    err = assert_usage_error(*ape(capsys, "run", "-p", "monthly_magic", "-n", "10", "-y", "1"))
    assert "monthly_magic: no such protocol" in err


def test_missing_protocol_file(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    missing = tmp_path / "gone.yaml"
    err = assert_usage_error(*ape(capsys, "run", "-p", str(missing), "-n", "10", "-y", "1"))
    assert "no such protocol file" in err


@pytest.mark.parametrize(
    ("option", "value", "field"),
    [
        ("--patients", "0", "patients"),
        ("--patients", "-5", "patients"),
        ("--years", "0", "years"),
        ("--years", "25", "years"),
        ("--seed", "-1", "seed"),
    ],
)
def test_out_of_range_parameter(
    capsys: pytest.CaptureFixture[str], option: str, value: str, field: str
) -> None:
    argv = {"--patients": "10", "--years": "1", "--seed": "1"} | {option: value}
    flat = [x for pair in argv.items() for x in pair]
    err = assert_usage_error(*ape(capsys, "run", "-p", TE, *flat))
    assert f"{field}: must be" in err


def test_nothing_is_stored_after_invalid_input(capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(*ape(capsys, "run", "-p", TE, "-n", "0", "-y", "1"))
    assert ape_json(capsys, "list") == []


@pytest.mark.parametrize("value", ["ten", "2.5", ""])
def test_non_integer_patients(capsys: pytest.CaptureFixture[str], value: str) -> None:
    err = assert_usage_error(*ape(capsys, "run", "-p", TE, "-n", value, "-y", "1"))
    assert "--patients" in err


def test_missing_option(capsys: pytest.CaptureFixture[str]) -> None:
    err = assert_usage_error(*ape(capsys, "run", "-p", TE, "-y", "1"))
    assert "Missing option '--patients'" in err


def test_unknown_option(capsys: pytest.CaptureFixture[str]) -> None:
    assert_usage_error(*ape(capsys, "list", "--colour"))


def test_unknown_simulation_id(capsys: pytest.CaptureFixture[str]) -> None:
    err = assert_usage_error(*ape(capsys, "show", "sim-19990101-000000-abcdef"))
    assert "sim-19990101-000000-abcdef: no such simulation" in err


def test_ambiguous_simulation_prefix(capsys: pytest.CaptureFixture[str]) -> None:
    small_run(capsys)
    small_run(capsys)
    err = assert_usage_error(*ape(capsys, "show", "sim-"))
    assert "matches 2 simulations" in err


def invalid_protocol(folder: Path) -> Path:
    path = folder / "bad.yaml"
    text = shipped_protocols()[TE].replace("STABLE: 0.83", "STABLE: 0.84")
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_a_missing_protocol_file(capsys: pytest.CaptureFixture[str]) -> None:
    err = assert_usage_error(*ape(capsys, "protocols", "validate", "missing.yaml"))
    assert "missing.yaml: no such protocol file" in err


def test_validate_an_invalid_protocol_file(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    invalid_protocol(tmp_path)
    err = assert_usage_error(*ape(capsys, "protocols", "validate", "bad.yaml"))
    assert "bad.yaml: disease_transitions.STABLE: " in err


def test_validate_reports_invalid_file_in_json(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = invalid_protocol(tmp_path)
    code, out, _ = ape(capsys, "protocols", "validate", str(path), "--json")
    assert code == 2
    [result] = json.loads(out)
    assert result["valid"] is False
    assert result["error"].startswith(f"{path}: disease_transitions.STABLE: ")


def test_damaged_workspace_is_reported_in_one_line_without_traceback(
    capsys: pytest.CaptureFixture[str],
) -> None:
    shown = small_run(capsys)
    root = Path(os.environ["APE_WORKSPACE"])
    for summary in (root / "sims").glob("*/summary_stats.json"):
        summary.unlink()
    code, out, err = ape(capsys, "show", shown["simulation"]["sim_id"], "--json")
    assert code != 0 and out == ""
    assert err.count("\n") == 1 and "Traceback" not in err


# -- the installed script, as a whole process ------------------------------------------


def run_ape(tmp_path: Path, *argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "APE_WORKSPACE": str(tmp_path / "proc-ws")}
    return subprocess.run(
        [str(APE), *argv], capture_output=True, text=True, env=env, timeout=120, check=False
    )


def test_script_run_list_show(tmp_path: Path) -> None:
    ran = run_ape(tmp_path, "run", "-p", TE, "-n", "100", "-y", "2", "-s", "9", "--json")
    assert ran.returncode == 0, ran.stderr
    shown = json.loads(ran.stdout)
    sim_id = shown["simulation"]["sim_id"]
    listed = run_ape(tmp_path, "list", "--json")
    assert listed.returncode == 0
    assert [r["sim_id"] for r in json.loads(listed.stdout)] == [sim_id]
    again = run_ape(tmp_path, "show", sim_id, "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout) == shown


def assert_script_usage_error(done: subprocess.CompletedProcess[str]) -> None:
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("ape: error: "), done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize(
    "argv",
    [
        ["run", "-p", "monthly_magic", "-n", "10", "-y", "1"],
        ["run", "-p", TE, "-n", "0", "-y", "1"],
        ["run", "-p", TE, "-n", "many", "-y", "1"],
        ["run", "-p", TE, "-y", "1"],
        ["show", "no-such-simulation"],
    ],
    ids=[
        "unknown protocol",
        "zero patients",
        "non-integer patients",
        "missing option",
        "unknown id",
    ],
)
def test_script_invalid_input_exits_2_with_one_line(tmp_path: Path, argv: list[str]) -> None:
    assert_script_usage_error(run_ape(tmp_path, *argv))


def test_script_validate_invalid_protocol_exits_2_with_one_line(tmp_path: Path) -> None:
    assert_script_usage_error(
        run_ape(tmp_path, "protocols", "validate", str(invalid_protocol(tmp_path)))
    )


def test_names_are_printed_literally(capsys: pytest.CaptureFixture[str]) -> None:
    shown = small_run(capsys, "--name", "[/] trial [b]")
    code, out, err = ape(capsys, "list")
    assert (code, err) == (0, "")
    assert "[/] trial [b]" in out
    code, out, _ = ape(capsys, "show", shown["simulation"]["sim_id"])
    assert code == 0 and "[/] trial [b]" in out


def test_run_where_nobody_is_ever_injected(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    # No loading and a poor-vision rule that always fires: every patient stops at visit 0,
    # which is not injected, so the run has no injection and no treatment interval.
    text = shipped_protocols()["v1_prn_monthly"]
    for old, new in [
        ("loading_doses: 3", "loading_doses: 0"),
        ("threshold_letters: 20, probability: 0.5", "threshold_letters: 100, probability: 1.0"),
    ]:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = tmp_path / "stop_at_once.yaml"
    path.write_text(text, encoding="utf-8")
    shown = ape_json(capsys, "run", "-p", str(path), "-n", "5", "-y", "1")
    summary = shown["summary"]
    assert summary["injections"]["total"] == 0
    assert summary["mean_treatment_interval_days"] is None
    assert summary["discontinuation"]["by_reason"]["poor_vision"] == 5


@pytest.mark.parametrize(
    "name",
    [
        "evil\tname",
        "two\nlines",
        "carriage\rreturn",
        "\x1b[31mred",
        "nul\x00",
        "c1\x9b31m",
        "txt\u202eexe",
        "line\u2028separator",
    ],
)
def test_run_refuses_a_name_with_control_characters(
    capsys: pytest.CaptureFixture[str], name: str
) -> None:
    # A package holding such a name cannot be imported, so the run must not create it.
    err = assert_usage_error(*ape(capsys, "run", "-p", TE, "-n", "5", "-y", "1", "--name", name))
    assert "name: must be 1 to 100 printable characters" in err
    assert ape_json(capsys, "list") == []


def test_rerun_reproduces_identical_tables(capsys: pytest.CaptureFixture[str]) -> None:
    shown = small_run(capsys)
    code, out, err = ape(capsys, "rerun", shown["simulation"]["sim_id"], "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["identical"] is True
    assert result["simulation"]["sim_id"] != shown["simulation"]["sim_id"]


# -- text from a package is printed escaped ----------------------------------------------

# What a workspace may hold from before import refused such text (an import by an earlier
# APE, or through the earlier-APE road): written into its registry directly.
HOSTILE = {
    "name": "evil\x1b[2J\x1b[31mname\nape: error: forged",
    "protocol_name": "proto\x9b31m\u202eexe.txt",
    "protocol_version": "1.0\u2028b",
    "engine_version": "eng\x1b]0;owned\x07",
    "created_by": "user\u2066@x\u2069\r",
}
RAW = ("\x1b", "\x9b", "\u202e", "\u2028", "\u2066", "\x07", "\r", "\nape: error: forged")


def hostile_workspace(capsys: pytest.CaptureFixture[str]) -> str:
    """A workspace (APE_WORKSPACE) holding one simulation whose text fields are hostile."""
    import sqlite3

    sim_id: str = small_run(capsys)["simulation"]["sim_id"]
    db = sqlite3.connect(Path(os.environ["APE_WORKSPACE"]) / "registry.sqlite")
    with db:
        db.execute(
            "UPDATE simulations SET name = ?, protocol_name = ?, protocol_version = ?, "
            "engine_version = ?, created_by = ? WHERE sim_id = ?",
            (*HOSTILE.values(), sim_id),
        )
    db.close()
    return sim_id


def assert_no_raw_text(output: str) -> None:
    for raw in RAW:
        assert raw not in output, f"{raw!r} printed raw"


def test_list_and_show_print_package_text_escaped(capsys: pytest.CaptureFixture[str]) -> None:
    sim_id = hostile_workspace(capsys)
    for argv in (("list",), ("show", sim_id)):
        code, out, err = ape(capsys, *argv)
        assert code == 0, err
        assert_no_raw_text(out)
        assert "evil\\x1b[2J\\x1b[31mname\\nape" in out  # shown, visibly escaped
        assert "proto\\x9b31m\\u202eexe.txt" in out
    code, out, _ = ape(capsys, "show", sim_id)
    assert "eng\\x1b]0;owned\\x07" in out and "user\\u2066@x\\u2069\\r" in out


def test_json_output_escapes_package_text_and_keeps_its_value(
    capsys: pytest.CaptureFixture[str],
) -> None:
    sim_id = hostile_workspace(capsys)
    for argv in (("list", "--json"), ("show", sim_id, "--json")):
        code, out, err = ape(capsys, *argv)
        assert code == 0, err
        assert_no_raw_text(out)
        shown = json.loads(out)
        record = shown[0] if isinstance(shown, list) else shown["simulation"]
        assert {key: record[key] for key in HOSTILE} == HOSTILE


def test_an_error_quoting_hostile_text_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    err = assert_usage_error(*ape(capsys, "show", "no\x1b[2Jsuch\nsimulation\u202e"))
    assert_no_raw_text(err)
    assert "no\\x1b[2Jsuch\\nsimulation\\u202e" in err


def test_protocols_show_escapes_on_a_terminal_and_keeps_the_bytes_in_a_pipe(
    tmp_path: Path,
) -> None:
    """A workspace protocol (one added from a package, say) whose YAML holds a right-to-left
    override: escaped on a terminal, byte for byte into a pipe (`> file.yaml`)."""
    import pty

    text = shipped_protocols()[TE].replace(
        "description: >", "description: >\n  txt\u202eexe.yaml and\u2066next", 1
    )
    folder = tmp_path / "proc-ws" / "protocols"
    folder.mkdir(parents=True)
    (folder / "theirs.yaml").write_text(text, encoding="utf-8")
    piped = run_ape(tmp_path, "protocols", "show", "theirs", "-w", str(tmp_path / "proc-ws"))
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout == text

    leader, follower = pty.openpty()
    env = {**os.environ, "APE_WORKSPACE": str(tmp_path / "proc-ws")}
    done = subprocess.run(
        [str(APE), "protocols", "show", "theirs"],
        stdout=follower,
        stderr=subprocess.PIPE,
        env=env,
        timeout=120,
        check=False,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            chunk = os.read(leader, 65536)
        except OSError:  # the terminal closed: everything is read
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(leader)
    shown = b"".join(chunks).decode("utf-8")
    assert done.returncode == 0, done.stderr
    assert "\u202e" not in shown and "\u2066" not in shown
    assert "txt\\u202eexe.yaml and\\u2066next" in shown


# -- the summary as people read it, and a quick start (issue 8) ------------------------------


def test_the_summary_reads_like_the_app(capsys: pytest.CaptureFixture[str]) -> None:
    shown = small_run(capsys, "--name", "readable")
    summary = shown["summary"]
    code, out, _ = ape(capsys, "show", "readable")
    assert code == 0
    cells = [line.split("│")[1:3] for line in out.splitlines() if line.count("│") == 3]
    rows = {label.strip(): value.strip() for label, value in cells}
    change = summary["vision_change"]["end"]
    assert rows["Vision change at end"] == f"{change['mean']:+.1f} letters"
    assert rows["Gaining ≥15 letters at end"] == f"{100 * change['gain_15_share']:.1f} %"
    assert rows["Discontinued"] == f"{100 * summary['discontinuation']['rate']:.1f} %"
    assert rows["Patients"] == "40"


# What `ape --help` and `ape list` must not load: each costs tenths of a second of CPU.
HEAVY = ("numpy", "pyarrow", "pandas", "apesim.package", "apesim.engine", "apesim.protocol")

_LOADED = """
import sys
from apesim.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(" ".join(sorted(sys.modules)), file=sys.stderr)
"""


def loaded_by(argv: list[str], env: dict[str, str]) -> list[str]:
    """The modules a fresh process has loaded once `ape ARGV` is done."""
    done = subprocess.run(
        [sys.executable, "-c", _LOADED, *argv],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=True,
    )
    return done.stderr.splitlines()[-1].split()


@pytest.mark.parametrize(
    "argv", [["--help"], ["list"], ["list", "--json"], ["export", "--help"], ["sweep", "--help"]]
)
def test_help_and_list_load_no_heavy_module(tmp_path: Path, argv: list[str]) -> None:
    loaded = loaded_by(argv, {**os.environ, "APE_WORKSPACE": str(tmp_path / "ws")})
    assert "apesim.cli" in loaded
    heavy = [m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY)]
    assert heavy == []
    # Typer checks a value with pydantic only once one is given (apesim.cli.coercion).
    assert "pydantic" not in loaded


# The CLI's own modules that `ape` loads for anything; a command adds the module it lives in
# and `resolve` (what its options become).
CLI_CORE = {
    f"apesim.cli{m}"
    for m in ("", ".root", ".commands", ".lazy", ".coercion", ".options", ".output")
}


def test_a_command_loads_its_own_module_alone(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sim_id = small_run(capsys)["simulation"]["sim_id"]
    loaded = loaded_by(["export", sim_id, "-o", f"{tmp_path}/"], dict(os.environ))
    assert len(list(tmp_path.glob("APE_simulation_*.zip"))) == 1
    own = {"apesim.cli.exports", "apesim.cli.resolve"}
    assert {m for m in loaded if m.startswith("apesim.cli")} == CLI_CORE | own
    # Libraries load where they are used: an export reads no YAML, runs no engine, signs
    # nothing, and shows no progress bar when stderr is no terminal.
    # Its lines go to a pipe here, written without Rich (Rich only for a terminal).
    unused = ("yaml", "rich", "apesim.engine", "apesim.protocol", "cryptography")
    assert [m for m in loaded if m.startswith(unused)] == []
    # `ape --help` lists every command from its one-line help, and loads none.
    listed = loaded_by(["--help"], dict(os.environ))
    assert {m for m in listed if m.startswith("apesim.cli")} == CLI_CORE


def test_the_listed_help_of_each_command_is_its_own() -> None:
    import inspect

    import typer

    from apesim.cli import app
    from apesim.cli.commands import COMMANDS

    group = typer.main.get_command(app)
    for name, where in COMMANDS.items():
        command = group.commands[name]  # built from its module
        assert command.name == name
        own = inspect.cleandoc(command.help or "").split("\n\n")[0].strip()
        assert where.summary == own, name
    assert list(group.commands) == list(COMMANDS)


def test_a_run_does_load_the_engine(tmp_path: Path) -> None:
    # The other side of the test above: the check sees a heavy module when one is loaded.
    env = {**os.environ, "APE_WORKSPACE": str(tmp_path / "ws")}
    loaded = loaded_by(["run", "-p", TE, "-n", "10", "-y", "1", "--json"], env)
    assert {"numpy", "pyarrow", "apesim.engine.simulate"} <= set(loaded)
    # Its Arrow arrays are built from numpy buffers: pa.array would import pandas (0.3 s).
    assert "pandas" not in loaded


def test_an_abort_exits_130_with_one_line(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import typer

    from apesim import api

    def abort(*_: object, **__: object) -> None:
        raise typer.Abort()

    monkeypatch.setattr(api, "list_protocols", abort)
    code, out, err = ape(capsys, "protocols", "list")
    assert (code, out, err) == (130, "", "ape: aborted\n")


def test_an_unexpected_exception_is_an_internal_error(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from apesim import api

    def broken(*_: object, **__: object) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(api, "list_protocols", broken)
    monkeypatch.delenv("APE_DEBUG", raising=False)
    code, out, err = ape(capsys, "protocols", "list")
    assert (code, out) == (1, "")
    assert err.startswith("ape: internal error: RuntimeError: boom") and err.count("\n") == 1


# -- issue 9: everyday use ---------------------------------------------------------------------


def test_two_runs_of_one_name_show_lists_the_candidates(
    capsys: pytest.CaptureFixture[str],
) -> None:
    first = small_run(capsys, "--name", "baseline")["simulation"]
    second = small_run(capsys, "--name", "baseline")["simulation"]
    err = assert_usage_error(*ape(capsys, "show", "baseline"))
    assert "baseline: matches 2 simulations: " in err
    listed = [r["sim_id"] for r in ape_json(capsys, "list")]  # oldest first, as `ape list`
    assert sorted([first["sim_id"], second["sim_id"]], key=err.index) == listed
    assert f"({'baseline'!r}, {first['created_utc']})" in err
    assert "give one of the ids" in err
    # Each candidate is then shown by its id.
    assert ape_json(capsys, "show", second["sim_id"])["simulation"] == second


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from apesim import __version__

    for flag in ("--version", "-V"):
        assert ape(capsys, flag) == (0, f"ape {__version__}\n", "")


def command_paths() -> list[list[str]]:
    """Every command and group of `ape`, as the words that name it."""
    import typer

    from apesim.cli import app

    found: list[list[str]] = []

    def walk(command: Any, path: list[str]) -> None:
        found.append(path)
        for name, sub in getattr(command, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])
    return found


def test_every_command_has_examples_and_no_bool_placeholder(
    capsys: pytest.CaptureFixture[str],
) -> None:
    paths = command_paths()
    for new in (["workspace"], ["protocols", "add"], ["app"], ["audit"], ["compare"]):
        assert new in paths
    for path in paths:
        code, out, err = ape(capsys, *path, "--help")
        assert code == 0, err
        assert "<bool>" not in out, path
        examples = out.split("Examples:")[1].splitlines() if "Examples:" in out else []
        lines = [line.strip() for line in examples if line.strip()]
        assert lines, f"ape {' '.join(path)} --help shows no examples"
        assert all(line.startswith("ape ") for line in lines), (path, lines)
        assert any(line.startswith(" ".join(["ape", *path])) for line in lines), (path, lines)


def test_shell_completion_is_offered(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = ape(capsys, "--help")
    assert code == 0 and "--install-completion" in out and "--show-completion" in out


def test_workspace_says_where_it_is_and_why(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    env_root = Path(os.environ["APE_WORKSPACE"])
    info = ape_json(capsys, "workspace")
    assert info == {
        "path": str(env_root),
        "source": "APE_WORKSPACE",
        "exists": False,
        "simulations": 0,
        "imported": 0,
        "protocols": 0,
        "size_bytes": 0,
        "settings": api.WorkspaceSettings().to_json(),
        "retention": api.WorkspaceInfo(api.workspace_location(), False, 0, 0, 0, 0).retention,
    }
    assert not env_root.exists()  # showing it creates nothing
    small_run(capsys)
    info = ape_json(capsys, "workspace")
    assert (info["exists"], info["simulations"]) == (True, 1)
    on_disk = sum(f.stat().st_size for f in env_root.rglob("*") if f.is_file())
    assert info["size_bytes"] == on_disk > 0

    flagged = ape_json(capsys, "workspace", "-w", str(tmp_path / "typo"))
    assert (flagged["source"], flagged["exists"]) == ("--workspace", False)
    assert flagged["path"] == str(tmp_path / "typo")

    monkeypatch.delenv("APE_WORKSPACE")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    default = ape_json(capsys, "workspace")
    assert default["source"] == "default"
    assert default["path"].startswith(str(tmp_path / "data"))

    monkeypatch.setenv("APE_WORKSPACE", str(env_root))
    code, out, _ = ape(capsys, "workspace")
    assert code == 0 and str(env_root) in out and "APE_WORKSPACE" in out and "1" in out


def test_list_of_an_empty_workspace_names_it_on_stderr_and_creates_nothing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    typo = tmp_path / "wrokspace"
    for argv in (["list", "-w", str(typo)], ["list", "-w", str(typo), "--json"]):
        code, out, err = ape(capsys, *argv)
        assert code == 0
        assert out == ("[]\n" if "--json" in argv else "")
        assert err.count("\n") == 1
        assert f"workspace {typo} (from --workspace) does not exist yet" in err
    assert not typo.exists()
    root = tmp_path / "empty"
    small_run(capsys, "-w", str(root))
    from apesim.workspace import Workspace

    for record in ape_json(capsys, "list", "-w", str(root)):
        Workspace(root).delete(record["sim_id"])
    code, out, err = ape(capsys, "list", "-w", str(root))
    assert (code, out) == (0, "")
    assert f"workspace {root} (from --workspace) has no simulations" in err


# -- protocols (issue 9) ------------------------------------------------------------------------


def two_problem_protocol(folder: Path) -> Path:
    """A protocol with two problems: two standard deviations that must be positive."""
    text = shipped_protocols()["v1_prn_monthly"]
    for old, new in [
        (
            "NAIVE:         {treated: {mean: 5.5, sd: 3.0}",
            "NAIVE:         {treated: {mean: 5.5, sd: -3.0}",
        ),
        (
            "ACTIVE:        {treated: {mean: -0.5, sd: 3.0}",
            "ACTIVE:        {treated: {mean: -0.5, sd: 0}",
        ),
    ]:
        assert text.count(old) == 1
        text = text.replace(old, new)
    path = folder / "two_problems.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_validate_lists_every_problem_one_per_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = two_problem_protocol(tmp_path)
    code, out, err = ape(capsys, "protocols", "validate", str(path))
    assert (code, out) == (2, "")
    assert err.splitlines() == [
        f"ape: error: {path}: vision.NAIVE.treated.sd: input should be greater than 0",
        f"ape: error: {path}: vision.ACTIVE.treated.sd: input should be greater than 0",
    ]
    code, out, _ = ape(capsys, "protocols", "validate", str(path), "--json")
    [result] = json.loads(out)
    assert code == 2 and result["problems"] == [
        line.removeprefix("ape: error: ") for line in err.splitlines()
    ]
    assert result["error"] == f"{result['problems'][0]} (and 1 more problem)"


def test_protocols_add_copies_a_validated_protocol_into_the_library(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mine = tmp_path / "my protocol.yaml"
    mine.write_text(
        shipped_protocols()[TE].replace('version: "1.0"', 'version: "1.1"'), encoding="utf-8"
    )
    code, out, err = ape(capsys, "protocols", "add", str(mine))
    assert code == 0, err
    assert "saved as protocol my_protocol" in out
    listed = ape_json(capsys, "protocols", "list")
    assert [p["key"] for p in listed if p["source"] == "workspace"] == ["my_protocol"]
    folder = Path(os.environ["APE_WORKSPACE"]) / "protocols"
    assert (folder / "my_protocol.yaml").read_text(encoding="utf-8") == mine.read_text(
        encoding="utf-8"
    )
    shown = ape_json(capsys, "run", "-p", "my_protocol", "-n", "10", "-y", "1")
    assert shown["simulation"]["protocol_version"] == "1.1"
    # Added again: found, not copied; an invalid file among others: none is added.
    [again] = ape_json(capsys, "protocols", "add", str(mine))
    assert again["key"] == "my_protocol"
    other = tmp_path / "other.yaml"
    other.write_text(shipped_protocols()["v1_prn_monthly"], encoding="utf-8")
    bad = two_problem_protocol(tmp_path)
    code, out, err = ape(capsys, "protocols", "add", str(other), str(bad))
    assert (code, out) == (2, "") and len(err.splitlines()) == 2
    assert sorted(p.name for p in folder.iterdir()) == ["my_protocol.yaml"]


def test_an_invalid_library_protocol_is_named_with_its_problem(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    small_run(capsys)  # the workspace exists
    folder = Path(os.environ["APE_WORKSPACE"]) / "protocols"
    broken = two_problem_protocol(folder)
    for argv in (["protocols", "list"], ["protocols", "list", "--json"]):
        code, out, err = ape(capsys, *argv)
        assert code == 0 and "two_problems" not in out
        assert err == (
            f"ape: warning: left out, invalid: {broken}: vision.NAIVE.treated.sd: input should "
            "be greater than 0 (and 1 more problem)\n"
        )


def test_a_wrong_protocol_name_lists_workspace_keys_and_suggests_one(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    mine = tmp_path / "tae_slow.yaml"
    mine.write_text(shipped_protocols()[TE], encoding="utf-8")
    assert ape(capsys, "protocols", "add", str(mine))[0] == 0
    err = assert_usage_error(*ape(capsys, "run", "-p", "tae_slwo", "-n", "10", "-y", "1"))
    assert "tae_slwo: no such protocol; did you mean 'tae_slow'?" in err
    assert "in the workspace: tae_slow;" in err and "v1_prn_monthly" in err
    err = assert_usage_error(*ape(capsys, "protocols", "show", "prn_montly"))
    assert "did you mean 'prn_monthly'?" in err


def test_protocols_show_names_the_fields_that_fall_back_to_a_default(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    text = shipped_protocols()["v1_prn_monthly"]
    kept = [line for line in text.splitlines(keepends=True) if "female_share" not in line]
    path = tmp_path / "partial.yaml"
    path.write_text("".join(kept), encoding="utf-8")
    code, out, err = ape(capsys, "protocols", "show", str(path))
    assert code == 0 and out == "".join(kept)  # the file's text, as it is
    assert err == "ape: defaulted: baseline.female_share = 0.6 (not in the file)\n"
    shown = ape_json(capsys, "protocols", "show", str(path))
    assert shown["defaulted"] == {"baseline.female_share": 0.6}
    assert ape_json(capsys, "protocols", "show", "v1_prn_monthly")["defaulted"] == {}


# -- verify --json, audit, compare (issue 9) -----------------------------------------------------


def test_audit_shows_the_trail_and_its_chain_check(capsys: pytest.CaptureFixture[str]) -> None:
    from apesim import audit

    sim_id = small_run(capsys, "--name", "audited")["simulation"]["sim_id"]
    trail = ape_json(capsys, "audit", "audited")
    events = trail["events"]
    assert trail["sim_id"] == sim_id
    assert [e["action"] for e in events] == ["protocol_loaded", "simulation_run"]
    assert trail["chain"] == {"intact": True, "events": 2, "head": events[-1]["sha256"]}
    rebuilt = [audit.AuditEvent(**{k: e[k] for k in audit.EVENT_KEYS}) for e in events]
    assert [e.sha256 for e in rebuilt] == [e["sha256"] for e in events]
    assert audit.verify_chain(rebuilt) is None
    code, out, err = ape(capsys, "audit", sim_id)
    assert code == 0, err
    assert "simulation_run" in out and "chain intact: 2 events" in out
    assert events[-1]["sha256"] in out

    # An edit outside APE fails the check: exit 2, one line.
    root = Path(os.environ["APE_WORKSPACE"])
    [path] = (root / "sims").glob("*/audit_log.json")
    assert path.read_bytes().count(b"tester@example.org") == 2
    path.write_bytes(path.read_bytes().replace(b"tester@example.org", b"mallory@example.org"))
    err = assert_usage_error(*ape(capsys, "audit", sim_id))
    assert "audit trail" in err and "altered outside APE" in err


def test_compare_prints_the_compare_pages_table_and_says_if_it_is_paired(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from apesim import analysis, api

    a = small_run(capsys, "--name", "tae")["simulation"]
    b = ape_json(
        capsys, "run", "-p", "v1_prn_monthly", "-n", "40", "-y", "1", "--seed", "5", "--name", "prn"
    )["simulation"]
    shown = ape_json(capsys, "compare", "tae", b["sim_id"])
    assert [s["sim_id"] for s in shown["simulations"]] == [a["sim_id"], b["sim_id"]]
    assert shown["paired"] is True
    ws = api.Workspace(Path(os.environ["APE_WORKSPACE"]))
    summaries = [api.load_simulation(ws, s).summary for s in (a["sim_id"], b["sim_id"])]
    page = analysis.comparison_table(list(zip(["A", "B"], summaries, strict=True)))
    rows = {r["statistic"]: r["values"] for r in shown["rows"]}
    for statistic, values in page.iterrows():
        assert rows[statistic] == list(values), statistic
    assert rows["Seed"] == ["5", "5"] and rows["Origin"] == ["run here", "run here"]
    code, out, err = ape(capsys, "compare", "tae", "prn")
    assert code == 0, err
    assert "Paired design: every run has seed 5" in out and "Vision change at end" in out

    ape_json(capsys, "run", "-p", TE, "-n", "40", "-y", "1", "--seed", "6", "--name", "seed6")
    assert ape_json(capsys, "compare", "tae", "seed6")["paired"] is False
    code, out, _ = ape(capsys, "compare", "tae", "seed6")
    assert "Independent samples: the seeds differ (5, 6)" in out

    err = assert_usage_error(*ape(capsys, "compare", "tae"))
    assert "two or more simulations" in err
    err = assert_usage_error(*ape(capsys, "compare", "tae", a["sim_id"]))
    assert "are the same simulation" in err


@pytest.mark.parametrize(
    "argv",
    [["show", "x"], ["rerun", "x"], ["export", "x"], ["audit", "x"], ["compare", "x", "y"]],
)
def test_a_mistyped_workspace_is_named_not_created(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str]
) -> None:
    typo = tmp_path / "wrokspace"
    err = assert_usage_error(*ape(capsys, *argv, "-w", str(typo)))
    assert f"no workspace at {typo} (from --workspace)" in err and "ape workspace" in err
    assert not typo.exists()


@given(st.text(alphabet="[]/\\#@abz ", max_size=20))
def test_the_examples_escape_markup_as_rich_does(text: str) -> None:
    from rich.markup import escape

    from apesim.cli.output import escape_markup

    assert escape_markup(text) == escape(text)


def test_an_export_to_a_pipe_prints_plain_lines(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    sim_id = small_run(capsys)["simulation"]["sim_id"]
    done = subprocess.run(
        [sys.executable, "-m", "apesim.cli", "export", sim_id, "-o", str(tmp_path / "p.zip")],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
        check=True,
    )
    size = (tmp_path / "p.zip").stat().st_size
    digest = hashlib.sha256((tmp_path / "p.zip").read_bytes()).hexdigest()
    assert done.stdout == f"✓ {tmp_path / 'p.zip'} ({size:,} bytes)\n  sha256 {digest}\n"


def test_an_interrupted_command_says_so_and_exits_130(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Ctrl-C: Typer returns exit code 130 without a word; the CLI says what happened."""

    def interrupted(*_: object) -> bool:
        raise KeyboardInterrupt

    monkeypatch.setattr(api, "workspace_exists", interrupted)
    code, out, err = ape(capsys, "list")
    assert code == 130 and out == ""
    assert err == "ape: interrupted; nothing was written\n"
