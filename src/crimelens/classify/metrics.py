"""Classification metrics, always reported beside two baselines.

A crime-type classifier is only useful if it beats what an analyst gets for free. Every
evaluation here therefore reports, on the same held-out incidents:

* the **class prior** -- predict the training category mix for every incident (its log loss is
  the entropy of the mix; its macro-F1 is that of always answering the commonest class);
* a **one-hot logistic** baseline -- multinomial logistic regression on one-hot hour, weekday,
  month, premises and area, the standard first model in crime-type prediction [1]_;
* the model itself.

Metrics: accuracy, macro-F1 (each class weighs the same however rare), log loss (how good the
probabilities are, the proper scoring rule [2]_), one-vs-rest ROC-AUC (macro average over
classes [3]_) and the confusion matrix.

References
----------
.. [1] S. T. Ang, W. Wang and S. Chyou, "San Francisco crime classification", UCSD CSE 255
   report, 2015; Kaggle, "San Francisco Crime Classification" (multi-class log loss), 2015.
.. [2] T. Gneiting and A. E. Raftery, "Strictly proper scoring rules, prediction, and
   estimation", JASA 102(477), 359-378, 2007.
.. [3] D. J. Hand and R. J. Till, "A simple generalisation of the area under the ROC curve for
   multiple class classification problems", Machine Learning 45, 171-186, 2001.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, log_loss, roc_auc_score

from crimelens.exceptions import InputError

FloatMatrix = npt.NDArray[np.float64]


@dataclass(slots=True)
class ClassificationScores:
    """Scores of one set of predictions."""

    name: str
    n: int
    accuracy: float
    macro_f1: float
    log_loss: float
    roc_auc_ovr: float
    confusion: list[list[int]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def score(
    y_true: npt.ArrayLike,
    proba: FloatMatrix,
    classes: npt.ArrayLike,
    *,
    y_pred: npt.ArrayLike | None = None,
    name: str = "model",
) -> ClassificationScores:
    """Score predicted probabilities (and optional hard predictions) against true labels.

    Parameters
    ----------
    y_true : array-like of str
        True labels; labels outside ``classes`` raise :class:`InputError`.
    proba : ndarray of shape (n, k)
        Probabilities in the order of ``classes``; rows are renormalised.
    classes : array-like of str
        Class labels of the columns of ``proba``.
    y_pred : array-like, optional
        Hard predictions; defaults to the most probable class.
    name : str
        Label of this row in a report.
    """
    cls = np.asarray(classes, dtype=object)
    yt = np.asarray(y_true, dtype=object)
    unknown = set(yt) - set(cls)
    if unknown:
        raise InputError(f"labels the model never saw: {sorted(map(str, unknown))[:5]}")
    p = np.clip(np.asarray(proba, float), 1e-15, 1.0)
    p /= p.sum(axis=1, keepdims=True)
    idx = {c: i for i, c in enumerate(cls)}
    yi = np.array([idx[v] for v in yt], dtype=np.int64)
    pred = p.argmax(axis=1) if y_pred is None else np.array([idx[v] for v in np.asarray(y_pred, object)])
    labels = np.arange(len(cls))
    present = np.unique(yi)
    if len(present) > 1:
        sub = p[:, present] / p[:, present].sum(axis=1, keepdims=True)
        auc = float(roc_auc_score(
            yi, sub if len(present) > 2 else sub[:, 1], multi_class="ovr", average="macro", labels=present
        )) if len(present) > 2 else float(roc_auc_score(yi == present[1], sub[:, 1]))
    else:
        auc = float("nan")
    return ClassificationScores(
        name=name,
        n=len(yi),
        accuracy=float(accuracy_score(yi, pred)),
        macro_f1=float(f1_score(yi, pred, average="macro", labels=present, zero_division=0)),
        log_loss=float(log_loss(yi, p, labels=labels)),
        roc_auc_ovr=auc,
        confusion=confusion_matrix(yi, pred, labels=labels).tolist(),
    )


def prior_proba(train_labels: npt.ArrayLike, classes: npt.ArrayLike, n: int, *, smoothing: float = 1.0) -> FloatMatrix:
    """The training class mix (Laplace-smoothed) repeated for ``n`` incidents."""
    cls = list(np.asarray(classes, dtype=object))
    counts = pd.Series(np.asarray(train_labels, dtype=object)).value_counts()
    freq = np.array([counts.get(c, 0) for c in cls], float) + smoothing
    return np.tile(freq / freq.sum(), (n, 1))


def align_proba(proba: FloatMatrix, have: npt.ArrayLike, want: npt.ArrayLike, *, floor: float = 1e-9) -> FloatMatrix:
    """Probabilities over the classes ``have`` re-laid over ``want``, renormalised.

    A class of ``want`` the model never learnt gets ``floor``; one of ``have`` missing from
    ``want`` is dropped. For scoring a model against a baseline or another model with a
    different class list.
    """
    p = np.asarray(proba, float)
    wanted = list(np.asarray(want, dtype=object))
    out = np.full((len(p), len(wanted)), floor)
    pos = {c: i for i, c in enumerate(np.asarray(have, dtype=object))}
    for j, c in enumerate(wanted):
        if c in pos:
            out[:, j] = p[:, pos[c]]
    return np.asarray(out / out.sum(axis=1, keepdims=True), float)


@dataclass(slots=True)
class EvaluationReport:
    """A model's scores beside the class prior and the one-hot logistic baseline."""

    classes: list[str]
    model: ClassificationScores
    prior: ClassificationScores
    logistic: ClassificationScores | None = None
    split: str = ""
    notes: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict: the model's four headline metrics at top level, baselines nested."""
        out: dict[str, Any] = {
            "split": self.split,
            "classes": self.classes,
            "n": self.model.n,
            "accuracy": self.model.accuracy,
            "macro_f1": self.model.macro_f1,
            "log_loss": self.model.log_loss,
            "roc_auc_ovr": self.model.roc_auc_ovr,
            "confusion": self.model.confusion,
            "baselines": {"prior": _headline(self.prior)},
            "notes": self.notes,
        }
        if self.logistic is not None:
            out["baselines"]["logistic"] = _headline(self.logistic)
        return out

    def to_frame(self) -> pd.DataFrame:
        """One row per predictor (prior, logistic, model) with the headline metrics."""
        rows = [self.prior, *( [self.logistic] if self.logistic else []), self.model]
        return pd.DataFrame([_headline(r) | {"name": r.name} for r in rows]).set_index("name")


def _headline(s: ClassificationScores) -> dict[str, float]:
    return {"accuracy": s.accuracy, "macro_f1": s.macro_f1, "log_loss": s.log_loss, "roc_auc_ovr": s.roc_auc_ovr}
