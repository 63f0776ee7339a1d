"""``crimelens publish`` end to end: generate, ingest into a temporary DuckDB store, publish."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.ingest import ingest_file
from crimelens.store import connect
from crimelens.synth import CityConfig, generate_city, write_portal
from tests.conftest import TEST_KEY

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    root = tmp_path_factory.mktemp("publish")
    city = generate_city(CityConfig(n_incidents=2_000, days=60, seed=4, size_m=5_000))
    src = root / "city.csv"
    write_portal(city, src)
    path = str(root / "p.duckdb")
    store = connect(path)
    try:
        assert ingest_file(store, src, key=TEST_KEY).stored == 2_000
    finally:
        store.close()
    return path


def test_publish_points_with_report(db: str, tmp_path: Path) -> None:
    out, report = tmp_path / "points.geojson", tmp_path / "report.json"
    res = runner.invoke(app, ["publish", "--out", str(out), "--db", db, "--k", "10", "--seed", "9",
                              "--report", str(report), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    rep = json.loads(report.read_text())
    assert rep["guarantee_met"] and rep["verification"]["min_k_anonymity"] >= 10
    assert "seed" not in rep and "seed" not in rep["parameters"] and rep["seed_published"] is False
    features = json.loads(out.read_text())["features"]
    assert len(features) == payload["rows"] == rep["records"]
    assert set(features[0]["properties"]) == {"release_id", "category", "category_group", "date"}


def test_publish_areas_and_snap(db: str, tmp_path: Path) -> None:
    out = tmp_path / "areas.csv"
    res = runner.invoke(app, ["publish", "--out", str(out), "--db", db, "--kind", "areas", "--area", "beat",
                              "--period", "month"])
    assert res.exit_code == 0, res.output
    table = pd.read_csv(out, dtype={"beat": str})
    shown = table["count"].dropna()
    assert not ((shown > 0) & (shown < 10)).any() and table["suppressed"].any()
    res = runner.invoke(app, ["publish", "--out", str(tmp_path / "s.parquet"), "--db", db, "--method", "snap",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["min_anchor_catchment"] >= 10


@pytest.mark.parametrize(("args", "message"), [
    (["--kind", "areas", "--area", "precinct"], "unknown area column 'precinct'"),
    (["--kind", "areas", "--area", "neighbourhood"], "area column 'neighbourhood' is empty"),
    (["--method", "blur"], "--method for --kind points must be one of donut, snap"),
    (["--kind", "areas", "--period", "day"], "--period for --kind areas"),
])
def test_publish_bad_input_exits_2_with_one_line(db: str, tmp_path: Path, args: list[str], message: str) -> None:
    res = runner.invoke(app, ["publish", "--out", str(tmp_path / "x.csv"), "--db", db, *args])
    assert res.exit_code == 2 and message in res.stderr and res.stderr.count("\n") == 1
    assert not (tmp_path / "x.csv").exists()


def test_publish_bad_output_suffix(db: str, tmp_path: Path) -> None:
    res = runner.invoke(app, ["publish", "--out", str(tmp_path / "x.xlsx"), "--db", db])
    assert res.exit_code == 2 and "unsupported output" in res.stderr


def test_publish_with_reference_layer_and_grid(db: str, tmp_path: Path) -> None:
    store = connect(db, read_only=True)
    try:
        pts = store.incidents(columns=["lat", "lon"]).dropna()
    finally:
        store.close()
    ref = tmp_path / "addresses.csv"
    pts.drop_duplicates().to_csv(ref, index=False)
    out, report = tmp_path / "p.csv", tmp_path / "r.json"
    res = runner.invoke(app, ["publish", "--out", str(out), "--db", db, "--reference", str(ref),
                              "--report", str(report)])
    assert res.exit_code == 0, res.output
    assert json.loads(report.read_text())["parameters"]["reference"] == "reference layer"
    res = runner.invoke(app, ["publish", "--out", str(tmp_path / "g.geojson"), "--db", db, "--kind", "grid",
                              "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["guarantee_met"]
