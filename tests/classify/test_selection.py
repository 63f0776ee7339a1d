"""Time-aware splits, folds, calibration, decision weights, feature selection and search."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelens.classify import Calibrator, IncidentClassifier, fit_decision_weights
from crimelens.classify.selection import (
    cross_validate,
    feature_groups,
    random_split,
    select_features,
    successive_halving,
    time_folds,
    time_split,
)
from crimelens.exceptions import InputError

FAST = {"n_estimators": 60, "learning_rate": 0.15, "num_leaves": 15}


def test_time_split_holds_out_the_latest(synth: pd.DataFrame) -> None:
    tr, te = time_split(synth, 0.2)
    assert len(te) == round(0.2 * len(synth))
    assert synth["occurred_at"].iloc[tr].max() <= synth["occurred_at"].iloc[te].min()
    _tr2, te2 = time_split(synth, at="2021-01-01")
    assert (synth["occurred_at"].iloc[te2] >= pd.Timestamp("2021-01-01", tz="UTC")).all()
    with pytest.raises(InputError):
        random_split(10, 1.5)


def test_time_folds_train_before_test_with_gap(synth: pd.DataFrame) -> None:
    folds = list(time_folds(synth, 3, gap_days=7))
    assert len(folds) == 3
    t = synth["occurred_at"]
    for tr, te in folds:
        assert not set(tr) & set(te)
        assert t.iloc[tr].max() <= t.iloc[te].min() - pd.Timedelta(days=7)


def test_calibrator_fixes_overconfidence() -> None:
    rng = np.random.default_rng(0)
    n, k = 3000, 3
    true = rng.dirichlet(np.ones(k), n)
    y = np.array([rng.choice(k, p=p) for p in true])
    over = true**3 / (true**3).sum(axis=1, keepdims=True)  # overconfident version

    def nll(p: np.ndarray) -> float:
        return float(-np.log(p[np.arange(n), y]).mean())

    cal = Calibrator(method="temperature").fit(over, y)
    assert cal.temperature_ > 1.5
    assert nll(cal.transform(over)) < nll(over)


def test_decision_weights_raise_macro_f1() -> None:
    from sklearn.metrics import f1_score

    rng = np.random.default_rng(1)
    n = 4000
    y = rng.choice(3, n, p=[0.8, 0.15, 0.05])
    p = np.full((n, 3), 0.1)
    p[np.arange(n), y] += rng.uniform(0, 0.5, n)
    p[:, 0] += 0.25
    p /= p.sum(axis=1, keepdims=True)
    w = fit_decision_weights(p, y)
    before = f1_score(y, p.argmax(1), average="macro")
    after = f1_score(y, (p * w).argmax(1), average="macro")
    assert after > before + 0.05


def test_feature_groups_keep_related_columns_together() -> None:
    g = feature_groups(["hour", "hour_sin", "hour_cos", "x", "y", "ctx_point_all_n", "ctx_point_all_a",
                        "ctx_point_365d_a", "premises"])
    assert g["hour"] == ["hour", "hour_sin", "hour_cos"]
    assert g["xy"] == ["x", "y"]
    assert g["ctx_point_all"] == ["ctx_point_all_n", "ctx_point_all_a"]


def test_select_features_and_cross_validate(synth: pd.DataFrame) -> None:
    clf = IncidentClassifier(params=FAST)
    sel = select_features(clf, synth, n_repeats=1)
    assert 0 < len(sel.selected) <= len(clf.fit(synth.iloc[:500]).feature_names_)
    assert sel.importance["importance"].iloc[0] > 0
    scores = cross_validate(clf.set_params(features=sel.selected), synth, list(time_folds(synth, 2)))
    assert len(scores) == 2 and all(s.log_loss < 1.4 for s in scores)


def test_successive_halving_respects_space(synth: pd.DataFrame) -> None:
    space = {"num_leaves": (7, 15), "learning_rate": (0.1, 0.2)}
    res = successive_halving(IncidentClassifier(params={"n_estimators": 50}), synth, space,
                             n_candidates=4, eta=2, min_fraction=0.5, time_budget_s=120)
    assert res.best_params["num_leaves"] in (7, 15)
    assert {"rung", "n_train", "log_loss"} <= set(res.to_frame().columns)
    assert res.to_frame()["rung"].max() >= 1
    assert np.isfinite(res.best_log_loss)
