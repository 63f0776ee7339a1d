"""Seeded cities shared by the synth tests (generated once per session)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelens.synth import CityConfig, SyntheticCity, generate_city

SIZE_M = 10_000.0


@pytest.fixture(scope="session")
def city() -> SyntheticCity:
    """A realistic city: a year, 40,000 incidents on 10 × 10 km."""
    return generate_city(CityConfig(n_incidents=40_000, days=365, seed=11, size_m=SIZE_M))


@pytest.fixture(scope="session")
def poisson_city() -> SyntheticCity:
    """A homogeneous Poisson city of the same size."""
    return generate_city(CityConfig(n_incidents=30_000, days=365, seed=11, size_m=SIZE_M, kind="poisson"))


@pytest.fixture(scope="session")
def small_city() -> SyntheticCity:
    """A small realistic city for format tests."""
    return generate_city(CityConfig(n_incidents=3_000, days=60, seed=5, size_m=6_000.0))


def local_times(frame: pd.DataFrame, tz: str = "America/Chicago") -> pd.Series:
    """Occurrence times in local time."""
    return frame["occurred_at"].dt.tz_convert(tz)


def cell_counts(city: SyntheticCity, frame: pd.DataFrame | None = None) -> np.ndarray:
    """Incidents per cell of the truth grid."""
    f = city.incidents if frame is None else frame
    cells = city.truth.grid.cell_of(f["x"].to_numpy(), f["y"].to_numpy())
    return np.bincount(cells[cells >= 0], minlength=city.truth.grid.n_cells)
