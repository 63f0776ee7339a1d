"""Evaluation on arrival: the same answer as a full scan, only the touched series recomputed, fast."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd

from crimelens.alerts import ArrivalEvaluator, CountPanel, RuleBook, SpikeDetector
from crimelens.alerts.evaluation import PlantedSpike, plant_spikes

from .conftest import incidents_from_panel, simulate


def _split_city(seed: int, n_areas: int = 8) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp, PlantedSpike]:
    city = simulate(seed, n_areas=n_areas, days=420, weekly_mean=(3.0, 30.0))
    keys = city.panel.keys
    spike = PlantedSpike(keys["area"][5], keys["category"][5], city.panel.start + pd.Timedelta(days=413), 4.0)
    panel = plant_spikes(city.panel, [spike], city.rate, np.random.default_rng(seed))
    frame = incidents_from_panel(panel, seed)
    last_day = panel.end - pd.Timedelta(days=1)
    noon = last_day + pd.Timedelta(hours=12)
    return frame[frame["occurred_at"] < noon], frame[frame["occurred_at"] >= noon], panel.start, spike


def test_incremental_equals_full_scan_and_touches_only_affected_series() -> None:
    before, after, start, spike = _split_city(41)
    det = SpikeDetector(stl_score=False)
    panel = CountPanel.from_incidents(before, area_level="district", start=start)
    ev = ArrivalEvaluator(det, panel, recent=before)
    batches = np.array_split(after.index.to_numpy(), 4)
    for b in batches:
        res = ev.on_incidents(after.loc[b])
        assert not res.full_rescan
        assert res.affected_series == after.loc[b].groupby(["district", "category"]).ngroups
    full = det.scan(CountPanel.from_incidents(pd.concat([before, after]), area_level="district", start=start))
    inc = det.decide(ev.state)
    cols = ["observed", "expected", "p_value", "q_value", "alert"]
    merged = full.tests.merge(inc.tests, on=["area", "category", "window_days"], suffixes=("_full", "_inc"))
    assert len(merged) == len(full.tests)
    for c in cols:
        assert np.allclose(merged[f"{c}_full"].astype(float), merged[f"{c}_inc"].astype(float), equal_nan=True), c
    assert any((a.area, a.category) == (spike.area, spike.category) for a in inc.alerts)


def test_a_new_day_moves_the_window_and_rescans() -> None:
    before, after, start, _ = _split_city(42, n_areas=4)
    cut = after["occurred_at"].min().normalize()
    det = SpikeDetector(stl_score=False)
    ev = ArrivalEvaluator(det, CountPanel.from_incidents(before[before["occurred_at"] < cut], area_level="district",
                                                         start=start))
    res = ev.on_incidents(pd.concat([before[before["occurred_at"] >= cut], after]))
    assert res.full_rescan
    assert ev.now == cut + pd.Timedelta(days=1)


def test_rules_fire_on_arrival_only_for_new_incidents() -> None:
    before, after, start, _ = _split_city(43, n_areas=4)
    book = RuleBook.from_dict({"rule": [{"name": "watch theft", "type": "watch", "categories": ["theft"]}]})
    ev = ArrivalEvaluator(SpikeDetector(stl_score=False), CountPanel.from_incidents(before, area_level="district",
                                                                                    start=start),
                          rules=book, recent=before)
    batch = after[after["category"] == "theft"].head(3)
    res = ev.on_incidents(batch)
    watched = [a for a in res.alerts if a.kind == "watch"]
    assert sorted(i for a in watched for i in a.incident_ids) == sorted(f"sim:{i}" for i in batch["incident_id"])


def test_alert_latency_on_arrival_is_well_under_a_second() -> None:
    """300 areas × 8 categories (2,400 series): a batch of 20 incidents is evaluated in milliseconds."""
    city = simulate(44, n_areas=300, days=420, weekly_mean=(0.3, 10.0))
    frame = incidents_from_panel(city.panel, 44)
    noon = city.panel.end - pd.Timedelta(hours=12)
    before, after = frame[frame["occurred_at"] < noon], frame[frame["occurred_at"] >= noon]
    det = SpikeDetector(stl_score=False)
    t0 = time.perf_counter()
    ev = ArrivalEvaluator(det, CountPanel.from_incidents(before, area_level="district", start=city.panel.start),
                          recent=before)
    warm = time.perf_counter() - t0
    times = []
    for chunk in np.array_split(after.index.to_numpy(), max(len(after) // 20, 1))[:20]:
        times.append(ev.on_incidents(after.loc[chunk]).seconds)
    print(json.dumps({"series": ev.panel.n_series, "warm_up_s": round(warm, 3),
                      "arrival_median_ms": round(1000 * float(np.median(times)), 1),
                      "arrival_max_ms": round(1000 * float(np.max(times)), 1)}))
    assert float(np.median(times)) < 0.5
