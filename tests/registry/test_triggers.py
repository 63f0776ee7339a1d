"""The retraining triggers: schedule, PSI above its band, two periods below baseline, schema change."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from crimelens.registry import ModelState, RetrainPolicy, retrain_reasons, schema_fingerprint

NOW = datetime(2024, 7, 8, 5, tzinfo=UTC)


def test_nothing_to_do_when_young_and_steady() -> None:
    state = ModelState(trained_at=NOW - timedelta(days=2), baseline=0.4, recent_scores=[0.41, 0.39, 0.42])
    assert retrain_reasons(state, NOW) == []


def test_each_trigger_and_its_reason() -> None:
    assert retrain_reasons(ModelState(trained_at=None), NOW) == ["schedule: no production version"]
    old = retrain_reasons(ModelState(trained_at=NOW - timedelta(days=7)), NOW)
    assert old and old[0].startswith("schedule: production is 7.0 days old")
    drift = retrain_reasons(ModelState(trained_at=NOW, drift_alerts=["category", "hour"]), NOW)
    assert drift == ["drift: PSI above its band on category, hour"]
    one_low = ModelState(trained_at=NOW, baseline=0.4, recent_scores=[0.41, 0.35])
    assert retrain_reasons(one_low, NOW) == []  # one bad period is a reason to watch, not to retrain
    two_low = ModelState(trained_at=NOW, baseline=0.4, recent_scores=[0.35, 0.33])
    assert retrain_reasons(two_low, NOW)[0].startswith("backtest: metric below baseline 0.4 for 2 periods")
    assert retrain_reasons(two_low, NOW, RetrainPolicy(tolerance=0.1)) == []
    a, b = schema_fingerprint(["x", "y", "category"]), schema_fingerprint(["category", "y", "x"])
    assert a == b and schema_fingerprint(["x", "y", "category", "beat"]) != a
    changed = ModelState(trained_at=NOW, schema_fingerprint=schema_fingerprint(["x", "beat"]), trained_schema=a)
    assert retrain_reasons(changed, NOW) == ["schema: the incident schema changed since production was trained"]
    with pytest.raises(ValueError, match="retrain policy"):
        RetrainPolicy(periods_below=0)
