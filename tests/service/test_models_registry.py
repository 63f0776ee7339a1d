"""``/api/v1/models`` reads the model registry: versions, aliases, manifests, and a damaged registry
answered as 503 without the server's folders."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from crimelens.registry import Manifest, ModelRegistry
from tests.service.conftest import Env, make_env


@pytest.fixture
def renv(template_store: Path, tmp_path: Path) -> Iterator[tuple[Env, ModelRegistry]]:
    reg = ModelRegistry(tmp_path / "models")
    for score, passed in ((0.3, True), (0.35, True)):
        reg.register(Manifest(name="forecast-retro_kde", version="", kind="forecaster", created_at="",
                              training_window={"start": "2024-01-01", "end": "2024-06-01", "incidents": 10},
                              params={"cell_size": 200.0}, data_fingerprint="ab" * 32, code_version="t",
                              metrics={"hit_rate@0.05": score}, bias_audit={"passed": passed, "status": "ok"}))
        assert reg.promote("forecast-retro_kde").promote
    reg.register(Manifest(name="forecast-retro_kde", version="", kind="forecaster", created_at="",
                          training_window={}, params={}, data_fingerprint=None, code_version="t",
                          metrics={"hit_rate@0.05": 0.1}, bias_audit={"passed": False, "status": "flagged",
                                                                       "flagged": ["north"]}))
    for env in make_env(template_store, tmp_path, registry_dir=tmp_path / "models"):
        yield env, reg


def test_models_lists_the_registry(renv: tuple[Env, ModelRegistry]) -> None:
    env, reg = renv
    h = env.auth("viewer")
    body = env.client.get("/api/v1/models", headers=h).json()
    (entry,) = body["registry"]
    assert entry["name"] == "forecast-retro_kde" and entry["aliases"] == reg.aliases("forecast-retro_kde")
    assert [v["version"] for v in entry["versions"]] == ["v1", "v2", "v3"]
    assert entry["versions"][2]["bias_audit"] == {"passed": False, "status": "flagged", "flagged": ["north"]}
    prod = env.client.get("/api/v1/models/forecast-retro_kde/production", headers=h).json()
    assert prod["version"] == "v2" and prod["lineage"] == ["v2"] and prod["aliases"] == ["production"]
    assert env.client.get("/api/v1/models/forecast-retro_kde/v9", headers=h).status_code == 404
    assert env.client.get("/api/v1/models/nothing/production", headers=h).status_code == 404
    assert env.client.get("/api/v1/models").status_code == 401


def test_a_damaged_registry_is_a_clear_503(renv: tuple[Env, ModelRegistry]) -> None:
    env, reg = renv
    (reg.root / "forecast-retro_kde" / "v3" / "manifest.json").write_text("{", encoding="utf-8")
    h = env.auth("viewer")
    r = env.client.get("/api/v1/models", headers=h)
    assert r.status_code == 503
    assert "corrupt manifest forecast-retro_kde/v3/manifest.json" in r.text and str(reg.root) not in r.text
    assert env.client.get("/api/v1/models/forecast-retro_kde/v2", headers=h).status_code == 200
