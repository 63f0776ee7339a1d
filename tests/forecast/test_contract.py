"""Every registered forecaster honours the estimator contract (ARCHITECTURE §2, §6)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from crimelens.exceptions import InputError, NotFittedError
from crimelens.forecast import MODELS, RiskSurface, make
from crimelens.geo.grid import SquareGrid

FAST = {"gbm": {"n_estimators": 30, "max_origins": 8}, "deep": {"epochs": 1, "max_origins": 4}}
NAMES = [n for n in MODELS if n != "deep" or importlib.util.find_spec("torch") is not None]


def build(name: str, grid: SquareGrid | None = None) -> object:
    params = dict(FAST.get(name, {}))
    if name == "ensemble":
        params["members"] = (make("retro_count"), make("gbm", **FAST["gbm"]))
    return make(name, grid=grid, **params)


@pytest.mark.parametrize("name", NAMES)
def test_init_stores_params_only_and_clone_round_trips(name: str, grid: SquareGrid) -> None:
    est = build(name, grid)
    params = est.get_params()  # type: ignore[attr-defined]
    assert not any(k.endswith("_") for k in vars(est)), "no learned state before fit"
    twin = clone(est)
    assert type(twin) is type(est)
    assert set(twin.get_params()) == set(params)
    for k, v in params.items():
        if not isinstance(v, tuple | list):
            assert twin.get_params()[k] == v


@pytest.mark.parametrize("name", NAMES)
def test_predict_before_fit_raises(name: str) -> None:
    with pytest.raises(NotFittedError):
        build(name).predict(horizon="7d")  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", NAMES)
def test_fit_predict_is_deterministic_and_leaves_input_alone(
    name: str, incidents: pd.DataFrame, grid: SquareGrid, origin: pd.Timestamp
) -> None:
    before = incidents.copy(deep=True)
    a = build(name, grid).fit(incidents, until=origin).predict(horizon="7d")  # type: ignore[attr-defined]
    b = build(name, grid).fit(incidents, until=origin).predict(horizon="7d")  # type: ignore[attr-defined]
    pd.testing.assert_frame_equal(incidents, before)
    assert isinstance(a, RiskSurface)
    assert a.score.shape == (grid.n_cells,)
    assert np.isfinite(a.score).all()
    np.testing.assert_array_equal(a.score, b.score)
    assert a.start == origin and a.end == origin + pd.Timedelta(days=7)
    assert a.model == name
    assert a.score.max() > 0


@pytest.mark.parametrize("name", NAMES)
def test_fit_ignores_incidents_at_or_after_origin(
    name: str, incidents: pd.DataFrame, grid: SquareGrid, origin: pd.Timestamp
) -> None:
    past = incidents[incidents["occurred_at"] < origin]
    full = build(name, grid).fit(incidents, until=origin).predict(horizon="7d")  # type: ignore[attr-defined]
    cut = build(name, grid).fit(past, until=origin).predict(horizon="7d")  # type: ignore[attr-defined]
    np.testing.assert_allclose(full.score, cut.score)


def test_unknown_parameter_and_model_are_input_errors() -> None:
    with pytest.raises(InputError):
        make("retro_count").set_params(bogus=1)
    with pytest.raises(InputError):
        make("no_such_model")


def test_fit_without_grid_builds_one_from_cell_size(incidents: pd.DataFrame) -> None:
    est = make("retro_count", cell_size=250.0).fit(incidents)
    assert est.grid_.cell_size == 250.0
    assert est.grid_.crs == "EPSG:32616"
    assert est.until_ == incidents["occurred_at"].max().floor("D") + pd.Timedelta(days=1)


@pytest.mark.parametrize("name", NAMES)
def test_short_histories_still_forecast(name: str, incident_factory) -> None:  # type: ignore[no-untyped-def]
    tiny = incident_factory(days=10, daily=3.0, seed=2)
    for frame in (tiny, tiny.iloc[:1]):
        surface = build(name).fit(frame).predict(horizon="1d")  # type: ignore[attr-defined]
        assert np.isfinite(surface.score).all() and surface.score.max() > 0
