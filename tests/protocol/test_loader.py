"""Loading protocols: the shipped library, the safe YAML loader, and the fingerprint."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim.errors import ProtocolError
from apesim.protocol import (
    canonical_json,
    fingerprint,
    load_protocol,
    parse_protocol,
    resolve_protocol,
)
from apesim.protocol.loader import MAX_PROTOCOL_BYTES, shipped_protocols
from apesim.protocol.schema import PRN, Fixed, TreatAndExtend

TE = "v1_aflibercept_treat_and_extend"
FIXED = "v1_aflibercept_fixed_8_weekly"
PRN_NAME = "v1_prn_monthly"


def te_text() -> str:
    return shipped_protocols()[TE]


def refused(text: str, source: str = "p.yaml") -> str:
    with pytest.raises(ProtocolError) as info:
        parse_protocol(text, source)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{source}: ")
    return message


# -- the shipped library ---------------------------------------------------------------


def test_ships_the_three_protocols_of_the_issue() -> None:
    assert set(shipped_protocols()) >= {TE, FIXED, PRN_NAME}


@pytest.mark.parametrize("name", sorted(shipped_protocols()))
def test_every_shipped_protocol_loads_by_name(name: str) -> None:
    loaded = resolve_protocol(name)
    assert loaded.source == f"{name}.yaml"
    assert loaded.text == shipped_protocols()[name]
    assert len(loaded.fingerprint) == 64


def test_treat_and_extend_has_the_issue_timing() -> None:
    regimen = resolve_protocol(TE).protocol.regimen
    assert isinstance(regimen, TreatAndExtend)
    assert (regimen.min_interval_days, regimen.max_interval_days) == (28, 112)
    assert (regimen.extend_days, regimen.shorten_days) == (14, 14)
    assert regimen.loading_doses == 3


def test_fixed_protocol_is_8_weekly_after_loading() -> None:
    regimen = resolve_protocol(FIXED).protocol.regimen
    assert isinstance(regimen, Fixed)
    assert (regimen.interval_days, regimen.loading_doses) == (56, 3)


def test_prn_protocol_monitors_monthly() -> None:
    regimen = resolve_protocol(PRN_NAME).protocol.regimen
    assert isinstance(regimen, PRN)
    assert regimen.monitoring_interval_days == 28


def test_shipped_protocols_have_distinct_fingerprints() -> None:
    prints = {resolve_protocol(name).fingerprint for name in shipped_protocols()}
    assert len(prints) == len(shipped_protocols())


def test_resolves_a_yaml_file_path(tmp_path: Path) -> None:
    path = tmp_path / "mine.yaml"
    path.write_text(te_text(), encoding="utf-8")
    loaded = resolve_protocol(str(path))
    assert loaded.source == str(path)
    assert loaded.fingerprint == resolve_protocol(TE).fingerprint


def test_resolves_a_protocol_in_an_extra_folder(tmp_path: Path) -> None:
    (tmp_path / "house_style.yaml").write_text(te_text(), encoding="utf-8")
    loaded = resolve_protocol("house_style", (tmp_path,))
    assert loaded.source == str(tmp_path / "house_style.yaml")


def test_unknown_name_lists_the_shipped_protocols() -> None:
    with pytest.raises(ProtocolError) as info:
        resolve_protocol("monthly_magic")
    message = str(info.value)
    assert message.startswith("monthly_magic: no such protocol")
    assert TE in message


def test_missing_file_is_named(tmp_path: Path) -> None:
    path = tmp_path / "absent.yaml"
    with pytest.raises(ProtocolError, match="no such protocol file") as info:
        load_protocol(path)
    assert str(info.value).startswith(f"{path}: ")


def test_rejects_non_utf8_file(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes(
        te_text().replace("Aflibercept 2 mg,", "Aflibercept 2 mg \xb5,").encode("latin-1")
    )
    with pytest.raises(ProtocolError, match="not UTF-8") as info:
        load_protocol(path)
    assert str(info.value).startswith(f"{path}: ")


def test_rejects_oversized_protocol() -> None:
    padding = "# " + "x" * 98 + "\n"
    text = te_text() + padding * (MAX_PROTOCOL_BYTES // len(padding) + 1)
    assert "larger than" in refused(text)


# -- the safe YAML loader --------------------------------------------------------------


def test_refuses_yaml_anchor() -> None:
    text = te_text().replace("  STABLE:        {treated:", "  STABLE: &stable {treated:", 1)
    assert "anchors are not allowed" in refused(text)


def test_refuses_yaml_alias() -> None:
    text = te_text().replace("mortality:\n  annual_probability: 0.04", "mortality: *m")
    assert "aliases are not allowed" in refused(text)


def test_refuses_alias_expansion_bomb() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 9)}]" for i in range(1, 9)]
    assert "are not allowed" in refused("\n".join(lines) + "\n")


def test_refuses_python_object_tags() -> None:
    text = te_text().replace(
        "name: Aflibercept treat-and-extend", "name: !!python/object/apply:os.getcwd []"
    )
    assert "invalid YAML" in refused(text)


def test_refuses_duplicate_keys() -> None:
    text = te_text().replace("mortality:\n", "mortality:\n  annual_probability: 0.5\n")
    assert "duplicate YAML key 'annual_probability'" in refused(text)


def test_refuses_invalid_yaml_with_its_line() -> None:
    text = te_text().replace("regimen:\n", "regimen: [\n", 1)
    assert "invalid YAML at line" in refused(text)


def test_refuses_deep_nesting() -> None:
    text = "name: " + "[" * 40 + "]" * 40 + "\n"
    assert "levels deep" in refused(text)


@pytest.mark.parametrize("text", ["", "- a list\n", "just text\n", "42\n"])
def test_refuses_a_document_that_is_not_a_mapping(text: str) -> None:
    assert "must be a YAML mapping" in refused(text)


# -- canonical serialisation and fingerprint -------------------------------------------


def test_canonical_json_is_compact_sorted_and_complete() -> None:
    protocol = resolve_protocol(TE).protocol
    text = canonical_json(protocol)
    data = json.loads(text)
    assert text == json.dumps(data, sort_keys=True, separators=(",", ":"))
    # Defaults are included, so a protocol that relies on them says so explicitly.
    assert data["discontinuation"]["stable_at_max_interval"]["consecutive_visits"] == 3
    assert data["regimen"]["type"] == "treat_and_extend"


def test_fingerprint_is_sha256_of_the_canonical_json() -> None:
    protocol = resolve_protocol(TE).protocol
    assert fingerprint(protocol) == hashlib.sha256(canonical_json(protocol).encode()).hexdigest()


def fp(text: str) -> str:
    return parse_protocol(text, "p.yaml").fingerprint


def test_fingerprint_ignores_comments() -> None:
    text = te_text()
    stripped = "\n".join(line.split("#")[0].rstrip() for line in text.splitlines()) + "\n"
    assert "#" not in stripped
    assert fp(stripped) == fp(text)


def test_fingerprint_ignores_an_added_comment() -> None:
    assert fp("# reviewed by the clinic\n" + te_text()) == fp(te_text())


def test_fingerprint_ignores_number_spelling() -> None:
    assert fp(te_text().replace("0.50,", "0.5,")) == fp(te_text())


def test_fingerprint_ignores_stating_a_default() -> None:
    # female_share defaults to 0.6: leaving it out means the same protocol.
    assert fp(te_text().replace("  female_share: 0.6\n", "")) == fp(te_text())


def test_fingerprint_ignores_block_versus_flow_style() -> None:
    data = yaml.safe_load(te_text())
    block = yaml.safe_dump(data, default_flow_style=False, sort_keys=False)
    flow = yaml.safe_dump(data, default_flow_style=True, sort_keys=False)
    assert fp(block) == fp(flow) == fp(te_text())


def shuffled(value: Any, rnd: Any) -> Any:
    """The same data with every mapping's keys in a random order."""
    if isinstance(value, dict):
        keys = list(value)
        rnd.shuffle(keys)
        return {k: shuffled(value[k], rnd) for k in keys}
    return value


@settings(max_examples=30, deadline=None)
@given(name=st.sampled_from(sorted(shipped_protocols())), rnd=st.randoms(use_true_random=False))
def test_fingerprint_ignores_key_order(name: str, rnd: Any) -> None:
    text = shipped_protocols()[name]
    reordered = yaml.safe_dump(shuffled(yaml.safe_load(text), rnd), sort_keys=False)
    assert fp(reordered) == fp(text)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("extend_days: 14", "extend_days: 21"),
        ("annual_probability: 0.04", "annual_probability: 0.05"),
        ('version: "1.0"', 'version: "1.1"'),
        ("name: Aflibercept treat-and-extend", "name: Aflibercept T&E"),
        ("{mean: 5.5, sd: 3.0}", "{mean: 5.5, sd: 3.5}"),
        ("{STABLE: 0.83, ACTIVE: 0.12,", "{STABLE: 0.82, ACTIVE: 0.13,"),
        ("  female_share: 0.6\n", "  female_share: 0.5\n"),
        ("28 and 112 days", "28 and 112 days (4 to 16 weeks)"),
    ],
)
def test_fingerprint_changes_when_a_value_changes(old: str, new: str) -> None:
    text = te_text()
    assert text.count(old) == 1
    assert fp(text.replace(old, new)) != fp(text)


@settings(max_examples=30, deadline=None)
@given(per_mille=st.integers(min_value=0, max_value=1000).filter(lambda p: p != 40))
def test_fingerprint_changes_with_any_other_mortality(per_mille: int) -> None:
    text = te_text().replace("annual_probability: 0.04", f"annual_probability: {per_mille / 1000}")
    assert fp(text) != fp(te_text())


def test_a_protocol_file_that_never_ends_is_refused_at_its_limit(endless: Path) -> None:
    with pytest.raises(ProtocolError, match="larger than 1000000 bytes"):
        load_protocol(endless)
