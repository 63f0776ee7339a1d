"""Seeded incidents with districts for the registry tests (the forecasting fixtures' generator)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelens.registry import ModelRegistry
from tests.forecast.conftest import X0, Y0, make_incidents


def with_districts(frame: pd.DataFrame) -> pd.DataFrame:
    """Four districts: the quadrants of the fixture's 2.4 km block."""
    out = frame.copy()
    east = out["x"].to_numpy() >= X0 + 1200
    north = out["y"].to_numpy() >= Y0 + 1200
    out["district"] = np.where(north, "N", "S").astype(object) + np.where(east, "E", "W").astype(object)
    return out


@pytest.fixture(scope="session")
def city() -> pd.DataFrame:
    """About 3,000 incidents over 200 days, with a district per incident."""
    return with_districts(make_incidents(days=200, daily=14.0, seed=3))


@pytest.fixture
def registry(tmp_path):  # type: ignore[no-untyped-def]
    """An empty registry in a temporary folder."""
    return ModelRegistry(tmp_path / "models")
