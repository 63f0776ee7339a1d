"""Registering fitted forecasters and classifiers: manifests from their metadata, scored and audited.

:func:`score_forecaster` gives a version its rolling-backtest metrics (``hit_rate@0.05``,
``pai@0.05`` averaged over the last ``folds`` windows before the training end) and its bias audit
(the top cells of the last window by group, :func:`crimelens.governance.fairness.audit_selection`).
:func:`register_forecaster` / :func:`register_classifier` save the artifact with the existing
persistence code and add it to a :class:`ModelRegistry` as a candidate whose parent is the
current production version.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.forecast.base import Forecaster
from crimelens.forecast.evaluation.metrics import score_coverage
from crimelens.forecast.history import parse_horizon
from crimelens.forecast.registry import make
from crimelens.forecast.surface import RiskSurface
from crimelens.governance.fairness import GroupMembership, audit_selection, cell_labels
from crimelens.registry.manifest import Manifest
from crimelens.registry.store import ModelRegistry


def forecast_name(model: str) -> str:
    """The registry name of forecaster ``model``."""
    return f"forecast-{model}"


@dataclass(frozen=True, slots=True)
class Scored:
    """Backtest metrics and bias audit of one fitted configuration."""

    metrics: dict[str, float]
    bias_audit: dict[str, Any]
    folds: list[dict[str, Any]]


def _observed(surface: RiskSurface, test: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
    g = surface.grid
    tc = g.cell_of(test["x"].to_numpy(float), test["y"].to_numpy(float))
    return np.bincount(tc[tc >= 0], minlength=g.n_cells).astype(np.float64)


def score_forecaster(model: str, incidents: pd.DataFrame, *, until: pd.Timestamp, params: dict[str, Any],
                     horizon: str = "7d", folds: int = 2, coverage: float = 0.05,
                     groups: str | None = "district") -> Scored:
    """Rolling backtest of ``model`` over the ``folds`` horizons ending at ``until``, and its bias audit.

    The last fold's window ends at ``until``, so scoring uses only data the model was trained on.
    """
    days = pd.Timedelta(days=parse_horizon(horizon))
    when = pd.DatetimeIndex(pd.to_datetime(incidents["occurred_at"], utc=True))
    rows: list[dict[str, Any]] = []
    audit: dict[str, Any] = {"passed": False, "status": "not run", "reason": "no fold could be scored"}
    for k in range(folds, 0, -1):
        origin = until - k * days
        train, test = incidents[when < origin], incidents[(when >= origin) & (when < origin + days)]
        if len(train) == 0 or len(test) == 0:
            continue
        est = make(model, horizon=horizon, **params).fit(train, until=origin)
        surface = est.predict(horizon=horizon)
        cells = surface.cells()
        observed = _observed(surface, test)
        sc = score_coverage(surface.score[cells], observed[cells], coverage)
        rows.append({"origin": origin.isoformat(), "hit_rate": sc.hit_rate, "pai": sc.pai, "n": sc.n_total})
        if k == 1:
            audit = _audit(surface, train, observed, coverage, groups)
    if not rows:
        raise InputError(f"cannot backtest {model}: no window of {horizon} before {until.date()} has data")
    metrics = {f"hit_rate@{coverage:g}": float(np.mean([r["hit_rate"] for r in rows])),
               f"pai@{coverage:g}": float(np.mean([r["pai"] for r in rows]))}
    return Scored(metrics, audit, rows)


def _audit(surface: RiskSurface, train: pd.DataFrame, observed: Any, coverage: float,
           groups: str | None) -> dict[str, Any]:
    if groups is None or groups not in train.columns:
        return {"passed": False, "status": "not run", "reason": f"no {groups!r} column to group cells by"}
    cells = surface.cells()
    labels = cell_labels(train, surface.grid, groups, cells)
    if labels.isna().all():
        return {"passed": False, "status": "not run", "reason": f"no incident has a {groups!r} value"}
    result = audit_selection(surface, GroupMembership.from_labels(cells, labels.to_numpy()),
                             coverage=coverage, observed=observed)
    doc = result.to_dict()
    return {"passed": bool(doc["passed"]), "status": doc["status"], "flagged": list(doc["flagged"]),
            "group_by": groups, "k": doc["k"]}


def forecaster_draft(est: Forecaster, training: pd.DataFrame, *, scored: Scored | None = None,
                     parent: str | None = None, reason: str = "manual") -> Manifest:
    """An unnumbered manifest of a fitted forecaster (the registry assigns the version)."""
    from crimelens.forecast.persistence import model_metadata

    meta = model_metadata(est, training=training)
    return Manifest(
        name=forecast_name(est.name), version="", kind="forecaster", created_at="",
        training_window=meta["training_window"], params=meta["params"], data_fingerprint=meta["data_sha256"],
        code_version=meta["crimelens_version"], metrics=dict(scored.metrics) if scored else {},
        bias_audit=dict(scored.bias_audit) if scored else {}, parent=parent, artifact="model.pkl",
        reason=reason, extra={"grid": meta["grid"], "categories": meta["categories"],
                              "folds": scored.folds if scored else []},
    )


def _parent(registry: ModelRegistry, name: str) -> str | None:
    return registry.aliases(name).get("production")


def register_forecaster(registry: ModelRegistry, est: Forecaster, training: pd.DataFrame, *,
                        scored: Scored | None = None, reason: str = "manual", by: str = "system",
                        at: datetime | None = None, extra: dict[str, Any] | None = None) -> Manifest:
    """Save fitted ``est`` and register it as the candidate of ``forecast-<model>`` (registered ``at``,
    default now; ``extra`` joins the manifest's ``extra``)."""
    from crimelens.forecast.persistence import save_model

    draft = forecaster_draft(est, training, scored=scored, parent=_parent(registry, forecast_name(est.name)),
                             reason=reason)
    draft = replace(draft, created_at=at.isoformat() if at else "", extra={**draft.extra, **(extra or {})})
    with tempfile.TemporaryDirectory() as tmp:
        path = save_model(est, Path(tmp) / "model.pkl", training=training, metrics=draft.metrics)
        return registry.register(draft, path, by=by)


def register_classifier(registry: ModelRegistry, model_file: Path, metadata: dict[str, Any], *,
                        name: str | None = None, metrics: dict[str, float] | None = None,
                        bias_audit: dict[str, Any] | None = None, reason: str = "manual",
                        by: str = "system") -> Manifest:
    """Register a saved classifier file (:func:`crimelens.classify.persistence.save_model`) as a candidate."""
    target = str(metadata.get("target", "category"))
    reg_name = name or f"classify-{target}"
    period = list(metadata.get("period") or [None, None])
    versions = metadata.get("versions", {})
    draft = Manifest(
        name=reg_name, version="", kind="classifier", created_at="",
        training_window={"start": period[0], "end": period[-1], "incidents": int(metadata.get("n_train", 0))},
        params=dict(metadata.get("params", {})), data_fingerprint=metadata.get("data_sha256"),
        code_version=str(versions.get("crimelens", "unknown")), metrics=dict(metrics or {}),
        bias_audit=dict(bias_audit or {}), parent=_parent(registry, reg_name), artifact=model_file.name,
        reason=reason, extra={"classes": metadata.get("classes", []), "features": metadata.get("features", [])},
    )
    return registry.register(draft, model_file, by=by)
