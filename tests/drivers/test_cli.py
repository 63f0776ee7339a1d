"""``crimelens areas load`` and ``crimelens drivers`` on real files and a real DuckDB store.

Incidents are planted in a grid of areas with a known per-capita effect, ingested through the
normal Chicago path, counted per area by point-in-polygon, and the count model recovers the effect.
Bad input gives one line and exit 2 (or a reported automatic fix), never a traceback.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from tests.conftest import TEST_KEY, chicago_row, write_csv
from tests.drivers.conftest import square_grid

runner = CliRunner()
SLOPE = 0.35


def _grid_file(tmp_path: Path, n: int = 6, seed: int = 11) -> tuple[Path, object]:
    rng = np.random.default_rng(seed)
    gdf = square_grid(n, n)
    gdf["pop"] = rng.integers(1000, 6000, len(gdf))  # type: ignore[index]
    gdf["x1"] = rng.normal(0, 1.5, len(gdf))  # type: ignore[index]
    gdf["x2"] = rng.normal(0, 1.0, len(gdf))  # type: ignore[index]
    gdf["label"] = [f"area {i}" for i in range(len(gdf))]  # type: ignore[index]
    path = tmp_path / "grid.geojson"
    gdf.to_file(path, driver="GeoJSON")  # type: ignore[attr-defined]
    return path, gdf


def _plant_incidents(tmp_path: Path, gdf: object, seed: int = 12) -> tuple[Path, int]:
    """Theft counts ~ Poisson(pop * exp(-5 + SLOPE * x1)) placed uniformly in each cell, plus batteries."""
    rng = np.random.default_rng(seed)
    rows, k = [], 0
    for geom, pop, x1 in zip(gdf.geometry, gdf["pop"], gdf["x1"], strict=True):  # type: ignore[attr-defined, index]
        minx, miny, maxx, maxy = geom.bounds
        n_theft = rng.poisson(pop * np.exp(-5.0 + SLOPE * x1))
        for j in range(n_theft + 2):
            lon = rng.uniform(minx + 1e-4, maxx - 1e-4)
            lat = rng.uniform(miny + 1e-4, maxy - 1e-4)
            over = {"Latitude": f"{lat:.6f}", "Longitude": f"{lon:.6f}", "Location": "", "X Coordinate": "",
                    "Y Coordinate": ""}
            if j < n_theft:
                over.update({"IUCR": "0820", "Primary Type": "THEFT", "Description": "$500 AND UNDER",
                             "FBI Code": "06", "Domestic": "false"})
            rows.append(chicago_row(k, **over))
            k += 1
    thefts = sum(1 for r in rows if r["Primary Type"] == "THEFT")
    return write_csv(tmp_path / "incidents.csv", rows), thefts


def _ok(args: list[str]) -> dict[str, object]:
    res = runner.invoke(app, [*args, "--json"])
    assert res.exit_code == 0, res.output
    return json.loads(res.stdout)  # type: ignore[no-any-return]


def _bad(args: list[str], expect: str) -> str:
    res = runner.invoke(app, args)
    assert res.exit_code == 2, res.output
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit)
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert expect in lines[0], lines[0]
    return lines[0]


def test_counts_from_store_recover_planted_rate(tmp_path: Path) -> None:
    from crimelens.ingest import ingest_file
    from crimelens.store import connect

    grid, gdf = _grid_file(tmp_path)
    csv, thefts = _plant_incidents(tmp_path, gdf)
    db = str(tmp_path / "s.duckdb")
    store = connect(db)
    ingest_file(store, csv, key=TEST_KEY, source="chicago")
    store.close()
    loaded = _ok(["areas", "load", str(grid), "--id", "cid", "--name", "grid", "--population", "pop", "--db", db])
    assert loaded["areas"] == 36 and loaded["population"] == ["pop"]
    out = tmp_path / "out"
    got = _ok(["drivers", "--areas", "grid", "--y", "count:theft", "--x", "x1,x2", "--offset", "pop",
               "--model", "glm", "--family", "poisson", "--db", db, "--out", str(out)])
    coefs = {c["name"]: c for c in got["coefficients"]}  # type: ignore[attr-defined, index]
    assert coefs["x1"]["ci_low"] <= SLOPE <= coefs["x1"]["ci_high"]
    assert coefs["x2"]["ci_low"] <= 0.0 <= coefs["x2"]["ci_high"]  # no x2 effect was planted
    assert {"log_likelihood", "aic", "pseudo_r2"} <= set(got["fit"])  # type: ignore[arg-type]
    rates = (out / "rates.csv").read_text().splitlines()
    assert len(rates) == 37
    total = sum(int(line.split(",")[1]) for line in rates[1:])
    assert total == thefts  # every planted theft landed in its area, batteries were filtered out
    for name in ("coefficients.csv", "coefficients.md", "drivers.gpkg", "summary.md", "map_rate.png",
                 "map_rate_spatial_eb.png", "model.json"):
        assert (out / name).stat().st_size > 0, name
    summary = (out / "summary.md").read_text()
    assert "not causes" in summary and "Ecological fallacy" in summary and "Modifiable areal unit" in summary
    rated = _ok(["areas", "rates", "--areas", "grid", "--population", "pop", "--y", "count:theft", "--db", db,
                 "--out", str(tmp_path / "rates")])
    rows = rated["areas"]  # type: ignore[index]
    assert sum(r["count"] for r in rows) == thefts  # type: ignore[attr-defined]
    raw = np.array([r["rate"] for r in rows])  # type: ignore[attr-defined]
    eb = np.array([r["rate_spatial_eb"] for r in rows])  # type: ignore[attr-defined]
    assert eb.std() < raw.std()  # smoothing shrinks the spread of small-area rates
    for name in ("rates.gpkg", "map_rate_global_eb.png", "map_rate_spatial_eb.png"):
        assert (tmp_path / "rates" / name).stat().st_size > 0


def test_lag_json_has_spatial_parameter_and_diagnostics(tmp_path: Path) -> None:
    grid, _ = _grid_file(tmp_path)
    got = _ok(["drivers", "--areas", str(grid), "--id", "cid", "--y", "x1", "--x", "x2,pop", "--model", "lag",
               "--weights", "knn:4"])
    assert "rho" in got["spatial"]  # type: ignore[operator]
    assert "moran_residuals" in got["diagnostics"]  # type: ignore[operator]
    assert got["params"]["weights"]["spec"] == "knn:4"  # type: ignore[index]


def test_areas_list_and_replace(tmp_path: Path) -> None:
    grid, _ = _grid_file(tmp_path)
    db = str(tmp_path / "s.duckdb")
    first = _ok(["areas", "load", str(grid), "--name", "g", "--db", db])
    again = _ok(["areas", "load", str(grid), "--name", "g", "--db", db])
    assert first["replaced"] is False and again["replaced"] is True
    assert [x["name"] for x in _ok(["areas", "list", "--db", db])] == ["g"]  # type: ignore[attr-defined]


def test_invalid_and_empty_geometries_are_repaired_or_dropped(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import Polygon

    gdf = square_grid(4, 4)
    bowtie = Polygon([(-87.75, 41.80), (-87.74, 41.81), (-87.74, 41.80), (-87.75, 41.81)])
    gdf.loc[0, "geometry"] = bowtie  # type: ignore[attr-defined]
    gdf.loc[1, "geometry"] = Polygon()  # type: ignore[attr-defined]
    gdf["v"] = np.arange(16.0)  # type: ignore[index]
    path = tmp_path / "bad.gpkg"
    gpd.GeoDataFrame(gdf).to_file(path, driver="GPKG")
    got = _ok(["areas", "load", str(path), "--id", "cid", "--db", str(tmp_path / "s.duckdb")])
    notes = " ".join(got["notes"])  # type: ignore[arg-type]
    assert got["areas"] == 15
    assert "repaired 1 invalid geometry with make_valid: c0" in notes and "empty geometry: c1" in notes


def test_islands_are_linked_and_reported(tmp_path: Path) -> None:
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    gdf = square_grid(5, 5)
    far = gpd.GeoDataFrame({"cid": ["island"]}, geometry=[box(-87.5, 41.9, -87.49, 41.91)], crs="EPSG:4326")
    both = gpd.GeoDataFrame(pd.concat([gdf, far], ignore_index=True), crs="EPSG:4326")
    rng = np.random.default_rng(3)
    both["y"], both["x"] = rng.normal(size=26), rng.normal(size=26)
    path = tmp_path / "isl.geojson"
    both.to_file(path, driver="GeoJSON")
    got = _ok(["drivers", "--areas", str(path), "--id", "cid", "--y", "y", "--x", "x", "--model", "ols"])
    assert any("island(s)" in n and "island" in n for n in got["notes"])  # type: ignore[attr-defined]
    assert got["params"]["weights"]["islands_attached"] == ["island"]  # type: ignore[index]


@pytest.mark.parametrize(("args", "expect"), [
    (["--y", "x1", "--x", "x2,x2b"], "perfectly collinear"),
    (["--y", "x1", "--x", "x2,const"], "has no variance"),
    (["--y", "x1", "--x", "label"], "is not numeric"),
    (["--y", "x1", "--x", "nope"], "is not a column"),
    (["--y", "x1", "--x", "x2", "--weights", "hex"], "expected queen, rook, knn:K or distance:M"),
    (["--y", "x1", "--x", "x2", "--model", "tobit"], "expected one of"),
    (["--y", "x1", "--x", "x2", "--model", "glm"], "not a count"),
])
def test_bad_model_input_is_one_line(tmp_path: Path, args: list[str], expect: str) -> None:
    _, gdf = _grid_file(tmp_path)
    gdf["x2b"] = 2 * gdf["x2"] + 1  # type: ignore[index]
    gdf["const"] = 3.0  # type: ignore[index]
    path = tmp_path / "g2.geojson"
    gdf.to_file(path, driver="GeoJSON")  # type: ignore[attr-defined]
    _bad(["drivers", "--areas", str(path), "--id", "cid", *args], expect)


def test_bad_layer_input_is_one_line(tmp_path: Path) -> None:
    import geopandas as gpd
    from shapely.geometry import LineString

    lines = gpd.GeoDataFrame({"a": [1, 2]}, geometry=[LineString([(0, 0), (1, 1)]), LineString([(1, 0), (0, 1)])],
                             crs="EPSG:4326")
    lpath = tmp_path / "lines.geojson"
    lines.to_file(lpath, driver="GeoJSON")
    db = str(tmp_path / "s.duckdb")
    _bad(["areas", "load", str(lpath), "--db", db], "needs polygons")
    _bad(["areas", "load", str(tmp_path / "missing.gpkg"), "--db", db], "no such file")
    grid, _ = _grid_file(tmp_path)
    _bad(["areas", "load", str(grid), "--id", "label2", "--db", db], "is not a column")
    _bad(["areas", "load", str(grid), "--population", "label", "--db", db], "is not numeric")
    _ok(["areas", "load", str(grid), "--name", "g", "--db", db])
    _bad(["drivers", "--areas", "nosuch", "--y", "x1", "--x", "x2", "--db", db], "no area layer 'nosuch'")


def test_response_with_no_incidents_is_one_line(tmp_path: Path) -> None:
    from crimelens.ingest import ingest_file
    from crimelens.store import connect

    grid, _ = _grid_file(tmp_path)
    far = [chicago_row(i, Latitude="41.99", Longitude="-87.60", Location="", **{"X Coordinate": "",
                                                                              "Y Coordinate": ""})
           for i in range(5)]
    db = str(tmp_path / "s.duckdb")
    store = connect(db)
    ingest_file(store, write_csv(tmp_path / "far.csv", far), key=TEST_KEY, source="chicago")
    store.close()
    _ok(["areas", "load", str(grid), "--name", "g", "--id", "cid", "--db", db])
    _bad(["drivers", "--areas", "g", "--y", "count", "--x", "x1", "--db", db], "none of the 5 incidents")
    _bad(["drivers", "--areas", "g", "--y", "count:robbery", "--x", "x1", "--db", db], "no geocoded incidents")
