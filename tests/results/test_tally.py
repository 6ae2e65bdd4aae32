"""Tallies of blocks of patients, added up, give the summary statistics of the whole: the
same JSON bytes as `compute_summary`, wherever the blocks are cut and in whatever order
they are added."""

from __future__ import annotations

import itertools

import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from apesim.engine import SimulationParameters, simulate
from apesim.engine.tables import compile_protocol
from apesim.protocol import resolve_protocol
from apesim.results.stats import compute_summary, summary_json, tally_block
from apesim.results.tally import Tally, summary_of
from tests.analysis.random_tables import simulations


def _blocks(
    patients: pa.Table, visits: pa.Table, cuts: list[int]
) -> list[tuple[pa.Table, pa.Table]]:
    """The patients cut into blocks of consecutive ids at `cuts`, each with its visits."""
    ids = sorted(patients.column("patient_id").to_pylist())
    edges = sorted({0, len(ids), *(c % (len(ids) + 1) for c in cuts)})
    out = []
    for a, b in itertools.pairwise(edges):
        members = pa.array(ids[a:b], pa.int32())
        out.append(
            (
                patients.filter(pc.is_in(patients.column("patient_id"), members)),
                visits.filter(pc.is_in(visits.column("patient_id"), members)),
            )
        )
    return out


def _summed(blocks: list[tuple[pa.Table, pa.Table]], years: float) -> str:
    total = Tally()
    for patients, visits in blocks:
        total.add(tally_block(patients, visits, years))
    return summary_json(summary_of(total, years))


@settings(max_examples=150, deadline=None)
@given(simulations(), st.lists(st.integers(0, 30), max_size=5), st.booleans())
def test_tallies_of_blocks_add_up_to_the_summary_of_the_whole(
    sim: tuple[pa.Table, pa.Table, float], cuts: list[int], backwards: bool
) -> None:
    patients, visits, years = sim
    blocks = _blocks(patients, visits, cuts)
    if backwards:  # addition is exact: the order does not matter
        blocks.reverse()
    assert _summed(blocks, years) == summary_json(compute_summary(patients, visits, years))


def test_tallies_of_engine_chunks_give_the_summary_of_the_run() -> None:
    for name in ("aflibercept_treat_and_extend", "prn_monthly"):
        params = SimulationParameters(patients=700, years=3.0, seed=11, recruitment_months=6)
        cp = compile_protocol(resolve_protocol(name).protocol)
        chunks = list(simulate(cp, params, chunk_size=97))
        whole = compute_summary(
            pa.concat_tables(c.patients for c in chunks),
            pa.concat_tables(c.visits for c in chunks),
            params.years,
        )
        blocks = [(c.patients, c.visits) for c in chunks]
        assert _summed(blocks, params.years) == summary_json(whole), name


def test_an_empty_tally_is_the_summary_of_no_patients() -> None:
    empty = summary_of(Tally(), 1.0)
    assert empty["patients"] == 0
    assert empty["vision"]["baseline"] == {"n": 0, "mean": None, "sd": None, "median": None}
