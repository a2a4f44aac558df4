"""Shared fixtures: tiny simulated tissues (made once per session, copied per test) and real data."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO / "benchmarks") not in sys.path:
    sys.path.insert(0, str(REPO / "benchmarks"))

from _real import data_dir  # noqa: E402  ($MANIFOLDSEG_DATA or ../shared/data), one lookup for tests and benchmarks


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = data_dir()
    if d is None:
        pytest.skip("real datasets not found: set MANIFOLDSEG_DATA or place them in ../shared/data")
    return d


@pytest.fixture(scope="session")
def _small_bins():
    import manifoldseg as ms

    return ms.datasets.simulate(mode="bins", width=80.0, height=80.0, random_state=0)


@pytest.fixture(scope="session")
def _small_transcripts():
    import manifoldseg as ms

    return ms.datasets.simulate(mode="transcripts", width=80.0, height=80.0, random_state=0)


@pytest.fixture
def small_bins(_small_bins):
    """About 60 cells as 1 um bins (a fresh copy per test)."""
    return _small_bins.copy()


@pytest.fixture
def small_transcripts(_small_transcripts):
    """About 60 cells as single transcripts (a fresh copy per test)."""
    return _small_transcripts.copy()
