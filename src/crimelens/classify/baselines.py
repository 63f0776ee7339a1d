"""The one-hot logistic baseline every classifier is reported against.

Multinomial logistic regression on one-hot hour, weekday, month, premises and area (e.g.
neighbourhood): the standard first model for crime-type prediction from when and where
[1]_. It knows each factor's average effect but no interactions and nothing about the history
of a place, so the gap to it shows what the richer features buy.

References
----------
.. [1] Kaggle, "San Francisco Crime Classification", 2015 (multinomial logistic regression
   on one-hot time and district is the reference entry); A. Agresti, *Categorical Data
   Analysis*, 3rd ed., Wiley, 2013, ch. 8 (baseline-category logit models).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import OneHotEncoder

from crimelens.classify.features import DEFAULT_AREAS
from crimelens.classify.frame import local_times
from crimelens.exceptions import InputError, NotFittedError


class OneHotLogistic:
    """Multinomial logistic regression on one-hot time, premises and area.

    Parameters
    ----------
    timezone : str, optional
        IANA zone of the wall-clock hour and weekday.
    areas : sequence of str
        Area columns to one-hot encode when present and mostly filled.
    target : str
        Label column.
    C : float
        Inverse L2 regularisation strength.
    max_iter : int
        Solver iterations.

    Attributes
    ----------
    classes_ : ndarray of str
        Labels in the order of :meth:`predict_proba` columns.
    """

    def __init__(
        self,
        *,
        timezone: str | None = None,
        areas: Sequence[str] = DEFAULT_AREAS,
        target: str = "category",
        C: float = 1.0,
        max_iter: int = 200,
    ) -> None:
        self.timezone = timezone
        self.areas = areas
        self.target = target
        self.C = C
        self.max_iter = max_iter

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol)."""
        return {k: getattr(self, k) for k in ("timezone", "areas", "target", "C", "max_iter")}

    def set_params(self, **params: Any) -> OneHotLogistic:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def _columns(self, incidents: pd.DataFrame) -> pd.DataFrame:
        t = local_times(incidents["occurred_at"], self.timezone)
        cols = {"hour": t.dt.hour.astype(str), "weekday": t.dt.day_of_week.astype(str), "month": t.dt.month.astype(str)}
        frame = pd.DataFrame(cols, index=incidents.index)
        for col in ("premises", *self.areas):
            if col in incidents and (not hasattr(self, "used_") or col in self.used_):
                frame[col] = incidents[col].astype("string").fillna("__missing__").astype(str)
        return frame

    def fit(self, incidents: pd.DataFrame, y: npt.ArrayLike | None = None) -> OneHotLogistic:
        """Fit on canonical incidents; labels from ``y`` or the ``target`` column."""
        labels = np.asarray(incidents[self.target] if y is None else y, dtype=object)
        if len(labels) == 0:
            raise InputError("no incidents to fit")
        self.used_ = [
            c for c in ("premises", *self.areas)
            if c in incidents and incidents[c].notna().mean() >= 0.5
        ]
        x = self._columns(incidents)
        self.encoder_ = OneHotEncoder(handle_unknown="ignore", min_frequency=5)
        xe = self.encoder_.fit_transform(x)
        self.model_ = LogisticRegression(C=self.C, max_iter=self.max_iter)
        self.model_.fit(xe, labels.astype(str))
        self.classes_ = np.asarray(self.model_.classes_, dtype=object)
        return self

    def predict_proba(self, incidents: pd.DataFrame) -> npt.NDArray[np.float64]:
        """Class probabilities, columns in :attr:`classes_` order."""
        if not hasattr(self, "model_"):
            raise NotFittedError("OneHotLogistic is not fitted; call fit first")
        return np.asarray(self.model_.predict_proba(self.encoder_.transform(self._columns(incidents))), float)

    def predict(self, incidents: pd.DataFrame) -> npt.NDArray[np.object_]:
        """Most probable class of each incident."""
        return np.asarray(self.classes_[self.predict_proba(incidents).argmax(axis=1)], dtype=object)
