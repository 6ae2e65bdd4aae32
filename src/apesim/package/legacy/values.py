"""The earlier values in APE's terms: vision letters, disease states, discontinuations and
deaths, and the ranges of APE's integer columns."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from apesim.errors import PackageFormatError, PackageLimitError
from apesim.package.legacy.columns import BoolArray, Columns, FloatArray, IntArray
from apesim.package.legacy.format import DEATH_TYPES, REASON_OF_TYPE
from apesim.package.legacy.names import shown
from apesim.protocol.convert import earlier_state
from apesim.protocol.schema import STATES
from apesim.results.schema import DISCONTINUATION_REASONS

INT16_MAX, INT32_MAX = 2**15 - 1, 2**31 - 1


def vision_letters(columns: Columns, col: str) -> tuple[IntArray, FloatArray | None]:
    """Letters as APE stores them: rounded half up and clipped to 0..100. The originals are
    returned too when that changed any value (they are kept in the extra table)."""
    values = columns.number(col, required=True)
    assert values is not None
    letters = np.clip(np.floor(values + 0.5), 0, 100).astype(np.int64)
    return letters, (values if np.any(letters != values) else None)


def changed_note(what: str, changed: int, how: str, kept_in: str) -> list[str]:
    """The sentence the imported event states for values the conversion changed (none: [])."""
    if not changed:
        return []
    values = "value" if changed == 1 else "values"
    return [f"{what}: {changed:,} {values} {how} (as written in {kept_in})"]


def int32_days(name: str, col: str, values: IntArray) -> IntArray:
    """Days from the simulation's start (day 0), refused unless they fit APE's day columns:
    the format's days are never negative (the same rule as for APE's own packages)."""
    if values.size and (values.min() < 0 or values.max() > INT32_MAX):
        raise PackageFormatError(
            f"{name}: {col} gives a day outside 0..{INT32_MAX:,} (days count from the "
            "simulation's start); APE cannot hold this simulation",
            code="legacy.range",
        )
    return values


def int16_count(name: str, col: str, values: IntArray) -> IntArray:
    """Counts per patient, refused unless they fit APE's int16 columns."""
    if values.size and (values.min() < 0 or values.max() > INT16_MAX):
        raise PackageLimitError(
            f"{name}: {col} must lie in 0..{INT16_MAX:,} per patient", code="legacy.range"
        )
    return values


def dictionary_array(
    indices: npt.ArrayLike, dictionary: pa.Array, mask: BoolArray | None = None
) -> pa.Array:
    """A dictionary-encoded column of APE's schemas from int8 indices (null where `mask`)."""
    return pa.DictionaryArray.from_arrays(
        pa.array(np.asarray(indices, dtype=np.int8), pa.int8(), mask=mask), dictionary
    )


def map_states(name: str, col: str, values: pa.Array) -> npt.NDArray[np.int8]:
    """Earlier state strings -> indices into APE's STATES (-1 where missing); a state APE
    does not know is refused."""
    encoded = values.dictionary_encode()
    lookup = []
    for raw in encoded.dictionary.to_pylist():
        state = earlier_state(raw)
        if state is None:
            raise PackageFormatError(
                f"{name}: {col} {shown(raw)} is not a disease state APE knows",
                code="legacy.state",
            )
        lookup.append(STATES.index(state))
    indices = np.asarray(encoded.indices.fill_null(-1).to_numpy(zero_copy_only=False))
    table = np.asarray([*lookup, -1], dtype=np.int8)  # index -1 picks the trailing -1
    return table[indices.astype(np.int64)]


def _clean(value: object) -> str:
    return value.strip().lower() if isinstance(value, str) else ""


def stops(
    n: int,
    flag: npt.NDArray[np.int8] | None,
    time: FloatArray | None,
    kinds: pa.Array | None,
    reasons: pa.Array | None,
    last_day: IntArray,
) -> tuple[BoolArray, BoolArray, IntArray, npt.NDArray[np.int8]]:
    """Who stopped treatment, who died, on which day, and APE's reason for each stop."""
    time = np.full(n, np.nan) if time is None else time
    known = ~np.isnan(time)
    stopped = known.copy() if flag is None else np.where(flag >= 0, flag == 1, known)
    kind = [_clean(v) for v in (kinds.to_pylist() if kinds is not None else [None] * n)]
    why = [_clean(v) for v in (reasons.to_pylist() if reasons is not None else [None] * n)]
    died = stopped & np.array(
        [k in DEATH_TYPES or (not k and w in DEATH_TYPES) for k, w in zip(kind, why, strict=True)],
        dtype=bool,
    )
    day = np.where(known, np.floor(np.where(known, time, 0) + 0.5), last_day).astype(np.int64)
    reason = np.array(
        [
            DISCONTINUATION_REASONS.index(REASON_OF_TYPE.get(k or w, "premature"))
            for k, w in zip(kind, why, strict=True)
        ],
        dtype=np.int8,
    )
    return stopped & ~died, died, day, reason
