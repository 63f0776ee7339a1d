"""``gbm``: a gradient-boosted grid model (LightGBM, Poisson objective).

Each (cell, period) is an example: the target is the cell's count in a window of the forecast
horizon, the features are multi-scale lagged counts of the cell and of rings of neighbours,
time-decayed counts, recency and stability, the category mix, seasonality and the city-wide
trend (:mod:`crimelens.forecast.gbm_features`). Training examples come from rolling origins
inside the training data, each seeing only the incidents before its own origin, so the model
learns how the past predicts the next window without ever reading it. The approach follows the
machine-learning entries of the NIJ Real-Time Crime Forecasting Challenge (Mohler & Porter
2018, "Rotational grid, PAI-maximizing crime forecasts", *Statistical Analysis and Data Mining*
11) and Wheeler & Steenbeek (2021, *J. Quant. Criminol.* 37); gradient boosting is LightGBM
(Ke et al. 2017, NeurIPS) with a Poisson log-likelihood.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from crimelens.exceptions import require_extra
from crimelens.forecast.base import Forecaster
from crimelens.forecast.gbm_features import FeatureBuilder, FeatureSpec
from crimelens.forecast.history import FloatArray, History, IntArray, parse_horizon, ring_sum
from crimelens.geo.grid import SquareGrid


def candidate_cells(history: History, max_age: float | None = None, neighbours: bool = True) -> IntArray:
    """Cells with an incident in the last ``max_age`` days (and their 8 neighbours)."""
    held = history.counts(max_age=max_age) > 0
    if neighbours:
        held |= ring_sum(held.astype(np.float64), history.grid, 1) > 0
    return np.flatnonzero(held).astype(np.int64)


def fallback_rate(history: History, period_days: float) -> FloatArray:
    """Expected count per cell from the last year's counts (used when a learner has too little
    history to train on)."""
    span = min(365.0, max(history.span_days, 1.0))
    return history.counts(max_age=span) * (period_days / span)


class GBMForecaster(Forecaster):
    """LightGBM Poisson regression on lagged multi-scale counts.

    Parameters
    ----------
    horizon : str or float
        The window the model is trained to forecast (``"7d"``); predictions for another
        horizon are scaled in proportion.
    train_days : float
        Span of training origins before the forecast origin (default 364 days).
    max_origins : int
        At most this many training origins, evenly spaced in ``train_days`` (default 26).
    lookback_days : tuple of float
        Lookbacks of the count features.
    rings : tuple of int
        Neighbour rings used as features.
    half_life_days : float
        Half-life of the decayed-count feature.
    n_categories : int
        Category-mix features for the most frequent categories.
    offset : bool
        Start the boosting from each cell's last-year rate (a log offset), so the trees learn
        multiplicative corrections to the long-run count instead of the count itself; this keeps
        the resolution of the very top cells that leaves of ``min_child_samples`` would average.
    zero_sample : float
        Share of zero-count training examples kept (weighted by its inverse so the Poisson fit
        stays unbiased); most cell-weeks are empty, so this cuts training time several-fold.
    n_estimators, learning_rate, num_leaves, min_child_samples, subsample, colsample_bytree, max_bin :
        LightGBM settings.
    n_jobs : int
        Threads for LightGBM.
    random_state : int
        Seed (bagging and column sampling); fits are deterministic given it.
    cell_size : float
        Cell size in metres when no ``grid`` is given.
    grid : SquareGrid, optional
        A fixed grid.

    Attributes
    ----------
    booster_ : lightgbm.Booster or None
        None when the history was too short to train on (fewer than ``2 * min_child_samples``
        examples or no incident in any target window); the forecast is then the last year's rate.
    cells_ : ndarray of int
        Cells modelled (recent footprint and its neighbours); other cells score 0.
    feature_names_ : list of str
    """

    name = "gbm"

    def __init__(self, *, horizon: str | float = "7d", train_days: float = 364.0, max_origins: int = 26,
                 lookback_days: tuple[float, ...] = (7.0, 28.0, 91.0, 182.0, 365.0, 730.0),
                 rings: tuple[int, ...] = (1, 2), half_life_days: float = 180.0, n_categories: int = 6,
                 offset: bool = True,
                 zero_sample: float = 0.25, n_estimators: int = 100, learning_rate: float = 0.08,
                 num_leaves: int = 31, min_child_samples: int = 200, subsample: float = 0.8,
                 colsample_bytree: float = 0.8, max_bin: int = 63,
                 n_jobs: int = 1, random_state: int = 0, cell_size: float = 200.0,
                 grid: SquareGrid | None = None) -> None:
        self.horizon = horizon
        self.train_days = train_days
        self.max_origins = max_origins
        self.lookback_days = lookback_days
        self.rings = rings
        self.half_life_days = half_life_days
        self.n_categories = n_categories
        self.offset = offset
        self.zero_sample = zero_sample
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.subsample = subsample
        self.colsample_bytree = colsample_bytree
        self.max_bin = max_bin
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.cell_size = cell_size
        self.grid = grid

    def spec(self, period_days: float) -> FeatureSpec:
        """The feature specification for a horizon of ``period_days``."""
        return FeatureSpec(period_days=period_days, lookback_days=tuple(self.lookback_days),
                           rings=tuple(self.rings), half_life_days=float(self.half_life_days),
                           n_categories=int(self.n_categories))

    def lgb_params(self) -> dict[str, Any]:
        """LightGBM training parameters."""
        return {
            "objective": "poisson", "learning_rate": float(self.learning_rate),
            "num_leaves": int(self.num_leaves), "min_data_in_leaf": int(self.min_child_samples),
            "bagging_fraction": float(self.subsample), "bagging_freq": 1 if self.subsample < 1 else 0,
            "feature_fraction": float(self.colsample_bytree), "num_threads": int(self.n_jobs),
            "max_bin": int(self.max_bin), "seed": int(self.random_state), "deterministic": True,
            "force_row_wise": True, "verbose": -1,
        }

    def origins(self, period_days: float, history: History) -> list[int]:
        """Training origins, in periods back from the forecast origin (1 = the last period)."""
        n_max = max(1, int(np.floor(min(self.train_days, history.span_days - period_days) / period_days)))
        k = max(1, min(int(self.max_origins), n_max))
        return sorted({round(v) for v in np.linspace(1, n_max, k)})

    def _fit(self, history: History) -> None:
        require_extra("lightgbm", "analysis")
        import lightgbm as lgb

        period = parse_horizon(self.horizon)
        self.cells_ = candidate_cells(history, max_age=max(self.lookback_days), neighbours=False)
        spec = self.spec(period)
        origins = self.origins(period, history)
        builder = FeatureBuilder(history, spec, max(origins), self.cells_)
        x = np.vstack([builder.features(j) for j in origins])
        y = np.concatenate([builder.target(j) for j in origins])
        base = np.concatenate([builder.offset(j) for j in origins]) if self.offset else np.zeros(len(y))
        rng = np.random.default_rng(self.random_state)
        frac = float(np.clip(self.zero_sample, 1e-3, 1.0))
        keep = (y > 0) | (rng.random(len(y)) < frac)
        weight = np.where(y[keep] > 0, 1.0, 1.0 / frac)
        self.feature_names_ = spec.names()
        self.period_days_ = period
        self.n_train_rows_ = int(keep.sum())
        if self.n_train_rows_ < 2 * int(self.min_child_samples) or not (y[keep] > 0).any():
            # too little history to learn from: fall back to the long-run rate (flagged)
            self.booster_ = None
            self.rate_ = fallback_rate(history, period)
            return
        data = lgb.Dataset(x[keep], y[keep], weight=weight, init_score=base[keep], feature_name=spec.names(),
                           free_raw_data=True, params={"max_bin": int(self.max_bin), "verbose": -1})
        self.booster_ = lgb.train(self.lgb_params(), data, num_boost_round=int(self.n_estimators))
        rate = np.zeros(history.grid.n_cells)
        margin = np.asarray(self.booster_.predict(builder.features(0), raw_score=True), dtype=np.float64)
        if self.offset:
            margin = margin + builder.offset(0)
        rate[self.cells_] = np.exp(margin)
        self.rate_ = rate

    def feature_importance(self) -> dict[str, float]:
        """Total gain of each feature in the fitted booster."""
        self.check_fitted()
        if self.booster_ is None:
            return {}
        gain = self.booster_.feature_importance(importance_type="gain")
        return {n: float(g) for n, g in zip(self.feature_names_, gain, strict=True)}

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        return np.asarray(self.rate_ * (horizon_days / self.period_days_), dtype=np.float64)
