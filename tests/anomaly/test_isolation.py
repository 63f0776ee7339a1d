"""Isolation Forest flags planted unusual incidents and says why."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from crimelens.anomaly import IncidentAnomalyDetector
from crimelens.exceptions import InputError, NotFittedError


def usual_city(n: int = 3000, seed: int = 0) -> pd.DataFrame:
    """Burglaries by day in the west, assaults at night in the east, thefts everywhere."""
    rng = np.random.default_rng(seed)
    kind = rng.choice(["burglary", "assault", "theft"], n, p=[0.4, 0.4, 0.2])
    west = kind == "burglary"
    x = np.where(west, rng.normal(0, 400, n), rng.normal(4000, 400, n))
    x = np.where(kind == "theft", rng.uniform(-500, 4500, n), x)
    y = rng.normal(0, 600, n)
    hour = np.where(kind == "assault", rng.choice([21, 22, 23, 0, 1, 2], n), rng.integers(8, 18, n))
    day = pd.Timestamp("2022-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 365, n), unit="D")
    return pd.DataFrame({
        "incident_id": [f"i{i}" for i in range(n)],
        "occurred_at": day + pd.to_timedelta(hour, unit="h"),
        "time_precision": "hour",
        "category": kind,
        "premises": np.where(west, "house", "street"),
        "x": x, "y": y, "crs": "EPSG:32617",
    })


def planted(base: pd.DataFrame) -> pd.DataFrame:
    """Ten homicides at 10:00 in a far corner where nothing else happens."""
    odd = base.iloc[:10].copy()
    odd["incident_id"] = [f"odd{i}" for i in range(10)]
    odd["category"] = "homicide"
    odd["premises"] = "school"
    odd["x"], odd["y"] = 9000.0 + np.arange(10), 9000.0
    odd["occurred_at"] = pd.Timestamp("2022-06-01 10:00", tz="UTC")
    return pd.concat([base, odd], ignore_index=True)


def test_planted_incidents_rank_top_with_reasons() -> None:
    data = planted(usual_city())
    res = IncidentAnomalyDetector(contamination=0.01).fit_score(data)
    frame = res.to_frame()
    top = res.top(15)
    assert top["incident_id"].str.startswith("odd").sum() >= 9
    odd = frame[frame["incident_id"].str.startswith("odd")]
    assert odd["is_anomaly"].all()
    assert odd["reasons"].str.contains("rare category").all()
    assert frame["is_anomaly"].mean() < 0.03


def test_scoring_new_incidents_and_contract() -> None:
    base = usual_city()
    det = IncidentAnomalyDetector(random_state=1)
    with pytest.raises(NotFittedError):
        det.score(base)
    assert clone(det).get_params() == det.get_params()
    det.fit(base)
    new = planted(usual_city(200, seed=9)).tail(12)
    s = det.score(new).to_frame()
    assert s.loc[s["incident_id"].str.startswith("odd"), "score"].min() > s.loc[
        ~s["incident_id"].str.startswith("odd"), "score"].max()
    again = IncidentAnomalyDetector(random_state=1).fit(base).score(new).to_frame()
    np.testing.assert_allclose(s["score"], again["score"])
    with pytest.raises(InputError):
        IncidentAnomalyDetector().fit(base.head(5))
