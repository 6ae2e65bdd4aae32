"""Sweep files written by the tests: small sweeps of the shipped treat-and-extend protocol."""

from __future__ import annotations

from pathlib import Path

import pytest

DISTRIBUTIONS = """\
name: T&E PSA
protocol: v1_aflibercept_treat_and_extend
patients: 150
years: 1.5
seed: 2026
draws: 6
parameters:
  mortality.annual_probability: {distribution: beta, alpha: 4, beta: 96}
  vision.NAIVE.treated.mean: {distribution: normal, mean: 5.5, sd: 1.0}
  regimen.extend_days: {distribution: uniform, low: 7, high: 28}
  discontinuation.premature_annual_probability: {distribution: gamma, shape: 2, scale: 0.025}
"""


def write_sweep(folder: Path, text: str = DISTRIBUTIONS, name: str = "psa.yaml") -> Path:
    path = folder / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def sweep_file(tmp_path: Path) -> Path:
    return write_sweep(tmp_path)
