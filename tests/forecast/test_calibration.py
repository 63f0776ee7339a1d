"""Calibration checks: reliability by decile and PIT histograms, on counts drawn from known laws."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.forecast import make
from crimelens.forecast.calibration import decile_sums, fit_size, fold_parts, pit_histogram, summarise
from crimelens.forecast.evaluation import RollingOrigin, backtest, write_leaderboard
from crimelens.geo.grid import SquareGrid


def _means(n: int = 20_000, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(0.5, 2.0, n)


def test_poisson_counts_from_their_own_means_are_calibrated() -> None:
    mu = _means()
    y = np.random.default_rng(1).poisson(mu).astype(float)
    c = summarise(fold_parts(mu, y))
    assert c.ratio == pytest.approx(1.0, abs=0.03)
    assert c.reliability_error < 0.05
    assert c.pit_max_dev < 0.1
    assert sum(c.pit) == pytest.approx(1.0)


def test_doubled_means_and_overdispersion_are_caught() -> None:
    rng = np.random.default_rng(2)
    mu = _means()
    y = rng.poisson(mu).astype(float)
    assert summarise(fold_parts(2 * mu, y)).ratio == pytest.approx(0.5, abs=0.03)
    # negative binomial counts (size 0.7) read as Poisson: a U-shaped PIT histogram
    r = 0.7
    over = rng.negative_binomial(r, r / (r + mu)).astype(float)
    pois = pit_histogram(mu, over)
    assert pois[0] > 0.12 and pois[-1] > 0.12 and pois[4] < 0.09
    size = fit_size(mu, over)
    assert size == pytest.approx(r, rel=0.2)
    nb = pit_histogram(mu, over, size=size)
    assert np.max(np.abs(10 * nb - 1)) < 0.15 < np.max(np.abs(10 * pois - 1))


def test_decile_sums_keep_totals_and_order() -> None:
    mu = _means(1000)
    y = np.random.default_rng(3).poisson(mu).astype(float)
    e, o = decile_sums(mu, y)
    assert e.sum() == pytest.approx(mu.sum()) and o.sum() == y.sum()
    assert np.all(np.diff(e) >= 0)


def test_leaderboard_reports_calibration_for_every_model(incidents: pd.DataFrame, grid: SquareGrid,
                                                         tmp_path: Path) -> None:
    models = {"retro_count": make("retro_count"), "recent": make("recent"),
              "auto": make("auto", candidates=("retro_count", "retro_kde", "recent"), inner_folds=6,
                           per_category=False)}
    split = RollingOrigin("2020-11-02", "2021-02-01", horizon="7d", step="14d")
    rep = backtest(models, incidents, split, grid=grid)
    cal = rep.calibration_summary()
    assert set(cal) == set(models)
    # the retro_count total, recomputed independently
    exp_total = obs_total = 0.0
    for fold in split.folds():
        est = make("retro_count", grid=grid).fit(incidents, until=fold.origin)
        exp_total += est.predict(horizon="7d").expected().sum()
        w = incidents["occurred_at"]
        obs_total += ((w >= fold.origin) & (w < fold.end)).sum()
    assert cal["retro_count"].ratio == pytest.approx(obs_total / exp_total, rel=0.02)
    # auto is recalibrated on its inner folds: closer to observed in the flagged (top) decile
    assert abs(cal["auto"].top_decile_ratio - 1) < abs(cal["retro_count"].top_decile_ratio - 1)
    paths = write_leaderboard(rep, tmp_path, n_boot=100)
    board = json.loads(paths["json"].read_text())
    assert set(board["calibration"]) == set(models)
    assert "Calibration of expected counts" in paths["markdown"].read_text()
    assert paths["calibration_png"].stat().st_size > 10_000
