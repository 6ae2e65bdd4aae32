"""Convert a protocol of the earlier APE (public repository lh/vegf-1, its `simulation_v2`
protocol YAML) into APE's protocol schema, and list the earlier fields that do not map.

The conversion never guesses silently: a field with a counterpart is carried over (checked
against APE's ranges), a field without one is listed in `ProtocolConversion.unmapped` with
the reason, and every part of APE's schema the earlier file does not fill is set to a
documented default and named in `ProtocolConversion.notes`. The result always validates, so
an imported earlier simulation has a protocol APE can show, fingerprint and export; it is a
faithful re-run of the earlier regimen only when `complete` is true. The mapping is
documented in docs/package-format.md ("Packages of the earlier APE").
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

import yaml
from pydantic import ValidationError

from apesim.errors import ProtocolError
from apesim.protocol.loader import LoadedProtocol, parse_protocol
from apesim.protocol.schema import (
    PROBABILITY_TOLERANCE,
    STATES,
    BaselinePopulation,
    Protocol,
    TreatAndExtend,
    TruncatedNormal,
    VisionModel,
)
from apesim.safeload import load_yaml
from apesim.text import first_control, is_control

MAX_EARLIER_BYTES = 1_000_000
EARLIER_SUM_TOLERANCE = 1e-3  # the earlier schema accepted rows summing to 1 within this
MAX_DESCRIPTION = 5000

# APE's values for the parts of its schema an earlier protocol does not fill. They are fixed
# here (not read from a shipped protocol) so that a conversion never changes behind the
# user's back; docs/package-format.md lists them.
DEFAULT_TRANSITIONS: dict[str, dict[str, float]] = {
    "NAIVE": {"NAIVE": 0.50, "STABLE": 0.30, "ACTIVE": 0.15, "HIGHLY_ACTIVE": 0.05},
    "STABLE": {"STABLE": 0.83, "ACTIVE": 0.12, "HIGHLY_ACTIVE": 0.05},
    "ACTIVE": {"STABLE": 0.30, "ACTIVE": 0.60, "HIGHLY_ACTIVE": 0.10},
    "HIGHLY_ACTIVE": {"STABLE": 0.10, "ACTIVE": 0.40, "HIGHLY_ACTIVE": 0.50},
}
DEFAULT_VISION: dict[str, dict[str, dict[str, float]]] = {
    "NAIVE": {"treated": {"mean": 5.5, "sd": 3.0}, "untreated": {"mean": -2.0, "sd": 1.0}},
    "STABLE": {"treated": {"mean": 0.2, "sd": 2.0}, "untreated": {"mean": 0.0, "sd": 1.5}},
    "ACTIVE": {"treated": {"mean": -0.5, "sd": 3.0}, "untreated": {"mean": -2.0, "sd": 3.0}},
    "HIGHLY_ACTIVE": {
        "treated": {"mean": -1.0, "sd": 4.0},
        "untreated": {"mean": -5.0, "sd": 4.0},
    },
}
DEFAULT_AGE: dict[str, float | int] = {"mean": 77, "sd": 8, "min": 50, "max": 100}
DEFAULT_VISION_LETTERS: dict[str, float | int] = {"mean": 55, "sd": 12, "min": 25, "max": 85}
DEFAULT_FEMALE_SHARE = 0.6
DEFAULT_LOADING_INTERVAL = 28
DEFAULT_INTERVALS = {"min": 28, "max": 112, "extend": 14, "shorten": 14}
SMALLEST_SD = 0.01  # an earlier `std: 0` (a fixed change) becomes this

# Earlier fields that describe the file, not the regimen: kept in the description or dropped.
_INFORMATIONAL = {"name", "version", "description", "author", "created_date"}
_PROVENANCE = {"source_file", "load_timestamp", "checksum"}
_T_AND_E_NAMES = {"treat_and_extend", "standard"}
_REASONS = {
    "model_type": "APE's engine is visit-based; the earlier time-based engine updated the "
    "disease between visits",
    "transition_model": "APE's disease model changes state at visits only",
    "update_interval_days": "APE's disease model changes state at visits only",
    "clinical_improvements": "the earlier engine's optional refinements have no counterpart",
    "max_injections_per_year": "APE has no cap on injections per year",
}
_STATE_PREFIX = re.compile(r"^(?:DiseaseState\.)?([A-Za-z_]+)$")


def earlier_state(value: object) -> str | None:
    """An earlier disease state ("DiseaseState.STABLE", "STABLE", "stable") as APE's name."""
    if not isinstance(value, str):
        return None
    match = _STATE_PREFIX.match(value.strip())
    if not match:
        return None
    name = match.group(1).upper()
    return name if name in STATES else None


@dataclass(frozen=True)
class Unmapped:
    """An earlier protocol field without a counterpart in APE's schema, and why."""

    field: str
    reason: str

    def __str__(self) -> str:
        return f"{self.field} ({self.reason})"


@dataclass(frozen=True)
class ProtocolConversion:
    """An earlier protocol converted: APE's validated protocol, what did not map, and the
    defaults and approximations used."""

    loaded: LoadedProtocol
    unmapped: tuple[Unmapped, ...]
    notes: tuple[str, ...]

    @property
    def complete(self) -> bool:
        """True when every earlier field maps onto APE's schema."""
        return not self.unmapped

    @property
    def text(self) -> str:
        return self.loaded.text

    @property
    def fingerprint(self) -> str:
        return self.loaded.fingerprint

    @property
    def unmapped_fields(self) -> list[str]:
        return [u.field for u in self.unmapped]

    def to_json(self) -> dict[str, Any]:
        return {
            "complete": self.complete,
            "fingerprint": self.fingerprint,
            "unmapped": [{"field": u.field, "reason": u.reason} for u in self.unmapped],
            "notes": list(self.notes),
            "protocol_yaml": self.text,
        }


def _shown(value: object, limit: int = 80) -> str:
    """A field name or value made safe for one line of text (no control characters)."""
    text = str(value)
    text = "".join(c if c.isprintable() else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _number(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


def _integer(value: object) -> int | None:
    number = _number(value)
    return int(number) if number is not None and number.is_integer() else None


class _Converter:
    """Walks an earlier protocol mapping, building APE's fields and the lists of findings."""

    def __init__(self, data: dict[Any, Any]) -> None:
        self.data = data
        self.unmapped: list[Unmapped] = []
        self.notes: list[str] = []
        self.used: set[Any] = set()

    def lost(self, field: str, reason: str) -> None:
        self.unmapped.append(Unmapped(_shown(field), reason))

    def take(self, key: str) -> Any:
        self.used.add(key)
        return self.data.get(key)

    # -- the regimen ------------------------------------------------------------------

    def days(self, key: str, default: int, low: int = 1) -> int:
        value = self.take(key)
        if value is None:
            return default
        days = _integer(value)
        if days is None or not low <= days <= 3650:
            self.lost(
                key, f"{_shown(value)} is not a whole number of days in {low}..3650; {default} used"
            )
            return default
        return days

    def regimen(self) -> dict[str, Any]:
        kind = self.take("protocol_type")
        if kind is None:
            self.notes.append("regimen: the earlier file names none; treat-and-extend used")
        elif not isinstance(kind, str) or kind.strip().lower() not in _T_AND_E_NAMES:
            self.lost(
                "protocol_type", f"APE has no {_shown(kind)!r} regimen; treat-and-extend used"
            )
        low = self.days("min_interval_days", DEFAULT_INTERVALS["min"])
        high = self.days("max_interval_days", DEFAULT_INTERVALS["max"])
        regimen: dict[str, Any] = {
            "type": "treat_and_extend",
            "min_interval_days": low,
            "max_interval_days": high,
            "extend_days": self.days("extension_days", DEFAULT_INTERVALS["extend"]),
            "shorten_days": self.days("shortening_days", DEFAULT_INTERVALS["shorten"]),
        }
        loading_key = (
            "loading_dose_injections"
            if "loading_dose_injections" in self.data
            else ("loading_doses")
        )
        loading = self.take(loading_key)
        self.used.update({"loading_dose_injections", "loading_doses"})
        if loading is None:
            regimen["loading_doses"] = 0
            self.notes.append("regimen.loading_doses: 0 (the earlier file has no loading phase)")
        elif (doses := _integer(loading)) is not None and 0 <= doses <= 12:
            regimen["loading_doses"] = doses
        else:
            regimen["loading_doses"] = 0
            self.lost(loading_key, f"{_shown(loading)} is not 0..12 doses; 0 used")
        interval_key = (
            "loading_dose_interval_days"
            if "loading_dose_interval_days" in self.data
            else "loading_interval_days"
        )
        self.used.update({"loading_dose_interval_days", "loading_interval_days"})
        regimen["loading_interval_days"] = self.days(interval_key, DEFAULT_LOADING_INTERVAL)
        if "initial_interval_days" in self.data:
            regimen["initial_interval_days"] = self.days("initial_interval_days", low)
        else:
            regimen["initial_interval_days"] = low
            self.notes.append(
                "regimen.initial_interval_days: the minimum interval (the earlier "
                "treat-and-extend started there)"
            )
        try:
            TreatAndExtend.model_validate(regimen)
        except ValidationError as exc:
            reason = exc.errors()[0]["msg"].removeprefix("Value error, ")
            self.lost("min_interval_days/max_interval_days", f"{reason}; APE's defaults used")
            regimen.update(
                min_interval_days=DEFAULT_INTERVALS["min"],
                max_interval_days=DEFAULT_INTERVALS["max"],
                initial_interval_days=DEFAULT_INTERVALS["min"],
            )
        return regimen

    # -- the disease and vision models -------------------------------------------------

    def transitions(self) -> dict[str, dict[str, float]]:
        raw = self.take("disease_transitions")
        if raw is None:
            self.notes.append("disease_transitions: APE's defaults (the earlier file has none)")
            return DEFAULT_TRANSITIONS
        if not isinstance(raw, dict):
            self.lost("disease_transitions", "not a mapping; APE's defaults used")
            return DEFAULT_TRANSITIONS
        out: dict[str, dict[str, float]] = {}
        for key, row in raw.items():
            state = earlier_state(key)
            if state is None:
                self.lost(f"disease_transitions.{key}", "not a disease state APE knows")
                continue
            converted = self.transition_row(f"disease_transitions.{key}", row)
            if converted is not None:
                out[state] = converted
        missing = [s for s in STATES if s not in out]
        if missing:
            self.lost(
                "disease_transitions",
                f"no usable row for {', '.join(missing)}; APE's defaults used",
            )
            return DEFAULT_TRANSITIONS
        return out

    def transition_row(self, where: str, row: object) -> dict[str, float] | None:
        if not isinstance(row, dict):
            self.lost(where, "not a mapping of probabilities")
            return None
        out: dict[str, float] = {}
        for key, value in row.items():
            state, p = earlier_state(key), _number(value)
            if state is None or p is None or not 0 <= p <= 1:
                self.lost(f"{where}.{key}", "not a probability of a state APE knows")
                return None
            out[state] = p
        total = sum(out.values())
        if abs(total - 1) > EARLIER_SUM_TOLERANCE:
            self.lost(where, f"probabilities sum to {total:.6g}, not 1")
            return None
        if abs(total - 1) > PROBABILITY_TOLERANCE:
            self.notes.append(f"{_shown(where)}: renormalised from a sum of {total:.12g} to 1")
            out = {k: v / total for k, v in out.items()}
        return out

    def treatment_effect(self, transitions: dict[str, dict[str, float]]) -> dict[str, Any]:
        raw = self.take("treatment_effect_on_transitions")
        if raw is None:
            return {}
        if not isinstance(raw, dict):
            self.lost("treatment_effect_on_transitions", "not a mapping")
            return {}
        out: dict[str, dict[str, float]] = {}
        for key, entry in raw.items():
            where = f"treatment_effect_on_transitions.{key}"
            state = earlier_state(key)
            multipliers = entry.get("multipliers") if isinstance(entry, dict) else None
            if isinstance(entry, dict) and set(entry) != {"multipliers"}:
                multipliers = entry  # also accept {STATE: {STATE: m}}
            if state is None or not isinstance(multipliers, dict):
                self.lost(where, "not a state's multipliers")
                continue
            row: dict[str, float] = {}
            for target, value in multipliers.items():
                to, m = earlier_state(target), _number(value)
                if to is None or m is None or not 0 <= m <= 100:
                    self.lost(f"{where}.{target}", "not a multiplier (0..100) of a state")
                    continue
                row[to] = m
            base = transitions[state]
            if row and sum(base.get(t, 0.0) * row.get(t, 1.0) for t in base) <= 0:
                self.lost(where, "leaves no possible transition")
                continue
            if row:
                out[state] = row
        return out

    def change(self, where: str, raw: object) -> dict[str, float] | None:
        if not isinstance(raw, dict):
            self.lost(where, "missing or not a mapping of mean and std")
            return None
        mean, sd = _number(raw.get("mean")), _number(raw.get("std", raw.get("sd")))
        extra = set(raw) - {"mean", "std", "sd"}
        for key in sorted(map(str, extra)):
            self.lost(f"{where}.{key}", "no counterpart in APE's vision model")
        if mean is None or sd is None or sd < 0:
            self.lost(where, "mean and std must be numbers, std not negative")
            return None
        if not -30 <= mean <= 30 or sd > 30:
            self.lost(where, "outside APE's range (mean -30..30, sd up to 30)")
            return None
        if sd == 0:
            self.notes.append(f"{where}.std: 0 became {SMALLEST_SD} (APE needs sd > 0)")
            sd = SMALLEST_SD
        return {"mean": mean, "sd": sd}

    def vision(self) -> dict[str, Any]:
        raw = self.take("vision_change_model")
        if raw is None:
            self.notes.append("vision: APE's defaults (the earlier file has no vision model)")
            return DEFAULT_VISION
        if not isinstance(raw, dict):
            self.lost("vision_change_model", "not a mapping; APE's defaults used")
            return DEFAULT_VISION
        out: dict[str, dict[str, Any]] = {}
        expected = set()
        for state in STATES:
            out[state] = {}
            for arm in ("treated", "untreated"):
                key = f"{state.lower()}_{arm}"
                expected.add(key)
                where = f"vision_change_model.{key}"
                converted = self.change(where, raw.get(key))
                if converted is None:
                    converted = DEFAULT_VISION[state][arm]
                out[state][arm] = converted
        for key in raw:
            if key not in expected:
                self.lost(f"vision_change_model.{key}", "not a state/treatment APE knows")
        return out

    # -- the population ----------------------------------------------------------------

    def normal(self, where: str, raw: dict[str, Any]) -> dict[str, Any] | None:
        mean, sd = _number(raw.get("mean")), _number(raw.get("std", raw.get("sd")))
        low, high = _integer(raw.get("min")), _integer(raw.get("max"))
        if None in (mean, sd, low, high):
            self.lost(where, "needs numbers mean, std and whole-number min, max")
            return None
        spec = {"mean": mean, "sd": sd, "min": low, "max": high}
        try:
            TruncatedNormal.model_validate(spec)
            if not (low is not None and high is not None and low >= 0 and high <= 100):
                raise ValueError("vision must lie within 0..100 letters")
        except (ValidationError, ValueError) as exc:
            self.lost(where, f"outside APE's range ({_shown(exc, 120)})")
            return None
        return spec

    def baseline(self) -> dict[str, Any]:
        dist = self.take("baseline_vision_distribution")
        plain = self.take("baseline_vision")
        flat = {k: self.take(f"baseline_vision_{k}") for k in ("mean", "std", "min", "max")}
        chosen: dict[str, Any] | None = None
        if isinstance(dist, dict):
            kind = dist.get("type", "normal")
            if kind == "normal":
                chosen = self.normal("baseline_vision_distribution", dist)
            else:
                self.lost(
                    "baseline_vision_distribution",
                    f"APE draws baseline vision from a truncated normal, not {_shown(kind)!r}",
                )
            for key in sorted(map(str, set(dist) - {"type", "mean", "std", "sd", "min", "max"})):
                self.lost(f"baseline_vision_distribution.{key}", "no counterpart in APE")
        elif dist is not None:
            self.lost("baseline_vision_distribution", "not a mapping")
        for where, raw in (("baseline_vision", plain), ("baseline_vision_*", flat)):
            if not isinstance(raw, dict) or all(v is None for v in raw.values()):
                if raw is not None and not isinstance(raw, dict):
                    self.lost(where, "not a mapping")
                continue
            spec = self.normal(where, raw)
            if chosen is None:
                chosen = spec
            elif spec is not None and spec != chosen:
                self.lost(where, "differs from the baseline vision distribution, which is used")
        if chosen is None:
            self.notes.append("baseline.vision_letters: APE's default")
            chosen = dict(DEFAULT_VISION_LETTERS)
        self.notes.append(
            "baseline.age_years and female_share: APE's defaults (the earlier file has none)"
        )
        return {
            "age_years": dict(DEFAULT_AGE),
            "vision_letters": chosen,
            "female_share": DEFAULT_FEMALE_SHARE,
        }

    # -- stopping ----------------------------------------------------------------------

    def discontinuation(self) -> dict[str, Any]:
        rules = self.take("discontinuation_rules")
        out: dict[str, Any] = {
            "stable_at_max_interval": None,
            "poor_vision": None,
            "premature_annual_probability": 0.0,
        }
        if rules is None:
            self.notes.append("discontinuation: none (the earlier file states no rules)")
            return out
        if not isinstance(rules, dict):
            self.lost("discontinuation_rules", "not a mapping")
            return out
        used = set()
        if "poor_vision_threshold" in rules or "poor_vision_probability" in rules:
            used |= {"poor_vision_threshold", "poor_vision_probability"}
            threshold = _integer(rules.get("poor_vision_threshold"))
            p = _number(rules.get("poor_vision_probability"))
            if threshold is None or not 0 <= threshold <= 100 or p is None or not 0 <= p <= 1:
                self.lost(
                    "discontinuation_rules.poor_vision_*",
                    "needs a threshold of 0..100 letters and a probability",
                )
            elif p > 0:
                out["poor_vision"] = {"threshold_letters": threshold, "probability": p}
        for rule, limit, what in (
            ("high_injection", "count", "a number of injections"),
            ("long_treatment", "months", "a duration of treatment"),
        ):
            keys = {f"{rule}_{limit}", f"{rule}_probability"}
            if not keys & set(rules):
                continue
            used |= keys
            if _number(rules.get(f"{rule}_probability")) != 0:  # a rule that never fires maps
                self.lost(
                    f"discontinuation_rules.{rule}_*", f"APE has no rule stopping after {what}"
                )
        for key in rules:
            if key not in used:
                reason = (
                    "labels of the earlier discontinuation types; APE's reasons are fixed"
                    if key == "discontinuation_types"
                    else "no counterpart in APE's discontinuation rules"
                )
                self.lost(f"discontinuation_rules.{key}", reason)
        out_note = "discontinuation: no stop when stable at the longest interval, no premature"
        self.notes.append(out_note + " stops (the earlier rules have neither)")
        return out

    # -- the whole -----------------------------------------------------------------------

    def text_field(self, key: str, limit: int, default: str) -> str:
        value = self.take(key)
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            value = str(value)
        if not isinstance(value, str) or not value.strip():
            self.notes.append(f"{key}: {default!r} (the earlier file has none)")
            return default
        value = value.strip()
        if first_control(value) is not None:  # APE's names and versions are one clean line
            self.notes.append(f"{key}: control characters replaced by '?'")
            value = "".join("?" if is_control(c) else c for c in value)
        if len(value) > limit:
            self.notes.append(f"{key}: shortened to {limit} characters")
            value = value[:limit]
        return value

    def convert(self) -> dict[str, Any]:
        name = self.text_field("name", 200, "Earlier APE protocol")
        version = self.text_field("version", 50, "unknown")
        regimen = self.regimen()
        transitions = self.transitions()
        protocol: dict[str, Any] = {
            "name": name,
            "version": version,
            "description": "",
            "regimen": regimen,
            "disease_transitions": transitions,
            "treatment_effect": self.treatment_effect(transitions),
            "vision": self.vision(),
            "baseline": self.baseline(),
            "discontinuation": self.discontinuation(),
            "mortality": {"annual_probability": 0.0},
        }
        self.notes.append("mortality: none (the earlier protocol file states no mortality)")
        for key in self.data:
            if key in self.used or key in _INFORMATIONAL or key in _PROVENANCE:
                continue
            if isinstance(key, str) and key.endswith("_file"):
                reason = "names a parameter file of the earlier APE, which is not included"
            else:
                reason = _REASONS.get(str(key), "no counterpart in APE's protocol schema")
            self.lost(str(key), reason)
        protocol["description"] = self.description()
        return protocol

    def description(self) -> str:
        original = self.data.get("description")
        original = original.strip() if isinstance(original, str) else ""
        author, created = self.data.get("author"), self.data.get("created_date")
        origin = "Converted from a protocol of the earlier APE"
        if isinstance(author, str) and author.strip():
            origin += f" by {_shown(author.strip(), 200)}"
        if isinstance(created, (str, int, float)) and not isinstance(created, bool):
            origin += f", created {_shown(created, 40)}"
        origin += "."
        if self.unmapped:
            listed = ", ".join(u.field for u in self.unmapped)
            origin += (
                " Fields that do not map (APE's defaults or nearest values are used "
                f"instead): {listed}."
            )
        if len(origin) > MAX_DESCRIPTION:
            origin = origin[: MAX_DESCRIPTION - 1] + "…"
        room = MAX_DESCRIPTION - len(origin) - 2
        if room <= 0 or not original:
            return origin
        if len(original) > room:
            original = original[: room - 1] + "…"
        return f"{original}\n\n{origin}"


class _NoAliasDumper(yaml.SafeDumper):
    """APE's loader refuses anchors and aliases, so never write any."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _yaml(protocol: Protocol, conversion_source: str, unmapped: list[Unmapped]) -> str:
    header = [
        f"# Converted by APE from the earlier-APE protocol {_shown(conversion_source)}.",
        "# The original is kept unchanged; see docs/package-format.md for the mapping.",
    ]
    if unmapped:
        header.append("# Fields that do not map (APE's defaults or nearest values are used):")
        header.extend(f"#   - {_shown(u, 200)}" for u in unmapped)
    body: str = yaml.dump(
        protocol.model_dump(mode="json"),
        Dumper=_NoAliasDumper,
        sort_keys=False,
        allow_unicode=True,
        default_flow_style=False,
        width=88,
    )
    return "\n".join(header) + "\n" + body


def convert_protocol_data(data: dict[Any, Any], source: str = "<protocol>") -> ProtocolConversion:
    """Convert an already-parsed earlier protocol mapping (see `convert_protocol_text`)."""
    if not isinstance(data, dict):
        raise ProtocolError(f"{source}: an earlier-APE protocol must be a YAML mapping of fields")
    converter = _Converter(data)
    fields = converter.convert()
    try:
        protocol = Protocol.model_validate(fields)
    except ValidationError as exc:  # defensive: every part was checked on its own
        raise ProtocolError(f"{source}: cannot be converted ({exc.errors()[0]['msg']})") from None
    BaselinePopulation.model_validate(fields["baseline"])
    VisionModel.model_validate(fields["vision"])
    text = _yaml(protocol, source, converter.unmapped)
    loaded = parse_protocol(text, f"{source} (converted)")
    return ProtocolConversion(loaded, tuple(converter.unmapped), tuple(converter.notes))


def convert_protocol_text(text: str | bytes, source: str = "<protocol>") -> ProtocolConversion:
    """Convert earlier-APE protocol YAML into APE's schema.

    Raises `ProtocolError` when the text is not safe YAML (anchors, aliases, duplicate keys
    and deep nesting are refused) or not a mapping; otherwise always returns a protocol
    that validates, with the fields that do not map listed.
    """
    raw = text if isinstance(text, bytes) else text.encode("utf-8")
    if len(raw) > MAX_EARLIER_BYTES:
        raise ProtocolError(f"{source}: protocol is larger than {MAX_EARLIER_BYTES} bytes")
    try:
        data = load_yaml(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise ProtocolError(f"{source}: protocol file is not UTF-8 text") from None
    except ValueError as exc:
        raise ProtocolError(f"{source}: {exc}") from None
    return convert_protocol_data(data, source)


__all__ = [
    "ProtocolConversion",
    "Unmapped",
    "convert_protocol_data",
    "convert_protocol_text",
    "earlier_state",
]
