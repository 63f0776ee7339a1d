"""Backtests of spatial forecasters: rolling-origin splits, the metrics (hit rate, PAI, PEI*,
Poisson log score) computed in one place for every model, bootstrap comparisons with the
baseline, and leaderboard writers."""

from crimelens.forecast.evaluation.backtest import backtest, footprint, study_grid
from crimelens.forecast.evaluation.leaderboard import plot_pai, write_leaderboard
from crimelens.forecast.evaluation.metrics import (
    CoverageScore,
    best_possible,
    captured,
    hit_rate,
    n_flagged,
    oracle_pai,
    pai,
    pei,
    poisson_log_score,
    score_coverage,
)
from crimelens.forecast.evaluation.report import BacktestReport, block_bootstrap_mean
from crimelens.forecast.evaluation.splitter import Fold, RollingOrigin

__all__ = [
    "BacktestReport",
    "CoverageScore",
    "Fold",
    "RollingOrigin",
    "backtest",
    "best_possible",
    "block_bootstrap_mean",
    "captured",
    "footprint",
    "hit_rate",
    "n_flagged",
    "oracle_pai",
    "pai",
    "pei",
    "plot_pai",
    "poisson_log_score",
    "score_coverage",
    "study_grid",
    "write_leaderboard",
]
