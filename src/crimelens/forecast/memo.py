"""A process-wide memo of candidate scores, keyed by what the candidate saw.

``auto`` backtests its candidates inside the training data at every origin; consecutive origins
share most of those inner folds, and the outer backtest fits the same candidates on the same
past. The key is a digest of the model's class and parameters, the horizon, the grid and the
history (cells, ages in whole seconds, categories, origin), so a hit means the candidate
would see exactly the same incidents. Scores are kept as float32 (returned as float64, the same
values whether they came from the memo or not).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import numpy as np
import numpy.typing as npt
from sklearn.base import clone

from crimelens.forecast.base import Forecaster
from crimelens.forecast.history import FloatArray, History

_MEMO: OrderedDict[str, npt.NDArray[np.float32]] = OrderedDict()
MAX_ENTRIES = 1024


def clear() -> None:
    """Forget every memoised score."""
    _MEMO.clear()


def digest(model: Forecaster, history: History, horizon_days: float) -> str:
    """The key of ``model`` fitted on ``history`` and scored for ``horizon_days``."""
    h = hashlib.blake2b(digest_size=20)
    g = history.grid
    h.update(repr((type(model).__name__, model, float(horizon_days), history.until.value, g.x0, g.y0,
                   g.cell_size, g.nx, g.ny, history.categories)).encode())
    h.update(np.ascontiguousarray(history.cell).tobytes())
    h.update(np.rint(history.age * 86_400.0).astype(np.int64).tobytes())  # whole seconds
    h.update(np.ascontiguousarray(history.category).tobytes())
    return h.hexdigest()


def remember(model: Forecaster, history: History, horizon_days: float, score: FloatArray) -> FloatArray:
    """Store ``score`` (of ``model`` fitted on ``history``) unless already known; returns the memo's
    value."""
    key = digest(model, history, horizon_days)
    hit = _MEMO.get(key)
    if hit is None:
        hit = np.asarray(score, dtype=np.float32)
        _MEMO[key] = hit
        if len(_MEMO) > MAX_ENTRIES:
            _MEMO.popitem(last=False)
    else:
        _MEMO.move_to_end(key)
    return hit.astype(np.float64)


def score(model: Forecaster, history: History, horizon_days: float) -> FloatArray:
    """The scores of a clone of ``model`` fitted on ``history``, from the memo when known."""
    key = digest(model, history, horizon_days)
    hit = _MEMO.get(key)
    if hit is not None:
        _MEMO.move_to_end(key)
        return hit.astype(np.float64)
    est = clone(model)
    est._fit_history(history)
    return remember(model, history, horizon_days, est._score(history, horizon_days))
