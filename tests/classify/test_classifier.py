"""The estimator contract and the metrics against baselines on a synthetic signal."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from crimelens.classify import IncidentClassifier, OneHotLogistic, prior_proba, score
from crimelens.classify.selection import random_split, time_split
from crimelens.exceptions import InputError, NotFittedError

FAST = {"n_estimators": 120, "learning_rate": 0.1, "num_leaves": 15}


def test_clone_roundtrip_and_params() -> None:
    clf = IncidentClassifier(params=FAST, timezone="America/Toronto", class_weight="balanced")
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    with pytest.raises(InputError):
        clf.set_params(no_such=1)


def test_not_fitted(synth: pd.DataFrame) -> None:
    with pytest.raises(NotFittedError):
        IncidentClassifier().predict_proba(synth.head())
    with pytest.raises(NotFittedError):
        OneHotLogistic().predict_proba(synth.head())


def test_deterministic_and_does_not_mutate(synth: pd.DataFrame) -> None:
    before = synth.copy()
    a = IncidentClassifier(params=FAST, random_state=3).fit(synth.iloc[:2500])
    b = IncidentClassifier(params=FAST, random_state=3).fit(synth.iloc[:2500])
    np.testing.assert_allclose(a.predict_proba(synth.iloc[2500:]), b.predict_proba(synth.iloc[2500:]))
    pd.testing.assert_frame_equal(synth, before)


@pytest.mark.parametrize("split", ["time", "random"])
def test_beats_prior_and_logistic_on_signal(synth: pd.DataFrame, split: str) -> None:
    tr, te = time_split(synth, 0.25) if split == "time" else random_split(len(synth), 0.25, random_state=0)
    train, test = synth.iloc[tr], synth.iloc[te]
    clf = IncidentClassifier(params=FAST).fit(train)
    p = clf.predict_proba(test)
    assert p.shape == (len(test), len(clf.classes_))
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    ours = score(test["category"], p, clf.classes_, y_pred=clf.decide(p))
    prior = score(test["category"], prior_proba(train["category"], clf.classes_, len(test)), clf.classes_)
    lr = OneHotLogistic().fit(train)
    logistic = score(test["category"], lr.predict_proba(test), lr.classes_)
    assert ours.log_loss < logistic.log_loss < prior.log_loss
    assert ours.macro_f1 > logistic.macro_f1 > prior.macro_f1
    assert ours.roc_auc_ovr > 0.7


def test_prior_log_loss_is_entropy() -> None:
    y = np.array(["a"] * 70 + ["b"] * 30, dtype=object)
    p = prior_proba(y, ["a", "b"], len(y), smoothing=0.0)
    s = score(y, p, ["a", "b"])
    assert s.log_loss == pytest.approx(-(0.7 * np.log(0.7) + 0.3 * np.log(0.3)))
    assert s.roc_auc_ovr == pytest.approx(0.5)
    assert s.confusion == [[70, 0], [30, 0]]


def test_unknown_labels_rejected() -> None:
    with pytest.raises(InputError):
        score(["zzz"], np.array([[0.5, 0.5]]), ["a", "b"])


@pytest.mark.parametrize("model", ["random_forest", "logistic", "mlp", "linear_svm", "xgboost"])
def test_other_learners_fit_and_predict(synth: pd.DataFrame, model: str) -> None:
    if model == "xgboost":
        pytest.importorskip("xgboost", reason="xgboost-cpu not installed")
    params = {"n_estimators": 40} if model in ("random_forest", "xgboost") else {}
    if model == "mlp":
        params = {"max_iter": 20}
    data = synth.iloc[:1500]
    clf = IncidentClassifier(model=model, params=params, validation_fraction=0.2).fit(data)
    p = clf.predict_proba(synth.iloc[1500:1700])
    assert p.shape == (200, len(clf.classes_)) and np.isfinite(p).all()
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
