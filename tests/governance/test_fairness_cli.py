"""``crimelens audit`` end to end on a temporary DuckDB store loaded through the real ingest path."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.geo.crs import to_wgs84
from crimelens.synth import CityConfig, SyntheticCity, generate_city, write_portal

runner = CliRunner()


@pytest.fixture(scope="module")
def city() -> SyntheticCity:
    return generate_city(CityConfig(n_incidents=6_000, days=400, seed=4, size_m=8_000))


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, city: SyntheticCity) -> str:
    root = tmp_path_factory.mktemp("audit")
    src = root / "city.csv"
    write_portal(city, src, fmt="chicago")
    path = str(root / "c.duckdb")
    res = runner.invoke(app, ["ingest", str(src), "--preset", "chicago", "--db", path, "--json"])
    assert res.exit_code == 0, res.output
    return path


def _audit(db: str, out: Path, *extra: str) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(app, ["audit", "--model", "retro_count", "--cell", "250", "--coverage", "0.05",
                              "--at", "2022-12-01", "--horizon", "28d", "--out", str(out), "--db", db, "--json",
                              *extra])
    assert res.exit_code == 0, res.output
    return dict(json.loads(res.stdout))


def test_audit_by_area_writes_json_and_html(db: str, tmp_path: Path) -> None:
    out = tmp_path / "aud"
    payload = _audit(db, out, "--groups", "community_area", "--police-initiated-weight", "0")
    assert payload["k"] == round(0.05 * payload["area_cells"])
    assert sorted(Path(p).name for p in payload["files"]) == ["audit.html", "audit.json", "audit.png"]
    doc = json.loads((out / "audit.json").read_text())
    assert doc["metadata"]["group_by"] == "community_area"
    assert doc["metadata"]["model_metadata"]["model"] == "retro_count"
    assert doc["metadata"]["test_window"]["start"].startswith("2022-12-01")
    assert doc["metadata"]["test_window"]["incidents"] > 100
    assert doc["metadata"]["guard"]["police_initiated_weight"] == 0.0
    groups = doc["groups"]
    assert len(groups) >= 3 and sum(g["allocation_share"] for g in groups) == pytest.approx(1.0)
    assert all(g["calibration_ratio"] is not None for g in groups if g["expected"])
    flagged = {g["group"] for g in groups if g["flag"] in ("under", "over")}
    assert flagged == set(payload["flagged"]) and payload["passed"] == (not flagged)
    html = (out / "audit.html").read_text()
    assert "Bias audit" in html and "data:image/png;base64," in html and "https://" not in html


def test_audit_with_population_layer(db: str, city: SyntheticCity, tmp_path: Path) -> None:
    """Residents per truth cell, split into two groups by the city's deprivation covariate."""
    cov = city.truth.covariates
    lon, lat = to_wgs84(cov["x"].to_numpy(), cov["y"].to_numpy(), city.truth.grid.crs)
    deprived = cov["deprivation"].to_numpy() > 0
    pop = pd.DataFrame({"lon": np.r_[lon, lon], "lat": np.r_[lat, lat],
                        "group": ["deprived"] * len(cov) + ["other"] * len(cov),
                        "population": np.r_[cov["residents"] * deprived, cov["residents"] * ~deprived]})
    path = tmp_path / "pop.csv"
    pop.to_csv(path, index=False)
    out = tmp_path / "aud_pop"
    payload = _audit(db, out, "--population", str(path))
    doc = json.loads((out / "audit.json").read_text())
    assert doc["basis"] == "population" and {g["group"] for g in doc["groups"]} == {"deprived", "other"}
    assert sum(g["population_share"] for g in doc["groups"]) == pytest.approx(1.0)
    assert payload["concentration"]["top_group"] in ("deprived", "other")


@pytest.mark.parametrize(("args", "message"), [
    (["--groups", "postcode"], "--groups"),
    (["--coverage", "1.5"], "--coverage"),
    (["--at", "yesterday"], "--at"),
    (["--model", "crystal_ball"], "unknown model"),
    (["--population", "/nonexistent/pop.csv"], "--population"),
    (["--at", "1990-01-01"], "no located incidents"),
    (["--groups", "neighbourhood"], "no incident has a 'neighbourhood' value"),
])
def test_audit_bad_input_exits_2_with_one_line(db: str, tmp_path: Path, args: list[str], message: str) -> None:
    base = {"--model": "retro_count", "--at": "2022-12-01", "--groups": "community_area", "--coverage": "0.05"}
    for key, value in zip(args[::2], args[1::2], strict=True):
        base[key] = value
    argv = ["audit", "--out", str(tmp_path / "x"), "--db", db]
    for key, value in base.items():
        argv += [key, value]
    res = runner.invoke(app, argv)
    assert res.exit_code == 2, res.output
    assert message in res.stderr and res.stderr.count("\n") == 1
