"""Context and profile features never see the row itself, its event or the future."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from crimelens.classify import IncidentClassifier
from crimelens.classify.context import ContextFeatures, window_counts
from crimelens.classify.profile import PlaceProfile


def test_window_counts_match_brute_force() -> None:
    rng = np.random.default_rng(3)
    n, m, k = 300, 80, 3
    rk, rt, ry = rng.integers(-1, 6, n), rng.integers(0, 1000, n), rng.integers(0, k, n)
    qk, qt = rng.integers(-1, 7, m), rng.integers(0, 1100, m)
    lo = qt - rng.integers(0, 300, m)
    got = window_counts(rk, rt, ry, qk, qt, lo, k)
    for i in range(m):
        want = np.zeros(k)
        if qk[i] >= 0:
            sel = (rk == qk[i]) & (rt < qt[i]) & (rt >= lo[i])
            want = np.bincount(ry[sel], minlength=k)
        np.testing.assert_array_equal(got[i], want)


CITY_AND_SHORT: dict[str, Any] = {"key_windows": {"all": (28, 91), "cell:600": (None, 365, 91)}}


@pytest.mark.parametrize("params", [{}, CITY_AND_SHORT], ids=["default", "city_and_short_windows"])
def test_context_ignores_future_and_own_labels(synth: pd.DataFrame, params: dict[str, Any]) -> None:
    ctx = ContextFeatures(**params).fit(synth)
    base = ctx.transform(synth)
    cut = synth["occurred_at"].iloc[len(synth) // 2]
    changed = synth.copy()
    future = changed["occurred_at"] >= cut
    changed.loc[future, "category"] = "robbery"  # rewrite every label from the cut on
    again = ContextFeatures(**params).fit(changed).transform(changed)
    past = (~future).to_numpy()
    pd.testing.assert_frame_equal(base[past], again[past])
    # the rows at the cut itself see only strictly earlier rows: their own labels changed
    # but their features did not
    at_cut = (synth["occurred_at"] == cut).to_numpy()
    pd.testing.assert_frame_equal(base[at_cut], again[at_cut])


def test_context_excludes_same_moment_same_place(synth: pd.DataFrame) -> None:
    row = synth.iloc[[100]]
    twin = pd.concat([synth.iloc[:100], row.assign(category="robbery", incident_id="twin")])
    one = ContextFeatures().fit(synth.iloc[:100]).transform(row)
    two = ContextFeatures().fit(twin).transform(row)
    pd.testing.assert_frame_equal(one, two)


def test_windows_count_recent_history_only() -> None:
    t = pd.to_datetime(["2020-01-01", "2020-06-01", "2021-01-10", "2021-01-20"], utc=True)
    frame = pd.DataFrame({"occurred_at": t, "category": ["a", "a", "b", "b"], "x": [0.0] * 4, "y": [0.0] * 4,
                          "crs": "EPSG:32617"})
    ctx = ContextFeatures(keys=("point",), windows=(None, 30), prior_strength=0.0).fit(frame)
    f = ctx.transform(frame)
    assert np.expm1(f["ctx_point_all_n"]).round().tolist() == [0, 1, 2, 3]
    assert np.expm1(f["ctx_point_30d_n"]).round().tolist() == [0, 0, 0, 1]
    assert f["ctx_point_30d_b"].iloc[3] == pytest.approx(1.0)


def test_profile_is_cross_fitted(synth: pd.DataFrame) -> None:
    prof = PlaceProfile(n_folds=5, random_state=1)
    a = prof.fit_transform(synth)
    flipped = synth.copy()
    fold = np.random.default_rng(1).integers(0, 5, len(synth))
    flipped.loc[fold == 0, "category"] = "robbery"  # change only fold 0's labels
    b = PlaceProfile(n_folds=5, random_state=1).fit_transform(flipped)
    # fold-0 rows never see fold-0 labels, their own included
    np.testing.assert_allclose(a[fold == 0].to_numpy(), b[fold == 0].to_numpy())
    assert not np.allclose(a[fold != 0].to_numpy(), b[fold != 0].to_numpy())


def test_profile_history_counts_only_earlier(synth: pd.DataFrame) -> None:
    train, later = synth.iloc[:2000], synth.iloc[2000:]
    prof = PlaceProfile().fit(train)
    q = later.iloc[:50]
    with_hist = prof.transform(q, history=later)
    future_only = later[later["occurred_at"] > q["occurred_at"].max()]
    pd.testing.assert_frame_equal(prof.transform(q), prof.transform(q, history=future_only))
    assert with_hist.shape == (50, len(prof.feature_names_))


def test_key_windows_add_city_wide_recent_mix() -> None:
    t = pd.to_datetime(["2020-01-01", "2020-01-02", "2020-03-01", "2020-03-02", "2020-03-03"], utc=True)
    frame = pd.DataFrame({"occurred_at": t, "category": ["a", "a", "b", "b", "b"], "x": [0.0, 900, 1800, 2700, 0],
                          "y": [0.0] * 5, "crs": "EPSG:32617"})
    ctx = ContextFeatures(keys=("point",), windows=(None,), key_windows={"all": (28,)}, prior_strength=0.0)
    f = ctx.fit(frame).transform(frame)
    assert [c for c in f.columns if c.startswith("ctx_all")] == ["ctx_all_28d_n", "ctx_all_28d_a", "ctx_all_28d_b"]
    assert "ctx_point_28d_n" not in f and "ctx_all_all_n" not in f
    # city-wide, the last 28 days, strictly earlier: the Jan incidents have dropped out by March
    assert np.expm1(f["ctx_all_28d_n"]).round().tolist() == [0, 1, 0, 1, 2]
    assert f["ctx_all_28d_b"].iloc[4] == pytest.approx(1.0)
    assert f["ctx_all_28d_a"].iloc[1] == pytest.approx(1.0)


@pytest.mark.parametrize("params", [None, CITY_AND_SHORT], ids=["default", "city_and_short_windows"])
def test_history_of_held_out_incidents_counts_only_strictly_earlier(
    synth: pd.DataFrame, params: dict[str, Any] | None
) -> None:
    """The deployment protocol of the time hold-out: each held-out incident is classified with
    every labelled incident before it known, its own label and later ones unknown."""
    train, test = synth.iloc[:2500], synth.iloc[2500:3300]
    clf = IncidentClassifier(context_params=params, params={"n_estimators": 60, "learning_rate": 0.1}).fit(train)
    p = clf.predict_proba(test, history=test)
    cut = test["occurred_at"].iloc[400]
    changed = test.copy()
    later = (changed["occurred_at"] >= cut).to_numpy()
    changed.loc[later, "category"] = np.where(changed.loc[later, "category"] == "robbery", "assault", "robbery")
    q = clf.predict_proba(test, history=changed)
    at_or_before = (test["occurred_at"] <= cut).to_numpy()  # the rows at the cut changed their own label
    np.testing.assert_allclose(p[at_or_before], q[at_or_before])
    assert not np.allclose(p[~at_or_before], q[~at_or_before])  # later rows do use earlier held-out labels
