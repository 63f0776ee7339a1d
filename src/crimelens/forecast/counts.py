"""Count forecasts per area (district, beat, neighbourhood or grid cell) per day or week.

Four forecasters share one small interface, ``fit(series) -> self`` and
``predict(h, levels) -> frame`` of means and central prediction intervals:

* :class:`SeasonalNaive` -- the value one season ago (Hyndman & Athanasopoulos, *Forecasting:
  Principles and Practice*, 3rd ed., §5.2), intervals from the empirical quantiles of its
  in-sample errors;
* :class:`ETS` and :class:`ARIMA` -- statsforecast's ``AutoETS`` (Hyndman et al. 2002, *Int. J.
  Forecasting* 18) and ``AutoARIMA`` (Hyndman & Khandakar 2008, *J. Stat. Software* 27) per area;
* :class:`GlobalGBM` -- one LightGBM Poisson model across all areas on lags, rolling means and
  calendar terms (the "global model" of Montero-Manso & Hyndman 2021, *Int. J. Forecasting*
  37), forecasting recursively, with Poisson intervals.

:func:`evaluate_counts` backtests them over rolling origins with MAE, MASE (Hyndman & Koehler
2006, *Int. J. Forecasting* 22; scaled by the in-sample seasonal naive error) and the empirical
coverage of each interval. Series are wide frames: a ``DatetimeIndex`` of periods, one column
per area, counts as values (:func:`count_series` builds them from incidents).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Self

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from crimelens.exceptions import InputError, NotFittedError, require_extra

FloatArray = npt.NDArray[np.float64]
FREQS = {"D": "D", "day": "D", "W": "W-MON", "week": "W-MON"}


def count_series(incidents: pd.DataFrame, by: str, freq: str = "W", start: Any = None,
                 end: Any = None) -> pd.DataFrame:
    """Counts per period (rows) and area (columns), zeros filled.

    Weeks run Monday to Sunday (UTC) and are labelled by their Monday; days by their date.
    ``start``/``end`` bound the periods (``end`` exclusive); default: the data's range.
    """
    if by not in incidents.columns:
        raise InputError(f"incidents have no area column {by!r}")
    code = FREQS.get(freq)
    if code is None:
        raise InputError(f"freq must be one of {', '.join(FREQS)}")
    when = pd.DatetimeIndex(incidents["occurred_at"]).tz_convert("UTC").tz_localize(None).normalize()
    period = when if code == "D" else when - pd.to_timedelta(when.day_of_week, unit="D")
    frame = pd.DataFrame({"ds": period, "area": incidents[by].astype(str).to_numpy()})
    frame = frame[incidents[by].notna().to_numpy()]
    wide = frame.groupby(["ds", "area"]).size().unstack("area", fill_value=0)
    lo = pd.Timestamp(start).tz_localize(None) if start is not None else wide.index.min()
    hi = pd.Timestamp(end).tz_localize(None) if end is not None else wide.index.max() + pd.Timedelta(days=1)
    step = "D" if code == "D" else "7D"
    if code != "D":
        lo = lo - pd.Timedelta(days=lo.day_of_week)
    index = pd.date_range(lo, hi - pd.Timedelta(seconds=1), freq=step)
    return wide.reindex(index, fill_value=0).astype(np.float64).rename_axis("ds")


def _season(series: pd.DataFrame, season_length: int | None) -> int:
    if season_length:
        return int(season_length)
    step = (series.index[1] - series.index[0]).days if len(series.index) > 1 else 7
    return 7 if step == 1 else 52


def _frame(index: pd.DatetimeIndex, areas: Sequence[str], mean: FloatArray,
           bands: Mapping[float, tuple[FloatArray, FloatArray]]) -> pd.DataFrame:
    """Long frame ``area, ds, mean, lo_80, hi_80, ...`` from ``(h, areas)`` arrays."""
    out = pd.DataFrame({"area": np.repeat(np.asarray(areas, dtype=object), len(index)),
                        "ds": np.tile(index, len(areas)), "mean": mean.T.ravel()})
    for level, (lo, hi) in bands.items():
        out[f"lo_{round(level * 100)}"] = lo.T.ravel()
        out[f"hi_{round(level * 100)}"] = hi.T.ravel()
    return out


class _CountModel:
    """Shared parameter protocol and fitted check of the count forecasters."""

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters by name."""
        import inspect

        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params: Any) -> Self:
        """Set hyperparameters by name."""
        for k, v in params.items():
            if k not in self.get_params():
                raise InputError(f"{type(self).__name__} has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def _check(self) -> None:
        if not hasattr(self, "series_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit(series) first")

    def fit(self, series: pd.DataFrame) -> Self:
        """Remember the series (wide: periods × areas); models learn in :meth:`predict`."""
        if len(series) < 3 or series.shape[1] == 0:
            raise InputError("count series need at least three periods and one area")
        self.series_ = series.astype(np.float64)
        self.season_ = _season(series, getattr(self, "season_length", None))
        return self

    def predict(self, h: int, levels: Sequence[float] = (0.8, 0.95)) -> pd.DataFrame:
        """Means and central ``levels`` intervals for the next ``h`` periods (long frame)."""
        raise NotImplementedError

    def _future(self, h: int) -> pd.DatetimeIndex:
        idx = self.series_.index
        step = idx[-1] - idx[-2]
        return pd.DatetimeIndex([idx[-1] + step * (i + 1) for i in range(h)])


class SeasonalNaive(_CountModel):
    """The count one season earlier; intervals from in-sample seasonal-naive errors.

    Parameters
    ----------
    season_length : int, optional
        Periods per season (default 7 for daily, 52 for weekly series).
    """

    def __init__(self, *, season_length: int | None = None) -> None:
        self.season_length = season_length

    def predict(self, h: int, levels: Sequence[float] = (0.8, 0.95)) -> pd.DataFrame:
        """Means and intervals for the next ``h`` periods."""
        self._check()
        y = self.series_.to_numpy()
        m = min(self.season_, len(y) - 1)
        mean = np.stack([y[len(y) - m + (i % m)] for i in range(h)])
        err = y[m:] - y[:-m]
        bands = {lv: (np.clip(mean + np.quantile(err, (1 - lv) / 2, axis=0), 0, None),
                      mean + np.quantile(err, (1 + lv) / 2, axis=0)) for lv in levels}
        return _frame(self._future(h), list(self.series_.columns), mean, bands)


class _StatsForecast(_CountModel):
    """One statsforecast model per area."""

    def _model(self) -> Any:
        raise NotImplementedError

    def predict(self, h: int, levels: Sequence[float] = (0.8, 0.95)) -> pd.DataFrame:
        """Means and intervals for the next ``h`` periods."""
        self._check()
        require_extra("statsforecast", "analysis")
        lv = [round(v * 100) for v in levels]
        means, lows, highs = [], {v: [] for v in lv}, {v: [] for v in lv}  # type: ignore[var-annotated]
        for area in self.series_.columns:
            y = self.series_[area].to_numpy()
            try:
                fc = self._model().forecast(y=y, h=h, level=lv)
            except (ValueError, np.linalg.LinAlgError, ZeroDivisionError):  # a degenerate series
                fc = {"mean": np.full(h, y.mean()), **{f"lo-{v}": np.full(h, y.min()) for v in lv},
                      **{f"hi-{v}": np.full(h, y.max()) for v in lv}}
            means.append(np.clip(fc["mean"], 0, None))
            for v in lv:
                lows[v].append(np.clip(fc[f"lo-{v}"], 0, None))
                highs[v].append(fc[f"hi-{v}"])
        mean = np.stack(means, axis=1)
        bands = {lvl: (np.stack(lows[v], 1), np.stack(highs[v], 1)) for lvl, v in zip(levels, lv, strict=True)}
        return _frame(self._future(h), list(self.series_.columns), mean, bands)


class ETS(_StatsForecast):
    """statsforecast ``AutoETS`` per area (seasonal when the series spans two seasons).

    Parameters
    ----------
    season_length : int, optional
        Periods per season (default 7 daily, 52 weekly).
    """

    def __init__(self, *, season_length: int | None = None) -> None:
        self.season_length = season_length

    def _model(self) -> Any:
        from statsforecast.models import AutoETS

        season = self.season_ if len(self.series_) >= 2 * self.season_ else 1
        return AutoETS(season_length=season)


class ARIMA(_StatsForecast):
    """statsforecast ``AutoARIMA`` per area.

    Parameters
    ----------
    season_length : int, optional
        Periods per season (default 7 daily, 52 weekly; weekly series use non-seasonal ARIMA
        plus nothing else, since a 52-period seasonal ARIMA is slow and unstable).
    """

    def __init__(self, *, season_length: int | None = None) -> None:
        self.season_length = season_length

    def _model(self) -> Any:
        from statsforecast.models import AutoARIMA

        season = self.season_ if self.season_ <= 12 and len(self.series_) >= 2 * self.season_ else 1
        return AutoARIMA(season_length=season)


class GlobalGBM(_CountModel):
    """One LightGBM Poisson model across all areas, forecasting recursively.

    Parameters
    ----------
    lags : sequence of int
        Lagged counts used as features (default 1, 2, 3, 4 and the season).
    windows : sequence of int
        Rolling means of the last ``w`` periods.
    n_estimators, learning_rate, num_leaves : LightGBM settings.
    season_length : int, optional
    random_state : int
    n_jobs : int
    """

    def __init__(self, *, lags: Sequence[int] = (1, 2, 3, 4), windows: Sequence[int] = (4, 13, 52),
                 n_estimators: int = 200, learning_rate: float = 0.1, num_leaves: int = 15,
                 season_length: int | None = None, random_state: int = 0, n_jobs: int = 1) -> None:
        self.lags = lags
        self.windows = windows
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.season_length = season_length
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _features(self, y: FloatArray, t: int, level: FloatArray) -> FloatArray:
        """Features for predicting row ``t`` of ``y`` (periods × areas) from rows ``< t``."""
        lags = sorted({*self.lags, self.season_})
        cols = [y[t - lag] if t - lag >= 0 else np.full(y.shape[1], np.nan) for lag in lags]
        cols += [y[max(0, t - w): t].mean(axis=0) for w in self.windows]
        cols.append(level)
        phase = 2 * np.pi * (t % self.season_) / self.season_
        cols += [np.full(y.shape[1], np.sin(phase)), np.full(y.shape[1], np.cos(phase))]
        return np.column_stack(cols)

    def predict(self, h: int, levels: Sequence[float] = (0.8, 0.95)) -> pd.DataFrame:
        """Means and Poisson intervals for the next ``h`` periods."""
        self._check()
        require_extra("lightgbm", "analysis")
        import lightgbm as lgb

        y = self.series_.to_numpy()
        n = len(y)
        start = max(1, n - 3 * self.season_)
        level = y.mean(axis=0)
        x = np.vstack([self._features(y, t, level) for t in range(start, n)])
        target = np.concatenate([y[t] for t in range(start, n)])
        params = {"objective": "poisson", "learning_rate": self.learning_rate, "num_leaves": self.num_leaves,
                  "min_data_in_leaf": 20, "num_threads": self.n_jobs, "seed": self.random_state,
                  "deterministic": True, "force_row_wise": True, "verbose": -1}
        booster = lgb.train(params, lgb.Dataset(x, target), num_boost_round=int(self.n_estimators))
        path = np.vstack([y, np.zeros((h, y.shape[1]))])
        for i in range(h):
            path[n + i] = booster.predict(self._features(path, n + i, level))
        mean = path[n:]
        bands = {lv: (stats.poisson.ppf((1 - lv) / 2, mean), stats.poisson.ppf((1 + lv) / 2, mean))
                 for lv in levels}
        return _frame(self._future(h), list(self.series_.columns), mean, bands)


COUNT_MODELS: dict[str, type[_CountModel]] = {
    "seasonal_naive": SeasonalNaive, "ets": ETS, "arima": ARIMA, "global_gbm": GlobalGBM,
}


def evaluate_counts(models: Mapping[str, _CountModel], series: pd.DataFrame, *, origins: Sequence[int],
                    h: int, levels: Sequence[float] = (0.8, 0.95)) -> pd.DataFrame:
    """Rolling-origin backtest of count forecasters.

    Parameters
    ----------
    models : mapping
        Count forecasters by name.
    series : DataFrame
        Wide counts (periods × areas).
    origins : sequence of int
        Row positions of the forecast origins: each model is fitted on ``series[:origin]`` and
        scored on ``series[origin:origin + h]``.
    h : int
        Periods ahead.
    levels : sequence of float
        Prediction interval levels whose empirical coverage is reported.

    Returns
    -------
    DataFrame
        One row per model: ``mae``, ``mase`` (MAE over the in-sample one-season naive MAE,
        averaged over areas and origins), ``coverage_80`` ... and ``folds``.
    """
    rows = []
    for name, model in models.items():
        errs, scaled, cover = [], [], {lv: [] for lv in levels}  # type: ignore[var-annotated]
        for origin in origins:
            train, test = series.iloc[:origin], series.iloc[origin: origin + h]
            if len(test) < h:
                raise InputError("an origin leaves fewer than h periods to test on")
            est = type(model)(**model.get_params()).fit(train)
            fc = est.predict(h, levels)
            actual = test.to_numpy().T.ravel()
            err = np.abs(fc["mean"].to_numpy() - actual)
            m = est.season_ if len(train) > est.season_ else 1
            y = train.to_numpy()
            scale = np.abs(y[m:] - y[:-m]).mean(axis=0)
            scale = np.where(scale > 0, scale, np.nan)
            errs.append(err.mean())
            scaled.append(np.nanmean(err.reshape(len(series.columns), h).mean(axis=1) / scale))
            for lv in levels:
                tag = round(lv * 100)
                cover[lv].append(((actual >= fc[f"lo_{tag}"]) & (actual <= fc[f"hi_{tag}"])).mean())
        row: dict[str, Any] = {"model": name, "mae": float(np.mean(errs)), "mase": float(np.nanmean(scaled)),
                               "folds": len(origins)}
        row.update({f"coverage_{round(lv * 100)}": float(np.mean(cover[lv])) for lv in levels})
        rows.append(row)
    return pd.DataFrame(rows)
