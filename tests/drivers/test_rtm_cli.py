"""``crimelens rtm`` end to end: a store loaded through the real ingest path, layer files on disk."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.geo.crs import to_wgs84

CRS = "EPSG:32617"
X0, Y0, SIDE = 626_000.0, 4_836_000.0, 5_000.0


def _points_file(path: Path, xy: np.ndarray) -> Path:
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1], CRS)
    gpd.GeoDataFrame(geometry=shapely.points(lon, lat), crs="EPSG:4326").to_file(path, driver="GeoJSON")
    return path


@pytest.fixture(scope="module")
def city(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A year of robberies clustered around 'bars' plus uniform assaults, in Toronto's format."""
    rng = np.random.default_rng(3)
    root = tmp_path_factory.mktemp("rtm_cli")
    bars = np.column_stack([X0 + 300 + rng.uniform(0, SIDE - 600, 30), Y0 + 300 + rng.uniform(0, SIDE - 600, 30)])
    decoy = np.column_stack([X0 + 300 + rng.uniform(0, SIDE - 600, 30), Y0 + 300 + rng.uniform(0, SIDE - 600, 30)])
    near = bars[rng.integers(0, 30, 700)] + rng.normal(0, 50, (700, 2))
    rob = np.vstack([near, np.column_stack([X0 + rng.uniform(0, SIDE, 500), Y0 + rng.uniform(0, SIDE, 500)])])
    asl = np.column_stack([X0 + rng.uniform(0, SIDE, 600), Y0 + rng.uniform(0, SIDE, 600)])
    xy = np.vstack([rob, asl])
    mci = ["Robbery"] * len(rob) + ["Assault"] * len(asl)
    days = pd.Timestamp("2020-01-01") + pd.to_timedelta(rng.integers(0, 365, len(xy)), unit="D")
    lon, lat = to_wgs84(xy[:, 0], xy[:, 1], CRS)
    raw = pd.DataFrame({"occurrencedate": days.strftime("%Y/%m/%d") + " 05:00:00+00",
                        "occurrencehour": rng.integers(0, 24, len(xy)), "premises_type": "Outside", "MCI": mci,
                        "Neighbourhood": "N1", "Lat": np.round(lat, 7), "Long": np.round(lon, 7)})
    raw.to_csv(root / "toronto.csv", index=False)
    db = root / "t.duckdb"
    res = CliRunner().invoke(app, ["ingest", str(root / "toronto.csv"), "--preset", "toronto_mci", "--db", str(db)])
    assert res.exit_code == 0, res.output
    poly = root / "parks.geojson"
    gpd.GeoDataFrame(geometry=[shapely.box(-79.4, 43.7, -79.39, 43.71)], crs="EPSG:4326").to_file(poly)
    gpd.GeoDataFrame(geometry=[], crs="EPSG:4326").to_file(root / "empty.geojson", driver="GeoJSON")
    return {"db": db, "bars": _points_file(root / "bars.geojson", bars),
            "decoy": _points_file(root / "decoy.geojson", decoy),
            "far": _points_file(root / "far.geojson", bars - 200_000.0), "parks": poly,
            "empty": root / "empty.geojson", "root": root}


def _run(city: dict[str, Path], *args: str) -> object:
    return CliRunner().invoke(app, ["rtm", "--db", str(city["db"]), *args])


def test_rtm_writes_the_factor_table_map_cells_and_summary(city: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "rtm"
    res = _run(city, "--layers", f"{city['bars']},{city['decoy']}", "--category", "robbery", "--cell", "100",
               "--test-from", "2020-10-01", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert [f["layer"] for f in payload["factors"]] == ["bars"]
    assert payload["factors"][0]["rrv_low"] > 1
    assert payload["test_period"].startswith("2020-10-01")
    assert payload["fit_incidents"] + payload["test_incidents"] == 1200
    ev = pd.DataFrame(payload["evaluation"])
    assert set(ev["model"]) == {"rtm", "retro_count"} and (ev.loc[ev["model"] == "rtm", "pai"] > 1.5).all()
    factors = pd.read_csv(out / "factors.csv")
    assert list(factors.columns[:4]) == ["factor", "layer", "type", "band_m"]
    assert {"rrv", "rrv_low", "rrv_high", "p"} <= set(factors.columns)
    assert "| factor |" in (out / "factors.md").read_text()
    cells = gpd.read_file(out / "cells.gpkg")
    assert cells.crs.to_epsg() == 32617 and {"rrs", "incidents_fit", "incidents_test", "top5"} <= set(cells.columns)
    assert cells["incidents_fit"].sum() == payload["fit_incidents"]
    assert np.isclose(cells["rrs"].max(), payload["factors"][0]["rrv"])
    assert (out / "risk_map.png").read_bytes()[:4] == b"\x89PNG"
    assert "not causes" in (out / "summary.md").read_text()


def test_a_study_area_polygon_limits_the_cells_and_incidents(city: dict[str, Path], tmp_path: Path) -> None:
    west = np.array([[X0 - 100, Y0 - 100], [X0 + SIDE / 2, Y0 - 100], [X0 + SIDE / 2, Y0 + SIDE + 100],
                     [X0 - 100, Y0 + SIDE + 100]])
    lon, lat = to_wgs84(west[:, 0], west[:, 1], CRS)
    area = tmp_path / "west.geojson"
    gpd.GeoDataFrame({"name": ["west"]}, geometry=[shapely.Polygon(zip(lon, lat, strict=True))],
                     crs="EPSG:4326").to_file(area)
    out = tmp_path / "rtm"
    res = _run(city, "--layers", str(city["bars"]), "--category", "robbery", "--cell", "100", "--study-area",
               str(area), "--test-from", "2020-10-01", "--out", str(out), "--json")
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    cells = gpd.read_file(out / "cells.gpkg")
    centres = cells.geometry.centroid
    assert centres.x.max() < X0 + SIDE / 2 and abs(len(cells) - 26 * 52) < 30  # 2.6 km x 5.2 km of 100 m cells
    assert 0 < payload["fit_incidents"] + payload["test_incidents"] < 1000  # about half of the 1,200


@pytest.mark.parametrize(("layer", "extra", "message"), [
    ("empty", (), "no features"),
    ("far", (), "outside the study area"),
    ("parks", (), "Polygon"),
    ("missing", (), "no such layer file"),
    ("bars", ("--from", "2030-01-01"), "no located incidents"),
    ("bars", ("--cell", "-5"), "--cell"),
    ("bars", ("--bands", "a,b"), "--bands"),
    ("bars", ("--family", "gamma"), "unknown family"),
    ("bars", ("--study-area", "nowhere.gpkg"), "no such file"),
])
def test_bad_input_is_one_line_and_exit_2(city: dict[str, Path], tmp_path: Path, layer: str,
                                          extra: tuple[str, ...], message: str) -> None:
    path = city.get(layer, city["root"] / f"{layer}.geojson")
    res = _run(city, "--layers", str(path), "--category", "robbery", "--out", str(tmp_path / "o"), *extra)
    assert res.exit_code == 2, res.output
    err = res.stderr.strip()
    assert message in err and "\n" not in err and "Traceback" not in res.output
