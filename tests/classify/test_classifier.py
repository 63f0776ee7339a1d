"""The estimator contract and the metrics against baselines on a synthetic signal."""

from __future__ import annotations

from typing import Any

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


def test_extra_features_from_column_or_extra_json(synth: pd.DataFrame) -> None:
    from crimelens.classify.features import extra_values

    frame = pd.DataFrame({
        "extra": ['{"Pub_Id": "1", "Size": "2.5"}', '{"Pub_Id": "0"}', None, "not json", '{"Pub_Id": "yes"}'],
        "flag": ["true", "N", None, "3", "maybe"],
    })
    got = extra_values(frame, ["Pub_Id", "Size", "flag"])
    assert list(got.columns) == ["extra_pub_id", "extra_size", "extra_flag"]
    np.testing.assert_array_equal(got["extra_pub_id"], [1.0, 0.0, np.nan, np.nan, 1.0])
    np.testing.assert_array_equal(got["extra_size"], [2.5, np.nan, np.nan, np.nan, np.nan])
    np.testing.assert_array_equal(got["extra_flag"], [1.0, 0.0, np.nan, 3.0, np.nan])
    # a flag that decides the class is used by the classifier
    data = synth.copy()
    near_pub = data["category"].eq("assault") & (np.arange(len(data)) % 3 > 0)
    data["extra"] = np.where(near_pub, '{"pub": "1"}', '{"pub": "0"}')
    train, test = data.iloc[:3000], data.iloc[3000:]
    kw: dict[str, Any] = {"params": FAST, "context": False, "profile": False}
    with_flag = IncidentClassifier(extra_features=["pub"], **kw).fit(train)
    without = IncidentClassifier(**kw).fit(train)
    assert "extra_pub" in with_flag.feature_names_
    y = test["category"]
    assert (score(y, with_flag.predict_proba(test), with_flag.classes_).log_loss
            < score(y, without.predict_proba(test), without.classes_).log_loss - 0.05)


def test_recency_weights_follow_a_shifting_mix() -> None:
    rng = np.random.default_rng(0)
    n = 3000
    t = pd.Timestamp("2020-01-01", tz="UTC") + pd.to_timedelta(np.sort(rng.uniform(0, 730, n)), unit="D")
    late = np.arange(n) >= n // 2
    cat = np.where(rng.random(n) < np.where(late, 0.8, 0.2), "burglary", "assault")
    frame = pd.DataFrame({"occurred_at": t, "category": cat, "lat": 43.7 + rng.normal(0, 0.01, n),
                          "lon": -79.4 + rng.normal(0, 0.01, n)})
    kw: dict[str, Any] = {"params": FAST, "context": False, "profile": False, "validation_fraction": 0.0,
                          "features": ["x", "y"]}  # no time features: only the weights can tell late from early
    plain = IncidentClassifier(**kw).fit(frame)
    recent = IncidentClassifier(recency_half_life_days=60, **kw).fit(frame)
    assert recent._recency(np.array([0.0, 60.0, 120.0])).tolist() == [0.25, 0.5, 1.0]
    j = list(plain.classes_).index("burglary")
    probe = frame.iloc[-500:]
    assert plain.predict_proba(probe)[:, j].mean() == pytest.approx(0.5, abs=0.05)
    assert recent.predict_proba(probe)[:, j].mean() == pytest.approx(0.8, abs=0.05)
    with pytest.raises(InputError):
        IncidentClassifier(recency_half_life_days=0, **kw).fit(frame)
