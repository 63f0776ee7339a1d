"""Place profiles: the category mix of each place over the training period, cross-fitted.

:class:`~crimelens.classify.context.ContextFeatures` only looks back in time, so an incident
early in the record learns little about its place. A *place profile* is the complementary,
standard encoding of a high-cardinality categorical -- a target encoding [1]_ [2]_ -- of the
exact point, point and premises, small cells and area-premises pairs: the smoothed share of
each category among the **training** incidents at the same key, ``(n_c + a p_c) / (n + a)``.

Leakage is controlled three ways:

* **cross-fitting** -- on the training incidents themselves (:meth:`PlaceProfile.fit_transform`)
  each incident's profile comes only from the other ``n_folds - 1`` folds, never from itself or
  its own fold, exactly as scikit-learn's ``TargetEncoder`` does [3]_;
* **same-event exclusion** -- reference incidents at the same key *and the same minute* are
  never counted (one event filed under several offences must not describe itself);
* **training period only** -- new incidents are profiled from the training incidents (and any
  ``history`` given), never from the incidents being predicted, so on a hold-out after the
  training period the profile is entirely in the past.

On a random hold-out, a profile built from the training incidents does include training
incidents later than the held-out one -- as any model trained on a random split learns from
them; the time hold-out is the honest check of deployment, and crimelens reports both.

References
----------
.. [1] D. Micci-Barreca, "A preprocessing scheme for high-cardinality categorical attributes in
   classification and prediction problems", SIGKDD Explorations 3(1), 27-32, 2001.
.. [2] P. Cerda, G. Varoquaux and B. Kégl, "Similarity encoding for learning with dirty
   categorical variables", Machine Learning 107, 1477-1494, 2018.
.. [3] F. Pargent, F. Pfisterer, J. Thomas and B. Bischl, "Regularized target encoding
   outperforms traditional methods in supervised machine learning with high cardinality
   features", Computational Statistics 37, 2671-2692, 2022.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.classify.context import ContextFeatures, joint_codes, minutes, safe_name, window_counts
from crimelens.exceptions import InputError, NotFittedError

DEFAULT_PROFILE_KEYS: Final = (
    "point", "point+premises", "cell:150", "cell:150+premises", "neighbourhood+premises",
)

_FAR_FUTURE: Final = np.int64(2**40)


class PlaceProfile:
    """Cross-fitted, same-event-excluding category mix of each place in the training period.

    Parameters
    ----------
    target : str
        Label column.
    keys : sequence of str
        Place keys, as in :class:`~crimelens.classify.context.ContextFeatures`.
    n_folds : int
        Folds of the cross-fitting on the training incidents.
    prior_strength : float
        Pseudo-count ``a`` of the shrinkage towards the overall category mix.
    point_metres : float
        Rounding of coordinates for the ``point`` key.
    timezone : str, optional
        IANA zone of ``hour:<h>`` key parts.
    random_state : int
        Seed of the fold assignment.

    Attributes
    ----------
    classes_ : ndarray of str
    feature_names_ : list of str
    """

    def __init__(
        self,
        *,
        target: str = "category",
        keys: Sequence[str] = DEFAULT_PROFILE_KEYS,
        n_folds: int = 5,
        prior_strength: float = 3.0,
        point_metres: float = 5.0,
        timezone: str | None = None,
        random_state: int = 0,
    ) -> None:
        self.target = target
        self.keys = keys
        self.n_folds = n_folds
        self.prior_strength = prior_strength
        self.point_metres = point_metres
        self.timezone = timezone
        self.random_state = random_state

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol)."""
        return {k: getattr(self, k) for k in (
            "target", "keys", "n_folds", "prior_strength", "point_metres", "timezone", "random_state")}

    def set_params(self, **params: Any) -> PlaceProfile:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def fit(self, incidents: pd.DataFrame, y: Any = None) -> PlaceProfile:
        """Keep the training incidents' keys, minutes and labels."""
        if self.n_folds < 2:
            raise InputError("a place profile needs at least two folds")
        self.keyer_ = ContextFeatures(
            target=self.target, keys=self.keys, windows=(None,), point_metres=self.point_metres,
            timezone=self.timezone,
        ).fit(incidents)
        self.classes_ = self.keyer_.classes_
        self.ref_ = self._reference(incidents)
        self.feature_names_ = [
            f"prof_{safe_name(k)}_{suffix}" for k in self.keys
            for suffix in ("n", *(safe_name(c) for c in self.classes_))
        ]
        return self

    def _reference(self, incidents: pd.DataFrame) -> dict[str, Any]:
        lab = pd.Categorical(incidents[self.target].astype(str), categories=list(self.classes_))
        codes = np.asarray(lab.codes, np.int64)
        keep = codes >= 0
        keys = self.keyer_.key_values(incidents)
        return {
            "t": minutes(incidents["occurred_at"])[keep],
            "y": codes[keep],
            "keys": {k: v[keep] for k, v in keys.items()},
            "rows": np.flatnonzero(keep),
        }

    def _encode(self, ref: dict[str, Any], q_keys: dict[str, Any], q_t: npt.NDArray[np.int64],
                index: pd.Index, history: dict[str, Any] | None = None) -> pd.DataFrame:
        k = len(self.classes_)
        prior = np.bincount(ref["y"], minlength=k) + 1.0
        prior = prior / prior.sum()
        a = float(self.prior_strength)
        far = np.full(len(q_t), _FAR_FUTURE, np.int64)
        out: dict[str, npt.NDArray[np.float64]] = {}
        for key in self.keys:
            cr, cq = joint_codes(ref["keys"][key], q_keys[key])
            every = window_counts(cr, ref["t"], ref["y"], cq, far, None, k)
            same = window_counts(cr, ref["t"], ref["y"], cq, q_t + 1, q_t, k)
            c = np.maximum(every - same, 0.0)
            if history is not None:  # incidents after training count only when strictly earlier
                hr, hq = joint_codes(history["keys"][key], q_keys[key])
                c += window_counts(hr, history["t"], history["y"], hq, q_t, None, k)
            n = c.sum(axis=1, keepdims=True)
            share = (c + a * prior) / (n + a)
            stem = f"prof_{safe_name(key)}"
            out[f"{stem}_n"] = np.log1p(n[:, 0])
            for j, cls in enumerate(self.classes_):
                out[f"{stem}_{safe_name(cls)}"] = share[:, j]
        return pd.DataFrame(out, index=index)[self.feature_names_]

    def transform(self, incidents: pd.DataFrame, *, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """Profiles of new incidents from every training incident, plus the labelled ``history``
        incidents strictly earlier than each one.

        Do not call this on the training incidents themselves -- use :meth:`fit_transform`,
        which cross-fits.
        """
        if not hasattr(self, "ref_"):
            raise NotFittedError("PlaceProfile is not fitted; call fit first")
        q_keys = self.keyer_.key_values(incidents)
        q_t = minutes(incidents["occurred_at"])
        extra = None
        if history is not None and len(history):
            extra = self._reference(history.dropna(subset=[self.target]))
        return self._encode(self.ref_, q_keys, q_t, incidents.index, history=extra)

    def fit_transform(self, incidents: pd.DataFrame, y: Any = None) -> pd.DataFrame:
        """Fit, then profile each training incident from the other folds only."""
        self.fit(incidents)
        ref = self.ref_
        q_keys = self.keyer_.key_values(incidents)
        q_t = minutes(incidents["occurred_at"])
        fold = np.random.default_rng(self.random_state).integers(0, self.n_folds, len(incidents))
        ref_fold = fold[ref["rows"]]
        values = np.zeros((len(incidents), len(self.feature_names_)))
        for f in range(self.n_folds):
            q = np.flatnonzero(fold == f)
            r = ref_fold != f
            sub = {"t": ref["t"][r], "y": ref["y"][r], "keys": {k: v[r] for k, v in ref["keys"].items()}}
            enc = self._encode(sub, {k: v[q] for k, v in q_keys.items()}, q_t[q], incidents.index[q])
            values[q] = enc.to_numpy(float)
        return pd.DataFrame(values, index=incidents.index, columns=self.feature_names_)
