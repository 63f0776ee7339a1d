"""The model registry on real fitted forecasters: round trip, promotion both ways, rollback,
corrupt manifests and interrupted writes."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from crimelens.forecast import make
from crimelens.forecast.persistence import load_model
from crimelens.registry import ModelRegistry, PromotionRule, RegistryError
from crimelens.registry.fitted import register_forecaster, score_forecaster

UNTIL = pd.Timestamp("2020-07-20", tz="UTC")


def _fit(city: pd.DataFrame, **params: float) -> tuple[object, object]:
    train = city[pd.to_datetime(city["occurred_at"], utc=True) < UNTIL]
    scored = score_forecaster("retro_count", train, until=UNTIL, params={"cell_size": 100.0, **params})
    est = make("retro_count", cell_size=100.0, horizon="7d", **params).fit(train, until=UNTIL)
    return est, scored


def test_round_trip(registry: ModelRegistry, city: pd.DataFrame) -> None:
    est, scored = _fit(city)
    m = register_forecaster(registry, est, city, scored=scored, reason="test")  # type: ignore[arg-type]
    assert (m.name, m.version) == ("forecast-retro_count", "v1")
    assert registry.aliases(m.name) == {"candidate": "v1"}
    again = registry.get(m.name, "candidate")
    assert again == m
    assert again.training_window["end"] == UNTIL.isoformat()
    assert again.data_fingerprint and len(again.data_fingerprint) == 64
    assert set(again.metrics) == {"hit_rate@0.05", "pai@0.05"}
    assert again.bias_audit["status"] in ("pass", "fail", "warn") or "passed" in again.bias_audit
    model, _ = load_model(registry.artifact(again))
    assert model.predict(horizon="7d").score.tolist() == est.predict(horizon="7d").score.tolist()  # type: ignore[attr-defined]


def _manifest(registry: ModelRegistry, score: float, passed: bool = True) -> str:
    from crimelens.registry import Manifest

    draft = Manifest(name="m", version="", kind="forecaster", created_at="", training_window={}, params={},
                     data_fingerprint=None, code_version="t", metrics={"hit_rate@0.05": score},
                     bias_audit={"passed": passed, "flagged": [] if passed else ["NE"]})
    return registry.register(draft).version


def test_promotion_follows_real_backtests(registry: ModelRegistry, city: pd.DataFrame) -> None:
    short, s_short = _fit(city, lookback_days=7)
    long, s_long = _fit(city, lookback_days=120)
    first = register_forecaster(registry, short, city, scored=s_short)  # type: ignore[arg-type]
    name = first.name
    first_decision = registry.promote(name, rule=PromotionRule(), force=not first.audit_passed)
    assert first_decision.promote and registry.aliases(name) == {"production": "v1"}
    second = register_forecaster(registry, long, city, scored=s_long)  # type: ignore[arg-type]
    assert second.parent == "v1"  # lineage
    decision = registry.promote(name, "candidate")
    better = second.metrics["hit_rate@0.05"] >= first.metrics["hit_rate@0.05"]
    assert decision.promote == (better and second.audit_passed)
    assert registry.aliases(name).get("production") == ("v2" if decision.promote else "v1")
    assert [m.version for m in registry.lineage(name, "v2")] == ["v2", "v1"]


def test_worse_or_unaudited_candidate_is_refused(registry: ModelRegistry) -> None:
    _manifest(registry, 0.30)
    assert registry.promote("m").promote
    _manifest(registry, 0.25)
    refused = registry.promote("m")
    assert not refused.promote and "worse" in refused.reasons[-1]
    assert registry.aliases("m") == {"production": "v1", "candidate": "v2"}
    _manifest(registry, 0.50, passed=False)
    biased = registry.promote("m")
    assert not biased.promote and "failed its bias audit" in biased.reasons[0]
    _manifest(registry, 0.31)
    assert registry.promote("m").promote and registry.aliases("m")["production"] == "v4"
    assert registry.promote("m", "v2", rule=PromotionRule(tolerance=0.1)).promote  # within tolerance


def test_rollback(registry: ModelRegistry) -> None:
    _manifest(registry, 0.2)
    registry.promote("m")
    with pytest.raises(RegistryError, match="no earlier production"):
        registry.rollback("m")
    _manifest(registry, 0.3)
    registry.promote("m")
    assert registry.rollback("m") == "v1"
    assert registry.aliases("m")["production"] == "v1"
    assert [h["note"] for h in registry.history("m")][-1] == "rollback from v2"


def test_corrupt_manifest_is_reported_and_changes_nothing(registry: ModelRegistry) -> None:
    _manifest(registry, 0.2)
    registry.promote("m")
    _manifest(registry, 0.3)
    bad = registry.root / "m" / "v2" / "manifest.json"
    bad.write_text('{"format": "crimelens-model-manifest/1", "name": "m", ', encoding="utf-8")
    aliases = (registry.root / "m" / "aliases.json").read_bytes()
    with pytest.raises(RegistryError, match="corrupt manifest"):
        registry.get("m", "candidate")
    with pytest.raises(RegistryError, match="corrupt manifest"):
        registry.promote("m")
    with pytest.raises(RegistryError, match="corrupt manifest"):
        registry.versions("m")
    assert (registry.root / "m" / "aliases.json").read_bytes() == aliases
    assert registry.get("m").version == "v1"
    bad.write_text('{"format": "crimelens-model-manifest/1", "name": "m", "version": "v2", "kind": "x"}')
    with pytest.raises(RegistryError, match="missing or not a"):
        registry.get("m", "v2")


def test_interrupted_writes_leave_no_version(registry: ModelRegistry, tmp_path: Path) -> None:
    _manifest(registry, 0.2)
    (registry.root / "m" / ".v2.crashed").mkdir()  # a registration killed before its rename
    (registry.root / "m" / ".aliases.json.x.tmp").write_text("{")  # an alias write killed before its rename
    assert [m.version for m in registry.versions("m")] == ["v1"]
    assert registry.aliases("m") == {"candidate": "v1"}
    assert _manifest(registry, 0.3) == "v2"


def test_artifact_tampering_is_detected(registry: ModelRegistry, tmp_path: Path) -> None:
    from crimelens.registry import Manifest

    art = tmp_path / "model.bin"
    art.write_bytes(b"weights")
    draft = Manifest(name="m", version="", kind="classifier", created_at="", training_window={}, params={},
                     data_fingerprint=None, code_version="t", artifact="model.bin")
    m = registry.register(draft, art)
    assert registry.artifact(m).read_bytes() == b"weights"
    (registry.root / "m" / "v1" / "model.bin").write_bytes(b"evil")
    with pytest.raises(RegistryError, match="SHA-256"):
        registry.artifact(m)
