"""Count forecasts per area: series building, the four models and their backtest."""

from __future__ import annotations

import importlib.util

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError, NotFittedError
from crimelens.forecast.counts import ARIMA, ETS, GlobalGBM, SeasonalNaive, count_series, evaluate_counts


@pytest.fixture(scope="module")
def series() -> pd.DataFrame:
    """Weekly counts of 5 areas with different levels and an annual cycle, 3 years."""
    rng = np.random.default_rng(4)
    weeks = pd.date_range("2019-01-07", periods=156, freq="7D")
    season = 1 + 0.3 * np.sin(2 * np.pi * np.arange(156) / 52)
    levels = np.array([2.0, 5.0, 10.0, 20.0, 40.0])
    data = rng.poisson(np.outer(season, levels))
    return pd.DataFrame(data.astype(float), index=weeks, columns=[f"a{i}" for i in range(5)])


def test_count_series_zero_fills_weeks_and_days(incidents: pd.DataFrame) -> None:
    inc = incidents.assign(district=np.where(incidents["x"] < 441_200, "west", "east"))
    weekly = count_series(inc, "district", freq="W")
    assert list(weekly.columns) == ["east", "west"]
    assert (weekly.index.day_of_week == 0).all()
    assert weekly.to_numpy().sum() == len(inc)
    assert (np.diff(weekly.index.values).astype("timedelta64[D]").astype(int) == 7).all()
    daily = count_series(inc, "district", freq="D")
    assert daily.to_numpy().sum() == len(inc)
    with pytest.raises(InputError):
        count_series(inc, "beat")


_NEEDS_STATSFORECAST = pytest.mark.skipif(
    importlib.util.find_spec("statsforecast") is None,
    reason="statsforecast is not installed (make install adds it: pip install --no-deps -r requirements/no-deps.txt)",
)


@pytest.mark.parametrize("model", [SeasonalNaive(), pytest.param(ETS(), marks=_NEEDS_STATSFORECAST),
                                   pytest.param(ARIMA(), marks=_NEEDS_STATSFORECAST), GlobalGBM(n_estimators=50)])
def test_models_forecast_non_negative_means_inside_their_intervals(model, series: pd.DataFrame) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(NotFittedError):
        model.predict(4)
    fc = model.fit(series.iloc[:120]).predict(4, levels=(0.8, 0.95))
    assert len(fc) == 4 * 5
    assert (fc["mean"] >= 0).all()
    assert (fc["lo_95"] <= fc["lo_80"] + 1e-9).all() and (fc["hi_80"] <= fc["hi_95"] + 1e-9).all()
    assert (fc["ds"].unique() == series.index[120:124]).all()
    # a level-40 area is forecast above a level-2 area
    m = fc.groupby("area")["mean"].mean()
    assert m["a4"] > m["a0"]


def test_evaluate_counts_reports_mae_mase_and_coverage(series: pd.DataFrame) -> None:
    res = evaluate_counts({"seasonal_naive": SeasonalNaive(), "global_gbm": GlobalGBM()},
                          series, origins=[130, 140], h=4)
    assert set(res.columns) >= {"model", "mae", "mase", "coverage_80", "coverage_95", "folds"}
    assert (res["mae"] > 0).all() and (res["mase"] > 0).all()
    assert ((res["coverage_95"] >= res["coverage_80"]) & (res["coverage_95"] <= 1)).all()
    # a global model of the level beats repeating last year's noisy week on Poisson data
    by = res.set_index("model")
    assert by.loc["global_gbm", "mae"] < by.loc["seasonal_naive", "mae"]
