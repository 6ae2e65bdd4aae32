"""The sweep file: each rule broken once gives one line naming the file and the field, and
nothing is written; a valid file gives its draws, each with its own seed and protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

from apesim import api
from apesim.cli import main
from apesim.protocol import parse_protocol
from apesim.sweep.plan import derive_seed
from apesim.sweep.spec import SweepError
from apesim.workspace import Workspace
from tests.sweep.conftest import DISTRIBUTIONS, write_sweep

HEAD = "protocol: v1_aflibercept_treat_and_extend\npatients: 50\nyears: 1\nseed: 1\n"


def _varying(line: str, draws: str = "draws: 3\n") -> str:
    return f"{HEAD}{draws}parameters:\n  mortality.annual_probability: {line}\n"


P = "parameters[mortality.annual_probability]"


@pytest.mark.parametrize(
    ("text", "field"),
    [
        (_varying("{distribution: beta, alpha: 0, beta: 2}"), f"{P}.alpha"),
        (_varying("{distribution: beta, alpha: 1}"), f"{P}.beta: missing field"),
        (_varying("{distribution: gamma, shape: 2, scale: -1}"), f"{P}.scale"),
        (_varying("{distribution: normal, mean: 0.04, sd: 0}"), f"{P}.sd"),
        (_varying("{distribution: normal, mean: .nan, sd: 1}"), f"{P}.mean"),
        (_varying("{distribution: uniform, low: 0.1, high: 0.01}"), f"{P}: low (0.1)"),
        (
            _varying("{distribution: uniform, low: -1.0e+308, high: 1.0e+308}"),
            f"{P}: high - low (1e+308 - -1e+308) is beyond a float",
        ),
        (
            _varying("{distribution: gamma, shape: 1.0e+300, scale: 1.0e+300}"),
            "draw 0: mortality.annual_probability = inf is out of range",
        ),
        (
            HEAD + "grid:\n  regimen.extend_days: [1.0e+300]\n",
            "draw 0: regimen.extend_days = 1e+300 is out of range",
        ),
        (_varying("{distribution: lognormal, mu: 1}"), f"{P}.distribution: unknown"),
        (_varying("{alpha: 1, beta: 2}"), f"{P}.distribution: missing field"),
        (_varying("{distribution: beta, alpha: 1, beta: 2, mode: 3}"), f"{P}.mode: unknown"),
        (_varying("{distribution: beta, alpha: 1, beta: 2}", draws=""), "draws: missing"),
        (_varying("{distribution: beta, alpha: 1, beta: 2}", "draws: 0\n"), "draws: "),
        (
            _varying("{distribution: beta, alpha: 1, beta: 2}", "draws: 10001\n"),
            "draws: input should be less than or equal to 10000",
        ),
        (
            HEAD + "grid:\n  mortality.annual_probability: []\n",
            "grid[mortality.annual_probability]",
        ),
        (HEAD + "draws: 2\ngrid:\n  mortality.annual_probability: [0.1]\n", "draws: not used"),
        (HEAD, "give either parameters"),
        (HEAD.replace("patients: 50", "patients: 0"), "patients: "),
        (HEAD + "grid:\n  mortality.annual_probability: [0.1]\nspeed: 3\n", "speed: unknown"),
        (HEAD + "grid:\n  not a path: [0.1]\n", "grid[not a path]: not a parameter path"),
        (
            HEAD.replace("years: 1", "years: 0.001")
            + "grid:\n  mortality.annual_probability: [0.1]\n",
            "years: must cover at least one day",
        ),
    ],
)
def test_a_bad_sweep_file_is_one_line_naming_the_field(
    tmp_path: Path, text: str, field: str
) -> None:
    path = write_sweep(tmp_path, text)
    ws = Workspace(tmp_path / "ws")
    with pytest.raises(SweepError) as caught:
        api.plan_sweep(ws, path)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: {field}"), message
    assert caught.value.code == "sweep.invalid"


def test_a_path_the_protocol_does_not_have_is_named_with_a_hint(tmp_path: Path) -> None:
    path = write_sweep(tmp_path, HEAD + "grid:\n  mortality.anual_probability: [0.1]\n")
    with pytest.raises(
        SweepError,
        match=r"grid\[mortality.anual_probability\]: no such number"
        r".*did you mean 'mortality.annual_probability'",
    ):
        api.plan_sweep(Workspace(tmp_path / "ws"), path)


def test_a_draw_that_makes_an_invalid_protocol_is_named(tmp_path: Path) -> None:
    # A normal distribution around 0 draws negative probabilities.
    path = write_sweep(
        tmp_path, _varying("{distribution: normal, mean: 0.0, sd: 0.5}", draws="draws: 20\n")
    )
    with pytest.raises(
        SweepError,
        match=r": draw \d+ \(mortality.annual_probability = -?[\d.]+"
        r"\) gives an invalid protocol: .*mortality.annual_probability",
    ):
        api.plan_sweep(Workspace(tmp_path / "ws"), path)


def test_the_cli_refuses_a_bad_sweep_with_exit_2_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_sweep(tmp_path, _varying("{distribution: beta, alpha: -1, beta: 2}"))
    ws = tmp_path / "ws"
    with pytest.raises(SystemExit) as info:
        main(["sweep", str(path), "-w", str(ws)])
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert err.count("\n") == 1 and f"{P}.alpha" in err, err
    assert not (ws / "sweeps").exists() or not any((ws / "sweeps").iterdir())


def test_draws_have_their_own_seeds_values_and_exact_protocols(sweep_file: Path) -> None:
    plan = api.plan_sweep(Workspace(sweep_file.parent / "ws"), sweep_file)
    assert len(plan.draws) == 6
    assert [d.seed for d in plan.draws] == [derive_seed(2026, i) for i in range(6)]
    assert len({d.seed for d in plan.draws}) == 6
    for draw, lp in zip(plan.draws, plan.protocols, strict=True):
        again = parse_protocol(lp.text)  # the text is the protocol, exactly
        assert again.fingerprint == lp.fingerprint
        assert (
            again.protocol.mortality.annual_probability
            == draw.values["mortality.annual_probability"]
        )
        assert isinstance(draw.values["regimen.extend_days"], int)  # a whole number of days
        assert lp.protocol.regimen.extend_days == draw.values["regimen.extend_days"]
    # The same file gives the same sweep (id, draws): how a re-run resumes.
    again = api.plan_sweep(Workspace(sweep_file.parent / "ws"), sweep_file)
    assert again.sweep_id == plan.sweep_id and again.draws == plan.draws


def test_a_grid_is_every_combination(tmp_path: Path) -> None:
    text = HEAD + (
        "grid:\n  regimen.max_interval_days: [84, 112, 140]\n"
        "  mortality.annual_probability: [0.02, 0.04]\n"
    )
    plan = api.plan_sweep(Workspace(tmp_path / "ws"), write_sweep(tmp_path, text))
    assert [tuple(d.values.values()) for d in plan.draws] == [
        (84, 0.02),
        (84, 0.04),
        (112, 0.02),
        (112, 0.04),
        (140, 0.02),
        (140, 0.04),
    ]


def test_a_protocol_file_is_found_beside_the_sweep_file(tmp_path: Path) -> None:
    from apesim.protocol.loader import shipped_protocols

    (tmp_path / "mine.yaml").write_text(shipped_protocols()["v1_prn_monthly"], encoding="utf-8")
    text = DISTRIBUTIONS.replace("v1_aflibercept_treat_and_extend", "mine.yaml").replace(
        "  regimen.extend_days: {distribution: uniform, low: 7, high: 28}\n", ""
    )
    plan = api.plan_sweep(Workspace(tmp_path / "ws"), write_sweep(tmp_path, text))
    assert plan.base.protocol.regimen.type == "prn"


def test_a_sweep_file_that_never_ends_is_refused_at_its_limit(
    endless: Path, tmp_path: Path
) -> None:
    with pytest.raises(SweepError, match=r"^/dev/zero: sweep file is larger than"):
        api.plan_sweep(Workspace(tmp_path / "ws"), endless)
