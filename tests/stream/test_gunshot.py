"""Gunshot-detection sensor events over a real broker into a store, and the 'gunfire cluster' rule."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")

from crimelens.alerts.rules import RuleBook
from crimelens.alerts.series import evaluate_rules
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter
from crimelens.sources.mapping import load_preset
from crimelens.store import connect
from crimelens.stream import StreamOptions, consume
from tests.conftest import TEST_KEY
from tests.stream.conftest import AmqpQueue

pytestmark = pytest.mark.service
GUNSHOT = load_preset("gunshot_detection")
RULES = """
[[rule]]
name = "gunfire cluster"
type = "series"
categories = ["gunshot_detected"]
min_count = 3
radius_m = 500
hours = 1
severity = "high"
"""
NOW = pd.Timestamp("2024-05-05T00:30:00Z")


def detection(i: int, minutes_before: float, north_m: float, east_m: float, rounds: int = 2) -> dict[str, Any]:
    """One sensor message, placed in metres from a point on Chicago's South Side."""
    lat = 41.7793 + north_m / 111_320
    lon = -87.6440 + east_m / (111_320 * 0.7466)  # cos(41.78°)
    at = NOW - pd.Timedelta(minutes=minutes_before)
    return {"id": f"GS-2024-{i:06d}", "detected_at": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "lat": round(lat, 6),
            "lon": round(lon, 6), "rounds": rounds, "confidence": 0.9,
            "type": "multiple_gunshots" if rounds > 1 else "single_gunshot", "sensor_count": 7}


def test_detections_become_sensor_records_and_three_within_500m_in_an_hour_raise_one_alert(
    amqp_queue: AmqpQueue, tmp_path: Path
) -> None:
    cluster = [detection(1, 50, 0, 0), detection(2, 30, 250, 100), detection(3, 5, -150, 300, rounds=6)]
    spread = [detection(4, 200, 3000, 0), detection(5, 130, 3100, 50), detection(6, 20, 3050, -100)]  # 3 h apart
    far = [detection(7, 10, -4000, -4000), detection(8, 12, -4000, -1500, rounds=1)]  # 2.5 km apart
    amqp_queue.publish([json.dumps(d).encode() for d in cluster + spread + far])
    store = connect(str(tmp_path / "g.duckdb"))
    try:
        summary = consume(store, GUNSHOT, StreamOptions(url=amqp_queue.url, batch=50, max_wait=0.5, idle_exit=1.0),
                          key=TEST_KEY)
        assert summary.stored == 8 and summary.quarantined == 0
        assert store.info()["incidents"] == 8
        assert len(store.incidents()) == 0  # not crimes: every crime count leaves them out
        got = store.incidents(IncidentFilter(kinds=("sensor",)))
    finally:
        store.close()
    assert set(got["record_kind"]) == {"sensor"} and set(got["category"]) == {"gunshot_detected"}
    assert set(got["category_precision"]) == {"leaf"} and set(got["location_precision"]) == {"block"}
    assert got["firearm"].all()
    extra = got.set_index("incident_id")["extra"].map(json.loads)
    assert extra["GS-2024-000003"]["rounds"] == "6" and extra["GS-2024-000003"]["confidence"] == "0.9"

    book = RuleBook.from_dict(tomllib.loads(RULES))
    alerts = evaluate_rules(book, got, NOW)
    assert len(alerts) == 1
    (alert,) = alerts
    assert alert.kind == "series" and alert.severity == "high" and alert.observed == 3
    assert sorted(alert.incident_ids) == [f"gunshot_detection:GS-2024-00000{i}" for i in (1, 2, 3)]
    # the same detections over a day-long window also join the 3-hour spread
    daily = RuleBook.from_dict(tomllib.loads(RULES.replace("hours = 1", "hours = 24")))
    assert sorted(a.observed for a in evaluate_rules(daily, got, NOW)) == [3, 3]


def test_a_window_in_hours_is_validated() -> None:
    with pytest.raises(InputError, match="hours must be positive"):
        RuleBook.from_dict(tomllib.loads(RULES.replace("hours = 1", "hours = 0")))
    with pytest.raises(InputError, match="hours must be positive"):
        RuleBook.from_dict(tomllib.loads(RULES.replace("hours = 1", "hours = 200")))
    book = RuleBook.from_dict(tomllib.loads(RULES))
    assert RuleBook.from_dict(book.to_dict()) == book and book.rules[0].window == pd.Timedelta(hours=1)
