"""SHAP explanations add up to the calibrated probabilities; models survive a save/load."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.special import softmax

from crimelens.classify import IncidentClassifier
from crimelens.classify.persistence import load_model, model_metadata, read_metadata, save_model
from crimelens.exceptions import InputError

FAST = {"n_estimators": 80, "learning_rate": 0.1, "num_leaves": 15}


@pytest.fixture(scope="module")
def fitted(synth: pd.DataFrame) -> IncidentClassifier:
    return IncidentClassifier(params=FAST).fit(synth.iloc[:3000])


def test_shap_is_additive_and_plots(fitted: IncidentClassifier, synth: pd.DataFrame, tmp_path: Path) -> None:
    pytest.importorskip("shap")
    from crimelens.classify import explain as ex

    test = synth.iloc[3000:3200]
    e = ex.explain(fitted, test, max_rows=None)
    logits = e.base + e.values.sum(axis=1)
    np.testing.assert_allclose(softmax(logits, axis=1), fitted.predict_proba(test), atol=1e-4)
    glob = e.global_importance(grouped=True)
    assert glob["overall"].is_monotonic_decreasing and "premises" in glob.index
    c = e.contributions(0, top=5)
    assert len(c) == 5 and c["contribution"].abs().is_monotonic_decreasing
    for png in (ex.plot_importance(e, tmp_path / "g.png"), ex.plot_contributions(e, 0, tmp_path / "one.png")):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pdp = ex.partial_dependence(fitted, test, "hour", grid=6)
    assert len(pdp) >= 3 and np.allclose(pdp[list(map(str, fitted.classes_))].sum(axis=1), 1.0)
    assert ex.plot_partial_dependence(pdp, tmp_path / "pdp.png").exists()


def test_explain_needs_a_booster(synth: pd.DataFrame) -> None:
    from crimelens.classify import explain as ex

    clf = IncidentClassifier(model="logistic", context=False, profile=False).fit(synth.iloc[:800])
    with pytest.raises(InputError):
        ex.explain(clf, synth.iloc[:10])


def test_save_load_roundtrip(fitted: IncidentClassifier, synth: pd.DataFrame, tmp_path: Path) -> None:
    path = tmp_path / "m.joblib"
    meta = model_metadata(fitted, synth.iloc[:3000], note="test")
    save_model(fitted, path, meta)
    saved = load_model(path)
    test = synth.iloc[3000:3100]
    np.testing.assert_allclose(saved.estimator.predict_proba(test), fitted.predict_proba(test))
    side = read_metadata(path)
    assert side["classes"] == [str(c) for c in fitted.classes_] and side["note"] == "test"
    assert side["n_train"] == 3000 and "lightgbm" in side["versions"]
    bad = tmp_path / "bad.joblib"
    bad.write_bytes(b"not a model")
    with pytest.raises(InputError):
        load_model(bad)
    with pytest.raises(InputError):
        load_model(tmp_path / "missing.joblib")
