"""The crime-type classifier: features, learner, calibration and decisions in one estimator.

:class:`IncidentClassifier` answers "what kind of incident is this likely to be?" from when,
where and what place, as calibrated probabilities over the categories it was trained on.

Fitting runs in time order. The incidents are sorted by ``occurred_at`` and the latest
``validation_fraction`` of them are held back; the learner is trained on the rest (boosters
stop early on the held-back part), then the held-back probabilities fit the
:class:`~crimelens.classify.calibration.Calibrator` (honest probabilities, for log loss) and
the macro-F1 decision weights (one weight per class, for hard predictions). With ``refit``
the learner is finally retrained on every incident for the number of rounds early stopping
chose, scaled up to the larger sample. The held-back part always lies *after* the part the
model learns from, as it will in use [1]_.

References
----------
.. [1] C. Bergmeir and J. M. Benítez, "On the use of cross-validation for time series
   predictor evaluation", Information Sciences 191, 192-213, 2012.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.classify.calibration import Calibrator, fit_decision_weights
from crimelens.classify.context import minutes
from crimelens.classify.features import IncidentFeatures
from crimelens.classify.models import BOOSTERS, make_model
from crimelens.exceptions import InputError, NotFittedError

FloatMatrix = npt.NDArray[np.float64]

_PARAMS = (
    "model", "params", "timezone", "cell_size", "extra_features", "context", "context_params", "profile",
    "profile_params", "target", "class_weight", "recency_half_life_days", "calibration", "decision",
    "validation_fraction", "refit", "features",
    "early_stopping_rounds", "random_state", "n_jobs",
)


class IncidentClassifier:
    """Predict an incident's category from time, place, premises and place history.

    Parameters
    ----------
    model : str
        Learner (see :data:`crimelens.classify.models.MODELS`); ``lightgbm`` by default.
    params : dict, optional
        Learner hyperparameters passed to :func:`~crimelens.classify.models.make_model`.
    timezone : str, optional
        IANA zone of the wall-clock time features.
    cell_size : float
        Grid cell side (metres) of the cell feature.
    extra_features : sequence of str
        Numeric or flag source fields to use beyond the canonical columns (a column of that
        name or a key of the ``extra`` JSON; see :func:`~crimelens.classify.features.extra_values`).
    context : bool
        Use the leakage-free place-history features.
    context_params : dict, optional
        Options of :class:`~crimelens.classify.context.ContextFeatures`.
    profile : bool
        Use the cross-fitted place profile of the training period.
    profile_params : dict, optional
        Options of :class:`~crimelens.classify.profile.PlaceProfile`.
    target : str
        Label column (``category``; ``offense`` for the raw published type).
    class_weight : {"balanced", None}
        Reweight classes while learning (probabilities are recalibrated afterwards).
    recency_half_life_days : float, optional
        Weight each training incident by ``0.5 ** (age / half_life)``, its age counted back
        from the latest incident the learner sees, so that the model leans on the recent
        category mix; None weighs all equally.
    calibration : {"temperature", "vector", "none"}
        Calibration fitted on the held-back part. ``vector`` adds class biases, which also pull
        the category mix towards that of the latest period (good for forecasting the next
        period, worse on a random hold-out); ``temperature`` only rescales.
    decision : {"macro_f1", "argmax"}
        Hard predictions: per-class weights maximising macro-F1, or the most probable class.
    validation_fraction : float
        Share of the latest incidents held back for early stopping, calibration and decisions.
    refit : bool
        Retrain on all incidents after calibration (boosters use the early-stopped rounds).
    features : sequence of str, optional
        Use only these feature columns (e.g. from
        :func:`~crimelens.classify.selection.select_features`).
    early_stopping_rounds : int
        Patience of booster early stopping.
    random_state : int, optional
        Seed.
    n_jobs : int
        Threads. One by default: on a shared machine OpenMP threads that wait for busy cores
        can make a two-thread LightGBM many times slower than one thread.

    Attributes
    ----------
    classes_ : ndarray of str
        Category labels, the columns of :meth:`predict_proba`.
    features_ : IncidentFeatures
        The fitted featuriser.
    feature_names_ : list of str
        Columns the learner reads.
    model_ : classifier
        The fitted learner.
    calibrator_ : Calibrator
        The fitted calibration.
    decision_weights_ : ndarray
        Per-class weights of the hard decision.
    validation_ : dict
        Size, period and log loss (raw and calibrated) of the held-back part.
    """

    def __init__(
        self,
        *,
        model: str = "lightgbm",
        params: dict[str, Any] | None = None,
        timezone: str | None = None,
        cell_size: float = 500.0,
        extra_features: Sequence[str] = (),
        context: bool = True,
        context_params: dict[str, Any] | None = None,
        profile: bool = True,
        profile_params: dict[str, Any] | None = None,
        target: str = "category",
        class_weight: str | None = None,
        recency_half_life_days: float | None = None,
        calibration: str = "temperature",
        decision: str = "macro_f1",
        validation_fraction: float = 0.15,
        refit: bool = True,
        features: Sequence[str] | None = None,
        early_stopping_rounds: int = 40,
        random_state: int | None = 0,
        n_jobs: int = 1,
    ) -> None:
        self.model = model
        self.params = params
        self.timezone = timezone
        self.cell_size = cell_size
        self.extra_features = extra_features
        self.context = context
        self.context_params = context_params
        self.profile = profile
        self.profile_params = profile_params
        self.target = target
        self.class_weight = class_weight
        self.recency_half_life_days = recency_half_life_days
        self.calibration = calibration
        self.decision = decision
        self.validation_fraction = validation_fraction
        self.refit = refit
        self.features = features
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol: ``clone`` and searches use it)."""
        defaults = inspect.signature(IncidentClassifier.__init__).parameters  # models saved before a parameter existed
        return {k: getattr(self, k, defaults[k].default) for k in _PARAMS}

    def set_params(self, **params: Any) -> IncidentClassifier:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            if k not in _PARAMS:
                raise InputError(f"IncidentClassifier has no parameter {k!r}")
            setattr(self, k, v)
        return self

    def make_features(self) -> IncidentFeatures:
        """A fresh, unfitted featuriser with this classifier's settings."""
        return IncidentFeatures(
            timezone=self.timezone, cell_size=self.cell_size, extra_features=self.extra_features,
            context=self.context,
            context_params=self.context_params, profile=self.profile, profile_params=self.profile_params,
            target=self.target,
        )

    # -- fitting -------------------------------------------------------------------------
    def fit(self, incidents: pd.DataFrame, y: npt.ArrayLike | None = None) -> IncidentClassifier:
        """Learn from canonical incidents (labels from ``y`` or the ``target`` column)."""
        if self.decision not in ("macro_f1", "argmax"):
            raise InputError(f"unknown decision rule {self.decision!r}")
        frame = incidents if y is None else incidents.assign(**{self.target: np.asarray(y, dtype=object)})
        if self.target not in frame:
            raise InputError(f"incidents lack the label column {self.target!r}")
        frame = frame[frame[self.target].notna()].sort_values("occurred_at", kind="stable")
        labels = frame[self.target].astype(str).to_numpy(dtype=object)
        classes = np.array(sorted(set(labels)), dtype=object)
        if len(classes) < 2:
            raise InputError("need at least two categories to classify")
        self.classes_ = classes
        self.features_ = self.make_features()
        x = self.features_.fit_transform(frame)
        if self.features is not None:
            missing = [f for f in self.features if f not in x]
            if missing:
                raise InputError(f"unknown feature columns: {missing[:5]}")
            x = x[list(self.features)]
        self.feature_names_ = list(x.columns)
        yi = np.searchsorted(classes, labels).astype(np.int64)
        days = minutes(frame["occurred_at"]) / (24.0 * 60.0)
        n_val = round(len(x) * self.validation_fraction)
        if n_val < 10 * len(classes) or len(x) - n_val < 10 * len(classes):
            n_val = 0
        if n_val:
            cut = len(x) - n_val
            model, best = self._fit_learner(
                x.iloc[:cut], yi[:cut], (x.iloc[cut:], yi[cut:]), weight=self._recency(days[:cut]))
            p_val = self._raw_proba(model, x.iloc[cut:])
            self.calibrator_ = Calibrator(method=self.calibration).fit(p_val, yi[cut:])
            p_cal = self.calibrator_.transform(p_val)
            self.decision_weights_ = (
                fit_decision_weights(p_cal, yi[cut:]) if self.decision == "macro_f1" else np.ones(len(classes))
            )
            self.validation_ = {
                "n": n_val,
                "start": str(frame["occurred_at"].iloc[cut]),
                "end": str(frame["occurred_at"].iloc[-1]),
                "log_loss_raw": _nll(p_val, yi[cut:]),
                "log_loss_calibrated": _nll(p_cal, yi[cut:]),
                "best_iteration": best,
            }
            if self.refit:
                rounds = None if best is None else max(10, int(best * len(x) / cut))
                model, _ = self._fit_learner(x, yi, None, n_estimators=rounds, weight=self._recency(days))
        else:
            model, best = self._fit_learner(x, yi, None, weight=self._recency(days))
            self.calibrator_ = Calibrator(method="none").fit(np.full((0, len(classes)), 1.0), yi[:0])
            self.decision_weights_ = np.ones(len(classes))
            self.validation_ = {"n": 0}
        self.model_ = model
        return self

    def _recency(self, days: FloatMatrix) -> FloatMatrix | None:
        """Recency weights of incidents ``days`` old relative to the latest of them (None: equal)."""
        half = self.recency_half_life_days
        if half is None:
            return None
        if half <= 0:
            raise InputError("recency_half_life_days must be positive")
        return np.asarray(0.5 ** ((days.max() - days) / float(half)), float)

    def _fit_learner(
        self,
        x: pd.DataFrame,
        y: npt.NDArray[np.int64],
        val: tuple[pd.DataFrame, npt.NDArray[np.int64]] | None,
        n_estimators: int | None = None,
        weight: FloatMatrix | None = None,
    ) -> tuple[Any, int | None]:
        params = dict(self.params or {})
        if n_estimators is not None:
            params["n_estimators"] = n_estimators
        if self.model == "xgboost" and val is not None:
            params.setdefault("early_stopping_rounds", self.early_stopping_rounds)
        learner: Any = make_model(
            self.model, random_state=self.random_state, n_jobs=self.n_jobs,
            class_weight=self.class_weight if self.model != "xgboost" else None, **params,
        )
        if self.model not in BOOSTERS:
            learner.fit(x, y, **({} if weight is None else {"model__sample_weight": weight}))
            return learner, None
        fit_kw: dict[str, Any] = {} if weight is None else {"sample_weight": weight}
        if self.model == "xgboost" and self.class_weight == "balanced":
            counts = np.bincount(y, minlength=len(self.classes_)).astype(float)
            balanced = (len(y) / (len(counts) * np.maximum(counts, 1)))[y]
            fit_kw["sample_weight"] = balanced if weight is None else balanced * weight
        if val is None:
            learner.fit(x, y, **fit_kw)
            return learner, None
        if self.model == "lightgbm":
            import lightgbm as lgb

            if "eval_X" in inspect.signature(learner.fit).parameters:  # LightGBM >= 4.7
                fit_kw.update(eval_X=val[0], eval_y=val[1])
            else:
                fit_kw["eval_set"] = [val]
            learner.fit(x, y, callbacks=[lgb.early_stopping(self.early_stopping_rounds, verbose=False)], **fit_kw)
            return learner, int(learner.best_iteration_ or learner.n_estimators)
        learner.fit(x, y, eval_set=[val], verbose=False, **fit_kw)
        return learner, int(learner.best_iteration + 1)

    def _raw_proba(self, learner: Any, x: pd.DataFrame) -> FloatMatrix:
        p = np.asarray(learner.predict_proba(x), float)
        seen = np.asarray(getattr(learner, "classes_", np.arange(p.shape[1])), np.int64)
        out = np.zeros((len(x), len(self.classes_)))
        out[:, seen] = p
        return out

    # -- prediction ----------------------------------------------------------------------
    def _check(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("IncidentClassifier is not fitted; call fit first")

    def transform(self, incidents: pd.DataFrame, *, history: pd.DataFrame | None = None) -> pd.DataFrame:
        """The feature table the learner reads (for explanations and inspection)."""
        self._check()
        return self.features_.transform(incidents, history=history)[self.feature_names_]

    def predict_proba(self, incidents: pd.DataFrame, *, history: pd.DataFrame | None = None) -> FloatMatrix:
        """Calibrated class probabilities, columns in :attr:`classes_` order.

        ``history`` adds labelled incidents recorded since training to the place-history
        features (only those strictly earlier than each incident count).
        """
        return self.proba_from_features(self.transform(incidents, history=history))

    def proba_from_features(self, x: pd.DataFrame) -> FloatMatrix:
        """Calibrated probabilities from a feature table made by :meth:`transform`."""
        self._check()
        return self.calibrator_.transform(self._raw_proba(self.model_, x[self.feature_names_]))

    def predict(self, incidents: pd.DataFrame, *, history: pd.DataFrame | None = None) -> npt.NDArray[np.object_]:
        """Hard predictions by the fitted decision rule."""
        p = self.predict_proba(incidents, history=history)
        return np.asarray(self.classes_[(p * self.decision_weights_).argmax(axis=1)], dtype=object)

    def decide(self, proba: FloatMatrix) -> npt.NDArray[np.object_]:
        """Hard predictions from probabilities already computed by :meth:`predict_proba`."""
        self._check()
        return np.asarray(self.classes_[(np.asarray(proba) * self.decision_weights_).argmax(axis=1)], dtype=object)


def _nll(p: FloatMatrix, y: npt.NDArray[np.int64]) -> float:
    return float(-np.log(np.clip(p[np.arange(len(y)), y], 1e-15, 1.0)).mean())
