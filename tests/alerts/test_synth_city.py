"""False alerts and what the alerts find on cities from :mod:`crimelens.synth`."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from crimelens.alerts import CountPanel, SpikeDetector, attach_incidents
from crimelens.alerts.evaluation import false_alerts

synth = pytest.importorskip("crimelens.synth")

DAYS = 500


@pytest.fixture(scope="module")
def poisson_city() -> object:
    return synth.generate_city(synth.CityConfig(n_incidents=40_000, days=DAYS, seed=31, kind="poisson"))


@pytest.fixture(scope="module")
def realistic_city() -> object:
    return synth.generate_city(synth.CityConfig(n_incidents=40_000, days=DAYS, seed=32, kind="realistic"))


def test_no_spike_city_raises_at_most_one_false_alert_per_100_area_weeks(poisson_city: object) -> None:
    """A homogeneous Poisson city (no hot spots, seasonality or contagion): every alert is false."""
    panel = CountPanel.from_incidents(poisson_city.incidents, area_level="district")  # type: ignore[attr-defined]
    det = SpikeDetector(stl_score=False)
    for step, first in ((7, 120), (1, DAYS - 120)):
        rep = false_alerts(det, panel, first_end=first, last_end=panel.n_days, step_days=step)
        print(json.dumps({"city": "synth poisson", "level": "district", "series": panel.n_series,
                          "scan": "weekly" if step == 7 else "daily", **rep.to_dict()}))
        assert rep.per_100_area_weeks <= 1.0


def test_alerts_on_a_realistic_city_point_at_contagion(realistic_city: object) -> None:
    """In a city with near-repeat contagion, incidents behind alerts are offspring more often than average."""
    city = realistic_city
    frame = city.incidents  # type: ignore[attr-defined]
    panel = CountPanel.from_incidents(frame, area_level="district")
    det = SpikeDetector(stl_score=False)
    rep = false_alerts(det, panel, first_end=120, last_end=panel.n_days, step_days=7)
    found = []
    for e in range(120, panel.n_days + 1, 7):
        found.extend(det.scan(panel, end=panel.start + pd.Timedelta(days=e)).alerts)
    attach_incidents(found, frame)
    lineage = city.truth.lineage.set_index("incident_id")["component"]  # type: ignore[attr-defined]
    ids = [i.split(":", 1)[1] for a in found for i in a.incident_ids]
    share_alerts = float(np.mean(lineage.loc[ids] == "offspring")) if ids else float("nan")
    share_all = float(np.mean(lineage == "offspring"))
    print(json.dumps({"city": "synth realistic", "alert_episodes_per_100_area_weeks": rep.per_100_area_weeks,
                      "alerts": len(found), "offspring_share_behind_alerts": share_alerts,
                      "offspring_share_overall": share_all}))
    assert rep.per_100_area_weeks <= 3.0
    if ids:
        assert share_alerts > share_all
