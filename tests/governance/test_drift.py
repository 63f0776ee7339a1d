"""MON-01: drift reports with PSI on frozen reference bins, KS / χ², Jensen–Shannon; a shifted
fixture is detected and an unshifted one (same distribution, another sample) is not."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid
from crimelens.governance.drift import (
    OTHER,
    DriftReference,
    DriftReport,
    DriftThresholds,
    freeze_bins,
    incident_drift,
    incident_features,
    psi,
    should_retrain,
)
from crimelens.synth import CityConfig, generate_city

TZ = "America/Chicago"


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    return generate_city(CityConfig(n_incidents=8_000, days=240, seed=2, size_m=8_000)).incidents


def _halves(frame: pd.DataFrame, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    m = np.random.default_rng(seed).random(len(frame)) < 0.5
    return frame[m], frame[~m]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_unshifted_sample_is_not_flagged(incidents: pd.DataFrame, seed: int) -> None:
    ref, cur = _halves(incidents, seed)
    report = incident_drift(ref, cur, timezone=TZ)
    assert report.status == "ok" and report.flagged() == []
    assert all(f.psi < 0.05 and f.js_distance < 0.1 for f in report.features)
    assert {f.name for f in report.features} == {"category", "hour", "weekday", "x", "y"}


def test_shifted_fixture_is_detected(incidents: pd.DataFrame) -> None:
    ref, cur = _halves(incidents, 0)
    cur = cur.copy()
    cur["x"] = cur["x"] + 1_500.0  # the feed now covers a district further east
    theft = cur["category"] == "theft"
    cur.loc[theft[theft].index[: int(0.6 * theft.sum())], "category"] = "fraud"  # a recoding
    late = pd.DatetimeIndex(cur["occurred_at"]) + pd.Timedelta(hours=6)
    cur["occurred_at"] = late  # times shifted by a time-zone bug
    report = incident_drift(ref, cur, timezone=TZ)
    by = {f.name: f for f in report.features}
    assert by["x"].flag == "alert" and by["x"].test == "ks" and by["x"].p_value < 1e-10
    assert by["category"].flag in ("warn", "alert") and by["category"].test == "chi2"
    assert by["hour"].flag in ("warn", "alert") and by["hour"].p_value < 1e-10
    assert by["y"].flag == "ok"
    assert report.status == "alert"
    decision = should_retrain(report)
    assert decision.retrain and any("x" in r for r in decision.reasons)
    doc = json.loads(report.to_json())
    assert doc["status"] == "alert" and "x" in doc["flagged"]


def test_psi_with_frozen_bins_handles_unseen_categories_and_empty_bins() -> None:
    ref = pd.Series(["a"] * 50 + ["b"] * 50)
    bins = freeze_bins(ref, "c", "categorical")
    assert bins.categories == ("a", "b") and bins.labels() == ["a", "b", OTHER]
    assert bins.reference == (0.5, 0.5, 0.0)
    cur = pd.Series(["a"] * 40 + ["b"] * 40 + ["zzz"] * 20)  # a category never seen before
    counts = bins.counts(cur)
    assert counts.tolist() == [40.0, 40.0, 20.0]
    value = psi(np.asarray(bins.reference), counts / counts.sum(), epsilon=1e-4)
    assert np.isfinite(value) and value > 0.25  # 20 % in a bin the reference never used
    assert psi(np.array([0.5, 0.5, 0.0]), np.array([0.5, 0.5, 0.0])) == pytest.approx(0.0)
    # continuous: quantile edges frozen on the reference, open outer bins
    x = pd.Series(np.arange(1000, dtype=float))
    cont = freeze_bins(x, "x", "continuous", DriftThresholds(bins=4))
    assert len(cont.edges) == 3 and cont.reference == pytest.approx((0.25, 0.25, 0.25, 0.25))
    far = cont.counts(pd.Series([5000.0, 6000.0, -1.0]))  # beyond the reference range
    assert far.tolist() == [1.0, 0.0, 0.0, 2.0]
    # a constant reference collapses to one edge and still works
    const = freeze_bins(pd.Series(np.ones(100)), "k", "continuous")
    assert const.edges == (1.0,) and const.counts(pd.Series([1.0, 2.0])).sum() == 2


def test_reference_is_frozen_and_round_trips(incidents: pd.DataFrame) -> None:
    ref, cur = _halves(incidents, 3)
    feats_ref, feats_cur = incident_features(ref), incident_features(cur)
    kinds = {"category": "categorical", "x": "continuous"}
    reference = DriftReference.fit(feats_ref, kinds)  # type: ignore[arg-type]
    first = reference.compare(feats_cur)
    again = DriftReference.from_dict(json.loads(json.dumps(reference.to_dict())))
    second = again.compare(feats_cur)
    assert [f.psi for f in first.features] == pytest.approx([f.psi for f in second.features])
    assert second.features[1].test == "chi2"  # KS needs the raw reference values
    # the edges do not move when later windows differ
    before = reference.bins["x"].edges
    reference.compare(feats_cur.assign(x=feats_cur["x"] * 2))
    assert reference.bins["x"].edges == before


def test_time_features_respect_precision() -> None:
    frame = pd.DataFrame({
        "occurred_at": pd.to_datetime(["2024-03-05 14:30", "2024-03-01 00:00", "2024-03-06 00:00"], utc=True),
        "time_precision": ["minute", "month", "day"], "category": ["theft", "theft", "fraud"],
        "x": [1.0, 2.0, 3.0], "y": [1.0, 2.0, 3.0],
    })
    f = incident_features(frame, grid=SquareGrid(0.0, 0.0, 2.0, 2, 2, "local"))
    assert f["hour"].tolist()[0] == 14 and f["hour"].isna().tolist() == [False, True, True]
    assert f["weekday"].isna().tolist() == [False, True, False] and f["weekday"].tolist()[2] == 2
    assert f["cell"].tolist() == [0, 3, 3]


def test_should_retrain_combines_drift_and_metric_drop() -> None:
    ok = DriftReport([], DriftThresholds())
    assert not should_retrain(ok).retrain
    assert not should_retrain(ok, metric_reference=7.0, metric_current=6.8).retrain
    d = should_retrain(ok, metric_reference=7.0, metric_current=5.6)
    assert d.retrain and d.metric_drop == pytest.approx(0.2) and "metric" in d.reasons[0]
    with pytest.raises(InputError):
        should_retrain(ok, metric_reference=0.0, metric_current=1.0)


def test_one_warning_is_watch_two_are_retrain(incidents: pd.DataFrame) -> None:
    ref, cur = _halves(incidents, 4)
    th = DriftThresholds(psi_warn=0.05, psi_alert=5.0)
    feats = incident_features(cur)
    one = DriftReference.fit(incident_features(ref), {"x": "continuous", "y": "continuous"}, th)
    shifted = one.compare(feats.assign(x=feats["x"] + 800.0))
    assert shifted.status == "warn" and not should_retrain(shifted).retrain
    both = one.compare(feats.assign(x=feats["x"] + 800.0, y=feats["y"] + 800.0))
    assert both.flagged() == ["x", "y"] and should_retrain(both).retrain


def test_small_windows_are_insufficient_not_flagged(incidents: pd.DataFrame) -> None:
    report = incident_drift(incidents, incidents.head(10))
    assert {f.flag for f in report.features} == {"insufficient"} and report.status == "ok"
    with pytest.raises(InputError):
        DriftThresholds(psi_warn=0.3, psi_alert=0.2)
    with pytest.raises(InputError):
        freeze_bins(pd.Series([], dtype=float), "x", "continuous")


def test_drift_on_classifier_features(incidents: pd.DataFrame) -> None:
    """The classifier's own feature table goes through the same report (kinds inferred)."""
    from crimelens.classify.features import IncidentFeatures

    ref, cur = _halves(incidents, 5)
    feats = IncidentFeatures(context=False, profile=False).fit(ref)
    reference = DriftReference.fit(feats.transform(ref))
    assert reference.compare(feats.transform(cur)).flagged("alert") == []
    moved = cur.assign(x=cur["x"] + 1_500.0, lon=cur["lon"] + 0.018)
    assert "x" in reference.compare(feats.transform(moved)).flagged("alert")
