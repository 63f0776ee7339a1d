"""Save fitted forecasters with their metadata, and load them back for prediction.

A saved model is one file: a pickle of ``{"format": ..., "metadata": ..., "model": ...}``; the
metadata is also written beside it as ``<file>.json`` for people and catalogues. Metadata holds
the model name and parameters, the training window, the grid, a SHA-256 of the training data
(``occurred_at``, ``x``, ``y``, ``category``), the crimelens version and any metrics passed in.

Pickle runs code when loaded: load only files you or your organisation wrote.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.forecast.base import Forecaster
from crimelens.forecast.surface import _jsonable

FORMAT = "crimelens-forecaster/1"


def data_hash(incidents: pd.DataFrame) -> str:
    """SHA-256 of the training incidents' ``occurred_at``, ``x``, ``y`` and ``category``,
    independent of row order."""
    cols = [c for c in ("occurred_at", "x", "y", "category") if c in incidents.columns]
    frame = incidents[cols]
    rows = pd.util.hash_pandas_object(frame, index=False).to_numpy()
    digest = hashlib.sha256(np.sort(rows).tobytes())
    digest.update(",".join(cols).encode())
    return digest.hexdigest()


def model_metadata(model: Forecaster, *, training: pd.DataFrame | None = None,
                   metrics: dict[str, Any] | None = None) -> dict[str, Any]:
    """The metadata saved with a fitted model."""
    from crimelens import __version__

    model.check_fitted()
    hist = model.history_
    g = model.grid_
    first = model.until_ - pd.Timedelta(days=hist.span_days)
    return {
        "format": FORMAT,
        "model": model.name,
        "class": f"{type(model).__module__}.{type(model).__qualname__}",
        "params": {k: _jsonable(v) for k, v in model.get_params().items() if k != "grid"},
        "training_window": {"start": first.isoformat(), "end": model.until_.isoformat(),
                            "incidents": int(model.n_train_)},
        "grid": {"x0": g.x0, "y0": g.y0, "cell_size": g.cell_size, "nx": g.nx, "ny": g.ny, "crs": g.crs},
        "categories": list(model.categories_),
        "data_sha256": data_hash(training) if training is not None else None,
        "metrics": metrics or {},
        "crimelens_version": __version__,
        "saved_at": pd.Timestamp.now(tz="UTC").isoformat(),
    }


def save_model(model: Forecaster, path: str | Path, *, training: pd.DataFrame | None = None,
               metrics: dict[str, Any] | None = None) -> Path:
    """Save a fitted ``model`` to ``path`` (and its metadata to ``path + '.json'``).

    Parameters
    ----------
    model : Forecaster
        A fitted forecaster.
    path : str or Path
        Output file.
    training : DataFrame, optional
        The training incidents, to record their hash.
    metrics : dict, optional
        Backtest metrics to keep with the model.

    Returns
    -------
    Path
    """
    meta = model_metadata(model, training=training, metrics=metrics)
    p = Path(path)
    with p.open("wb") as fh:
        pickle.dump({"format": FORMAT, "metadata": meta, "model": model}, fh, protocol=pickle.HIGHEST_PROTOCOL)
    Path(f"{p}.json").write_text(json.dumps(meta, indent=2, default=str), encoding="utf-8")
    return p


def load_model(path: str | Path) -> tuple[Forecaster, dict[str, Any]]:
    """Load a model saved by :func:`save_model`; returns ``(model, metadata)``.

    Only load files from a trusted origin: unpickling can run code.
    """
    p = Path(path)
    with p.open("rb") as fh:
        payload = pickle.load(fh)
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{p} is not a saved crimelens forecaster")
    model = payload["model"]
    if not isinstance(model, Forecaster):
        raise InputError(f"{p} does not hold a forecaster")
    model.check_fitted()
    return model, dict(payload["metadata"])
