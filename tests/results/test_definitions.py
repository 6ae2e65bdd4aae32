"""The statistics' definitions and the data dictionary have one source each."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from apesim.protocol import schema as protocol_schema
from apesim.results import definitions
from apesim.results.categories import SEX_VALUES, STATES
from apesim.results.dictionary import PATIENTS, TABLES, VISITS
from apesim.results.schema import METADATA_SCHEMA, PATIENTS_SCHEMA, VISITS_SCHEMA

MODEL = Path(__file__).resolve().parents[2] / "docs" / "model.md"


def test_docs_model_shows_the_definitions_the_readme_shows() -> None:
    """docs/model.md's table is `definitions.markdown()`; APE_UPDATE_DOCS=1 rewrites it."""
    text = MODEL.read_text(encoding="utf-8")
    start, end = text.index(definitions.BEGIN), text.index(definitions.END) + len(definitions.END)
    if os.environ.get("APE_UPDATE_DOCS"):
        text = text[:start] + definitions.markdown() + text[end:]
        MODEL.write_text(text, encoding="utf-8")
    assert text[start:end] == definitions.markdown()


def test_every_statistic_of_the_summary_is_defined() -> None:
    named = " ".join(name for name, _ in definitions.DEFINITIONS)
    for key in ("patients", "patient_years", "injections.total", "vision.year1", "deaths"):
        assert f"`{key}`" in named


def test_the_dictionary_has_exactly_the_schemas_columns() -> None:
    """Each table's columns are its Arrow schema's, in order; a null is explained exactly
    where the schema allows one."""
    for table, schema in zip(
        TABLES, (PATIENTS_SCHEMA, VISITS_SCHEMA, METADATA_SCHEMA), strict=True
    ):
        assert [c.name for c in table.columns] == schema.names
        for column in table.columns:
            assert column.description
            assert (column.null_means is not None) == schema.field(column.name).nullable


def test_the_categories_are_the_protocols_states_and_the_schemas_values() -> None:
    assert STATES == protocol_schema.STATES
    assert PATIENTS.column("sex").categories == SEX_VALUES
    assert VISITS.column("state").categories == STATES


def test_the_dictionary_loads_no_arrow() -> None:
    code = "import sys, apesim.results.dictionary; print('pyarrow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
