"""Spatial crime forecasting: forecasters that return :class:`RiskSurface` objects, a registry,
count forecasts per area, model persistence, and backtests in :mod:`crimelens.forecast.evaluation`.

>>> from crimelens.forecast import make
>>> model = make("retro_count", lookback_days=365)
"""

from crimelens.forecast.base import Forecaster
from crimelens.forecast.history import History, parse_horizon
from crimelens.forecast.prospective import Prospective
from crimelens.forecast.recent import Recent
from crimelens.forecast.registry import DEFAULT_SET, MODELS, available, make, model_class
from crimelens.forecast.retro_count import RetroCount
from crimelens.forecast.retro_kde import RetroKDE
from crimelens.forecast.sepp import SEPP
from crimelens.forecast.surface import RiskSurface

__all__ = [
    "DEFAULT_SET",
    "MODELS",
    "SEPP",
    "Forecaster",
    "History",
    "Prospective",
    "Recent",
    "RetroCount",
    "RetroKDE",
    "RiskSurface",
    "available",
    "make",
    "model_class",
    "parse_horizon",
]
