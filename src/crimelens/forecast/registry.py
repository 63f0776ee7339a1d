"""Forecasters by name: ``make("gbm", n_jobs=2)``.

``deep`` needs PyTorch (the ``[deep]`` extra) and is imported only when asked for.
"""

from __future__ import annotations

import importlib
from typing import Any

from crimelens.exceptions import InputError
from crimelens.forecast.base import Forecaster

#: name -> "module:Class" (imported lazily, so optional extras load only when used).
MODELS: dict[str, str] = {
    "recent": "crimelens.forecast.recent:Recent",
    "retro_count": "crimelens.forecast.retro_count:RetroCount",
    "retro_kde": "crimelens.forecast.retro_kde:RetroKDE",
    "prospective": "crimelens.forecast.prospective:Prospective",
    "sepp": "crimelens.forecast.sepp:SEPP",
    "gbm": "crimelens.forecast.gbm:GBMForecaster",
    "ensemble": "crimelens.forecast.ensemble:Ensemble",
    "deep": "crimelens.forecast.deep:DeepForecaster",
    "auto": "crimelens.forecast.auto:Auto",
}

#: Models run by ``evaluate --models all`` (``deep`` joins when PyTorch is installed).
DEFAULT_SET: tuple[str, ...] = ("recent", "retro_count", "retro_kde", "prospective", "sepp", "gbm", "ensemble",
                                 "auto")


def model_class(name: str) -> type[Forecaster]:
    """The forecaster class registered as ``name``."""
    try:
        target = MODELS[name]
    except KeyError:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(MODELS)}") from None
    module, cls = target.split(":")
    klass: type[Forecaster] = getattr(importlib.import_module(module), cls)
    return klass


def make(name: str, **params: Any) -> Forecaster:
    """A forecaster by registry name with hyperparameters; parameters it lacks are ignored
    (so one call can pass ``n_jobs`` to the models that take it)."""
    klass = model_class(name)
    accepted = set(klass._param_names())
    return klass(**{k: v for k, v in params.items() if k in accepted})


def available(names: str | list[str] = "all") -> list[str]:
    """Resolve ``"all"`` or a comma-separated list to model names (checking each)."""
    if isinstance(names, str):
        if names.strip() == "all":
            out = list(DEFAULT_SET)
            if importlib.util.find_spec("torch") is not None:
                out.append("deep")
            return out
        names = [n.strip() for n in names.split(",") if n.strip()]
    for n in names:
        if n not in MODELS:
            raise InputError(f"unknown model {n!r}; choose from {', '.join(MODELS)}")
    return list(names)
