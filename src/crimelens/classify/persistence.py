"""Saving and loading a trained classifier with the metadata needed to trust it later.

A model file is a joblib archive of ``{"format", "metadata", "estimator", "baseline"}`` (the
baseline is the one-hot logistic regression fitted on the same incidents, so that a later
evaluation reports it beside the model); the metadata is
also written beside it as ``<file>.json`` so it can be read without unpickling. Metadata
records what the model was trained on (source, period, size, classes, target), its settings,
its validation scores and the library versions, so that a model is never applied blind [1]_.

Loading unpickles Python objects: only load model files you made or trust.

References
----------
.. [1] M. Mitchell et al., "Model cards for model reporting", FAT* 2019.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Final

import pandas as pd

from crimelens.classify.baselines import OneHotLogistic
from crimelens.classify.classifier import IncidentClassifier
from crimelens.exceptions import InputError

FORMAT: Final = "crimelens-classifier/1"


def _versions() -> dict[str, str]:
    out: dict[str, str] = {}
    for pkg in ("crimelens", "scikit-learn", "lightgbm", "xgboost", "numpy", "pandas"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            continue
    return out


def model_metadata(clf: IncidentClassifier, incidents: pd.DataFrame, **extra: Any) -> dict[str, Any]:
    """Metadata of a classifier fitted on ``incidents`` (plus any ``extra`` entries)."""
    clf._check()
    occ = pd.to_datetime(incidents["occurred_at"], utc=True)
    params = {k: v for k, v in clf.get_params().items() if k != "features"}
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "classes": [str(c) for c in clf.classes_],
        "target": clf.target,
        "n_train": len(incidents),
        "sources": sorted(map(str, incidents["source"].dropna().unique())) if "source" in incidents else [],
        "period": [str(occ.min()), str(occ.max())] if len(occ) else [],
        "class_counts": {str(k): int(v) for k, v in incidents[clf.target].astype(str).value_counts().items()},
        "params": json.loads(json.dumps(params, default=str)),
        "features": list(clf.feature_names_),
        "validation": json.loads(json.dumps(clf.validation_, default=str)),
        "versions": _versions(),
        **extra,
    }


@dataclass(slots=True)
class SavedModel:
    """What a model file holds."""

    estimator: IncidentClassifier
    metadata: dict[str, Any]
    baseline: OneHotLogistic | None = None


def save_model(
    clf: IncidentClassifier, path: str | Path, metadata: dict[str, Any], *, baseline: OneHotLogistic | None = None
) -> Path:
    """Write ``clf`` (and its ``baseline``) with ``metadata`` to ``path`` and ``path.json``."""
    import joblib

    clf._check()
    out = Path(path)
    if not out.parent.exists():
        raise InputError(f"folder does not exist: {out.parent}")
    joblib.dump({"format": FORMAT, "metadata": metadata, "estimator": clf, "baseline": baseline}, out, compress=3)
    Path(f"{out}.json").write_text(json.dumps(metadata, indent=2, default=str), encoding="utf-8")
    return out


def load_model(path: str | Path) -> SavedModel:
    """Read a model file written by :func:`save_model`."""
    import joblib

    p = Path(path)
    if not p.is_file():
        raise InputError(f"no model file at {p}")
    try:
        payload = joblib.load(p)
    except (OSError, ValueError, EOFError, KeyError, IndexError) as exc:  # joblib's errors on non-archives
        raise InputError(f"{p} is not a crimelens model file ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(f"{p} is not a crimelens model file (expected format {FORMAT})")
    est = payload["estimator"]
    if not isinstance(est, IncidentClassifier):
        raise InputError(f"{p} holds no IncidentClassifier")
    base = payload.get("baseline")
    return SavedModel(est, dict(payload["metadata"]), base if isinstance(base, OneHotLogistic) else None)


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The metadata beside a model file, without unpickling the model."""
    side = Path(f"{path}.json")
    if not side.is_file():
        raise InputError(f"no metadata file {side}")
    data: dict[str, Any] = json.loads(side.read_text(encoding="utf-8"))
    return data
