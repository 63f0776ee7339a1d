"""Rolling origins, and that nothing from a test window reaches the models or their features."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.forecast.evaluation import RollingOrigin
from crimelens.forecast.gbm_features import FeatureBuilder, FeatureSpec
from crimelens.forecast.history import History
from crimelens.geo.grid import SquareGrid


def test_weekly_origins_through_the_last_monday_of_2021() -> None:
    folds = RollingOrigin("2021-01-04", "2021-12-27", horizon="7d").folds()
    assert len(folds) == 52
    assert folds[0].origin == pd.Timestamp("2021-01-04", tz="UTC")
    assert folds[-1].origin == pd.Timestamp("2021-12-27", tz="UTC")
    assert all(f.end - f.origin == pd.Timedelta(days=7) for f in folds)
    assert len(RollingOrigin("2021-01-04", "2021-12-27", horizon="7d", step="28d")) == 13
    with pytest.raises(InputError):
        RollingOrigin("2021-02-01", "2021-01-01").folds()


def test_split_trains_strictly_before_each_origin(incidents: pd.DataFrame) -> None:
    splitter = RollingOrigin("2020-10-05", "2020-12-28", horizon="7d", step="14d", max_history_days=200)
    for fold, train, test in splitter.split(incidents):
        assert (train["occurred_at"] < fold.origin).all()
        assert (train["occurred_at"] >= fold.origin - pd.Timedelta(days=200)).all()
        assert ((test["occurred_at"] >= fold.origin) & (test["occurred_at"] < fold.end)).all()


def _with_future_signal(incidents: pd.DataFrame, origin: pd.Timestamp, cell_xy: tuple[float, float]) -> pd.DataFrame:
    """Add a burst of 200 incidents in one quiet cell, all in the week after ``origin``."""
    n = 200
    burst = pd.DataFrame({
        "occurred_at": origin + pd.to_timedelta(np.linspace(0, 6.9, n), unit="D"),
        "x": np.full(n, cell_xy[0]), "y": np.full(n, cell_xy[1]),
        "category": "burglary", "crs": incidents["crs"].iloc[0],
    })
    return pd.concat([incidents, burst], ignore_index=True)


@pytest.mark.parametrize("name", ["recent", "retro_count", "retro_kde", "prospective", "sepp", "gbm"])
def test_a_future_only_signal_is_not_learned(
    name: str, incidents: pd.DataFrame, grid: SquareGrid, origin: pd.Timestamp
) -> None:
    past = incidents[incidents["occurred_at"] < origin]
    counts = np.bincount(grid.cell_of(past["x"].to_numpy(), past["y"].to_numpy()), minlength=grid.n_cells)
    quiet = int(np.flatnonzero(counts == 0)[0]) if (counts == 0).any() else int(np.argmin(counts))
    cx, cy = grid.centres(np.array([quiet]))
    spiked = _with_future_signal(incidents, origin, (float(cx[0]), float(cy[0])))
    params = {"n_estimators": 30, "max_origins": 8} if name == "gbm" else {}
    surface = make(name, grid=grid, **params).fit(spiked, until=origin).predict(horizon="7d")
    order = surface.order(np.arange(grid.n_cells))
    rank = int(np.flatnonzero(order == quiet)[0])
    assert rank > grid.n_cells // 10, f"{name} ranked a future-only hot spot at {rank}"


def test_gbm_features_only_read_periods_before_their_origin(incidents: pd.DataFrame, grid: SquareGrid,
                                                            origin: pd.Timestamp) -> None:
    spec = FeatureSpec(period_days=7.0)
    hist = History.build(incidents, grid, origin)
    cells = np.arange(grid.n_cells, dtype=np.int64)
    base = FeatureBuilder(hist, spec, 10, cells)
    # wipe every incident younger than 4 periods: features of origins j >= 4 must not change
    old = History.build(incidents[incidents["occurred_at"] < origin - pd.Timedelta(days=28)], grid, origin)
    wiped = FeatureBuilder(old, spec, 10, cells)
    for j in range(4, 11):
        np.testing.assert_allclose(base.features(j), wiped.features(j), err_msg=f"origin {j}")
        np.testing.assert_array_equal(base.target(j + 1), wiped.target(j + 1))
    assert not np.allclose(base.features(0), wiped.features(0))
