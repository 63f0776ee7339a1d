"""The learners behind :class:`~crimelens.classify.classifier.IncidentClassifier`.

:func:`make_model` returns a scikit-learn classifier that reads the feature table of
:class:`~crimelens.classify.features.IncidentFeatures` (numeric columns plus pandas
``category`` columns):

* ``lightgbm`` (default) -- gradient-boosted trees with native categorical splits [1]_;
* ``xgboost`` -- the same family from the ``xgboost-cpu`` package (optional) [2]_;
* ``random_forest`` -- bagged trees on ordinal-coded categories [3]_;
* ``linear_svm`` -- a linear support-vector machine on one-hot categories and scaled numbers,
  with Platt-scaled probabilities [4]_;
* ``mlp`` -- a small multi-layer perceptron on the same encoding;
* ``logistic`` -- multinomial logistic regression on the same encoding.

Missing numbers (an hour of a day-precision record, context of a place never seen) are
handled natively by the tree boosters and imputed with the median plus a missing-indicator
for the others.

References
----------
.. [1] G. Ke et al., "LightGBM: a highly efficient gradient boosting decision tree",
   NeurIPS 2017.
.. [2] T. Chen and C. Guestrin, "XGBoost: a scalable tree boosting system", KDD 2016.
.. [3] L. Breiman, "Random forests", Machine Learning 45, 5-32, 2001.
.. [4] J. Platt, "Probabilistic outputs for support vector machines and comparisons to
   regularized likelihood methods", Advances in Large Margin Classifiers, 1999.
"""

from __future__ import annotations

from typing import Any, Final

import pandas as pd
from sklearn.base import ClassifierMixin
from sklearn.compose import ColumnTransformer, make_column_selector
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from crimelens.exceptions import InputError, require_extra

#: Learners :func:`make_model` knows, with the extra each needs (None: core).
MODELS: Final[dict[str, str | None]] = {
    "lightgbm": None,
    "xgboost": "analysis",
    "random_forest": None,
    "linear_svm": None,
    "mlp": None,
    "logistic": None,
}

#: Learners that read pandas ``category`` columns natively and accept early stopping.
BOOSTERS: Final = ("lightgbm", "xgboost")

_NUMERIC = make_column_selector(dtype_exclude="category")
_CATEGORICAL = make_column_selector(dtype_include="category")


def _as_object(frame: pd.DataFrame) -> pd.DataFrame:
    return frame.astype(object).where(frame.notna(), "__missing__")


def encoder(kind: str, *, max_levels: int = 200) -> ColumnTransformer:
    """Column encoder for learners without native categoricals.

    ``kind`` is ``onehot`` (linear models, MLP: scaled numbers, one-hot categories) or
    ``ordinal`` (trees: raw numbers, integer-coded categories).
    """
    num = make_pipeline(SimpleImputer(strategy="median", add_indicator=True, keep_empty_features=True))
    if kind == "onehot":
        num.steps.append(("scale", StandardScaler()))
        cat = OneHotEncoder(handle_unknown="infrequent_if_exist", max_categories=max_levels, min_frequency=5)
    elif kind == "ordinal":
        cat = OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1)
    else:
        raise InputError(f"unknown encoder kind {kind!r}")
    from sklearn.preprocessing import FunctionTransformer

    cat_pipe = make_pipeline(FunctionTransformer(_as_object, feature_names_out="one-to-one"), cat)
    return ColumnTransformer([("num", num, _NUMERIC), ("cat", cat_pipe, _CATEGORICAL)])


def make_model(
    name: str = "lightgbm",
    *,
    random_state: int | None = 0,
    n_jobs: int = 2,
    class_weight: str | dict[Any, float] | None = None,
    **params: Any,
) -> ClassifierMixin:
    """A fresh, unfitted classifier called ``name`` (see :data:`MODELS`).

    Parameters
    ----------
    name : str
        Learner name.
    random_state : int, optional
        Seed; equal seeds give equal models.
    n_jobs : int
        Threads (keep at most 2 on shared machines).
    class_weight : {"balanced", None} or dict
        Reweight classes (``balanced``: inversely to their frequency).
    **params
        Learner hyperparameters overriding the defaults below.

    Raises
    ------
    InputError
        For an unknown name.
    MissingExtraError
        When the learner's optional package is not installed.
    """
    if name not in MODELS:
        raise InputError(f"unknown model {name!r}; choose from {', '.join(MODELS)}")
    if name == "lightgbm":
        require_extra("lightgbm", "analysis")
        from lightgbm import LGBMClassifier

        cfg: dict[str, Any] = {
            "n_estimators": 1500, "learning_rate": 0.05, "num_leaves": 63, "min_child_samples": 200,
            "subsample": 0.8, "subsample_freq": 1, "colsample_bytree": 0.3, "reg_lambda": 5.0,
            "max_cat_to_onehot": 8, "cat_smooth": 20.0, "verbose": -1,
        }
        cfg.update(params)
        model: ClassifierMixin = LGBMClassifier(
            random_state=random_state, n_jobs=n_jobs, class_weight=class_weight, **cfg
        )
        return model
    if name == "xgboost":
        require_extra("xgboost", "analysis")  # xgboost-cpu is in the analysis extra
        from xgboost import XGBClassifier

        cfg = {
            "n_estimators": 600, "learning_rate": 0.05, "max_depth": 7, "min_child_weight": 5.0,
            "subsample": 0.8, "colsample_bytree": 0.5, "tree_method": "hist", "max_cat_to_onehot": 8,
        }
        cfg.update(params)
        model = XGBClassifier(
            random_state=random_state, n_jobs=n_jobs, enable_categorical=True, **cfg
        )
        return model
    if name == "random_forest":
        from sklearn.ensemble import RandomForestClassifier

        cfg = {"n_estimators": 200, "min_samples_leaf": 10, "max_features": "sqrt", "max_samples": 0.5}
        cfg.update(params)
        return Pipeline([
            ("encode", encoder("ordinal")),
            ("model", RandomForestClassifier(
                random_state=random_state, n_jobs=n_jobs, class_weight=class_weight, **cfg
            )),
        ])
    if name == "linear_svm":
        from sklearn.calibration import CalibratedClassifierCV
        from sklearn.svm import LinearSVC

        cfg = {"C": 0.1}
        cfg.update(params)
        svm = LinearSVC(random_state=random_state, class_weight=class_weight, dual="auto", **cfg)
        return Pipeline([
            ("encode", encoder("onehot")),
            ("model", CalibratedClassifierCV(svm, method="sigmoid", cv=3, n_jobs=n_jobs)),
        ])
    if name == "mlp":
        from sklearn.neural_network import MLPClassifier

        cfg = {
            "hidden_layer_sizes": (64, 32), "alpha": 1e-3, "batch_size": 512, "learning_rate_init": 1e-3,
            "max_iter": 60, "early_stopping": True, "n_iter_no_change": 5,
        }
        cfg.update(params)
        return Pipeline([
            ("encode", encoder("onehot")),
            ("model", MLPClassifier(random_state=random_state, **cfg)),
        ])
    from sklearn.linear_model import LogisticRegression

    cfg = {"C": 1.0, "max_iter": 300}
    cfg.update(params)
    return Pipeline([
        ("encode", encoder("onehot")),
        ("model", LogisticRegression(random_state=random_state, class_weight=class_weight, **cfg)),
    ])
