"""Earlier-APE protocol YAML -> our protocol schema: what maps, what does not (listed, with
APE's nearest values used), unsafe YAML refused, and `ape protocols convert`."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from apesim.cli import main
from apesim.errors import ProtocolError
from apesim.protocol import parse_protocol
from apesim.protocol.convert import convert_protocol_text, earlier_state
from tests.conftest import SHARED

LEGACY = SHARED / "fixtures" / "ape-legacy"

COMPLETE = """\
name: Earlier T&E
version: 2
created_date: '2024-01-15'
author: Clinical Team
description: A protocol of the earlier APE that maps completely
protocol_type: treat_and_extend
min_interval_days: 28
max_interval_days: 84
extension_days: 14
shortening_days: 7
disease_transitions:
  NAIVE: {NAIVE: 0.0, STABLE: 0.3, ACTIVE: 0.6, HIGHLY_ACTIVE: 0.1}
  STABLE: {NAIVE: 0.0, STABLE: 0.85, ACTIVE: 0.15, HIGHLY_ACTIVE: 0.0}
  ACTIVE: {NAIVE: 0.0, STABLE: 0.2, ACTIVE: 0.7, HIGHLY_ACTIVE: 0.1}
  HIGHLY_ACTIVE: {NAIVE: 0.0, STABLE: 0.05, ACTIVE: 0.15, HIGHLY_ACTIVE: 0.8}
vision_change_model:
  naive_treated: {mean: 0, std: 1}
  naive_untreated: {mean: -2, std: 2}
  stable_treated: {mean: 1, std: 1}
  stable_untreated: {mean: 0, std: 1}
  active_treated: {mean: -1, std: 2}
  active_untreated: {mean: -3, std: 2}
  highly_active_treated: {mean: -2, std: 2}
  highly_active_untreated: {mean: -5, std: 3}
treatment_effect_on_transitions:
  NAIVE: {multipliers: {}}
  ACTIVE: {multipliers: {STABLE: 2.0, HIGHLY_ACTIVE: 0.5}}
baseline_vision: {mean: 60, std: 12, min: 25, max: 85}
discontinuation_rules:
  poor_vision_threshold: 35
  poor_vision_probability: 0.1
  high_injection_count: 20
  high_injection_probability: 0.0
  long_treatment_months: 36
  long_treatment_probability: 0
"""


def test_a_protocol_whose_fields_all_map_converts_completely() -> None:
    conversion = convert_protocol_text(COMPLETE, "earlier.yaml")
    assert conversion.complete and conversion.unmapped == ()
    p = conversion.loaded.protocol
    assert (p.name, p.version) == ("Earlier T&E", "2")
    assert p.regimen.type == "treat_and_extend"
    assert (p.regimen.min_interval_days, p.regimen.max_interval_days) == (28, 84)
    assert (p.regimen.extend_days, p.regimen.shorten_days) == (14, 7)
    assert p.regimen.initial_interval_days == 28 and p.regimen.loading_doses == 0
    assert p.disease_transitions["NAIVE"]["ACTIVE"] == 0.6
    assert p.treatment_effect == {"ACTIVE": {"STABLE": 2.0, "HIGHLY_ACTIVE": 0.5}}
    assert (p.vision.HIGHLY_ACTIVE.untreated.mean, p.vision.HIGHLY_ACTIVE.untreated.sd) == (-5, 3)
    v = p.baseline.vision_letters
    assert (v.mean, v.sd, v.min, v.max) == (60, 12, 25, 85)
    assert p.discontinuation.poor_vision is not None
    assert p.discontinuation.poor_vision.threshold_letters == 35
    assert p.mortality.annual_probability == 0.0
    assert "by Clinical Team, created 2024-01-15" in p.description
    # The text is our YAML, fingerprinted like any protocol, and the same every time.
    assert parse_protocol(conversion.text).fingerprint == conversion.fingerprint
    assert convert_protocol_text(COMPLETE, "earlier.yaml").text == conversion.text


def _sample_protocol(name: str) -> bytes:
    path = LEGACY / name
    if not path.is_file():
        pytest.skip(f"{path} is absent: the earlier-APE samples come from ../shared/fixtures")
    with zipfile.ZipFile(path) as zf:
        return zf.read("protocol.yaml")


def test_the_visit_based_sample_protocol_lists_its_discontinuation_rules() -> None:
    conversion = convert_protocol_text(_sample_protocol("small_100p_2y_abs.zip"), "protocol.yaml")
    assert conversion.unmapped_fields == [
        "discontinuation_rules.high_injection_*",
        "discontinuation_rules.long_treatment_*",
        "discontinuation_rules.discontinuation_types",
    ]
    p = conversion.loaded.protocol
    assert p.regimen.max_interval_days == 112
    assert p.baseline.vision_letters.mean == 70
    assert "discontinuation_rules.high_injection_*" in p.description


def test_the_time_based_sample_protocol_lists_its_engine_and_parameter_files() -> None:
    conversion = convert_protocol_text(
        _sample_protocol("timebased_1000p_5y_abs.zip"), "protocol.yaml"
    )
    assert conversion.unmapped_fields == [
        "model_type",
        "transition_model",
        "update_interval_days",
        "disease_transitions_file",
        "treatment_effect_file",
        "vision_parameters_file",
        "discontinuation_parameters_file",
        "demographics_parameters_file",
    ]
    assert conversion.loaded.protocol.regimen.loading_doses == 3
    assert any("disease_transitions: APE's defaults" in n for n in conversion.notes)


def test_fields_that_do_not_map_are_listed_and_nearest_values_used() -> None:
    text = (
        COMPLETE.replace("protocol_type: treat_and_extend", "protocol_type: prn")
        .replace("extension_days: 14", "extension_days: 0")
        .replace("naive_treated: {mean: 0, std: 1}", "naive_treated: {mean: 0, std: 0}")
        .replace("HIGHLY_ACTIVE: 0.8}", "HIGHLY_ACTIVE: 0.7995}")
        .replace("high_injection_probability: 0.0", "high_injection_probability: 0.02")
        + "model_type: time_based\nmystery: 1\n"
    )
    conversion = convert_protocol_text(text, "earlier.yaml")
    assert conversion.unmapped_fields == [
        "protocol_type",
        "extension_days",
        "discontinuation_rules.high_injection_*",
        "model_type",
        "mystery",
    ]
    p = conversion.loaded.protocol
    assert p.regimen.type == "treat_and_extend" and p.regimen.extend_days == 14
    assert p.vision.NAIVE.treated.sd == 0.01
    assert abs(sum(p.disease_transitions["HIGHLY_ACTIVE"].values()) - 1) < 1e-12
    assert any("renormalised" in note for note in conversion.notes)
    assert "mystery" in p.description


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name: &a x\nversion: *a\n", "anchors are not allowed"),
        ("name: x\nname: y\n", "duplicate YAML key"),
        ("- just\n- a list\n", "must be a YAML mapping"),
        ("name: [unclosed\n", "invalid YAML"),
    ],
)
def test_unsafe_or_malformed_yaml_is_refused(text: str, message: str) -> None:
    with pytest.raises(ProtocolError, match=message):
        convert_protocol_text(text, "bad.yaml")


def test_earlier_states_map_to_ours() -> None:
    assert earlier_state("DiseaseState.HIGHLY_ACTIVE") == "HIGHLY_ACTIVE"
    assert earlier_state("stable") == "STABLE"
    assert earlier_state("DiseaseState.DORMANT") is None
    assert earlier_state(3) is None


# -- ape protocols convert --------------------------------------------------------------


def _run(argv: list[str]) -> int:
    with pytest.raises(SystemExit) as exited:
        main(argv)
    return int(exited.value.code or 0)


def test_cli_prints_a_complete_conversion(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "earlier.yaml"
    source.write_text(COMPLETE)
    assert _run(["protocols", "convert", str(source)]) == 0
    printed = capsys.readouterr().out
    assert parse_protocol(printed).fingerprint == convert_protocol_text(COMPLETE).fingerprint
    target = tmp_path / "ours.yaml"
    assert _run(["protocols", "convert", str(source), "-o", str(target)]) == 0
    assert parse_protocol(target.read_text()).protocol.name == "Earlier T&E"


def test_cli_exits_2_listing_the_fields_that_do_not_map(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    source = tmp_path / "earlier.yaml"
    source.write_text(COMPLETE + "model_type: time_based\n")
    target = tmp_path / "ours.yaml"
    assert _run(["protocols", "convert", str(source), "-o", str(target)]) == 2
    captured = capsys.readouterr()
    assert "does not map: model_type" in captured.err
    assert captured.out == "" and not target.exists()
    assert _run(["protocols", "convert", str(source), "--json"]) == 2
    shown = json.loads(capsys.readouterr().out)
    assert shown["complete"] is False
    assert [u["field"] for u in shown["unmapped"]] == ["model_type"]
    assert parse_protocol(shown["protocol_yaml"]).fingerprint == shown["fingerprint"]


def test_cli_refuses_unsafe_yaml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "bad.yaml"
    source.write_text("name: &a x\nversion: *a\n")
    assert _run(["protocols", "convert", str(source)]) == 2
    assert "anchors are not allowed" in capsys.readouterr().err


def test_control_characters_in_the_name_and_version_are_replaced_and_said() -> None:
    text = COMPLETE.replace(
        "name: Earlier T&E\nversion: 2\n", 'name: "evil\\e[2J\\u202ename"\nversion: "1\\n2"\n', 1
    )
    assert text != COMPLETE
    conversion = convert_protocol_text(text, "earlier.yaml")
    assert conversion.loaded.protocol.name == "evil?[2J?name"
    assert conversion.loaded.protocol.version == "1?2"
    assert "name: control characters replaced by '?'" in conversion.notes
