"""Public releases carry only whitelisted, protected data (SECURITY.md PRV-02, PRV-03)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.governance.release import (
    POINT_COLUMNS,
    WITHHELD_CATEGORIES,
    area_period_counts,
    release_areas,
    release_grid,
    release_points,
)
from crimelens.synth import CityConfig, generate_city

PERSONAL = ("suspect_ref", "victim_ref", "address", "narrative", "suspect", "victim", "extra", "incident_id",
            "batch_id", "row_hash", "x", "y")


@pytest.fixture(scope="module")
def incidents() -> pd.DataFrame:
    frame = generate_city(CityConfig(n_incidents=2_500, days=60, seed=3, size_m=5_000)).incidents.copy()
    frame["suspect_ref"] = "p" + frame.index.astype(str)
    frame["victim_ref"] = "v" + frame.index.astype(str)
    frame.loc[frame.index[:5], ["x", "y", "lat", "lon"]] = np.nan  # unlocated ones are left out
    return frame


@pytest.mark.parametrize("method", ["donut", "snap"])
def test_point_release_has_only_public_columns_and_protected_points(incidents: pd.DataFrame, method: str) -> None:
    rel = release_points(incidents, method=method, k=10, seed=5, tz="America/Chicago")  # type: ignore[arg-type]
    data = rel.data
    assert set(data.columns) <= set(POINT_COLUMNS)
    assert not set(data.columns) & set(PERSONAL)
    values = set(data.astype(str).to_numpy().ravel())
    for col in ("incident_id", "suspect_ref", "victim_ref", "address", "batch_id", "row_hash"):
        assert not values & set(incidents[col].dropna().astype(str)), col
    assert data["release_id"].is_unique
    assert not set(data["release_id"]) & set(incidents["incident_id"])
    assert not data["category"].isin(WITHHELD_CATEGORIES).any()
    # no published point equals an input point
    pub = set(zip(data["lat"].round(6), data["lon"].round(6), strict=True))
    true = set(zip(incidents["lat"].round(6), incidents["lon"].round(6), strict=True))
    assert not pub & true
    rep = rel.report
    assert rep["guarantee_met"] and rep["dropped_unlocated"] == 5 and rep["seed_published"] is False
    assert "seed" not in rep and "seed" not in rep["parameters"]
    assert rep["records"] == len(data) == len(incidents) - 5 - sum(rep["withheld_categories"].values())
    if method == "donut":
        assert rep["verification"]["min_k_anonymity"] >= 10
    else:
        assert rep["verification"]["min_catchment"] >= 10 and rep["min_anchor_catchment"] >= 10
    # dates are week starts (Mondays)
    assert (pd.to_datetime(data["date"]).dt.day_of_week == 0).all()


def test_point_release_group_level_and_day_period(incidents: pd.DataFrame) -> None:
    rel = release_points(incidents, k=5, seed=1, level="category_group", period="day")
    assert list(rel.data.columns) == ["release_id", "category_group", "date", "lat", "lon"]


def test_area_release_suppresses_small_cells(incidents: pd.DataFrame) -> None:
    counts = area_period_counts(incidents, area="beat", period="week", tz="America/Chicago")
    rel = release_areas(counts, area="beat", period="week", k=10)
    data = rel.data
    assert list(data.columns) == ["beat", "period", "count", "suppressed"]
    shown = data["count"].dropna()
    assert not ((shown > 0) & (shown < 10)).any()
    assert data["suppressed"].sum() == rel.report["suppression"]["primary_suppressed"] + rel.report[
        "suppression"]["complementary_suppressed"] > 0
    assert rel.report["guarantee_met"]
    total = data[(data["beat"] == "all") & (data["period"] == "all")]["count"].iloc[0]
    assert total == len(incidents)


def test_area_release_bad_area(incidents: pd.DataFrame) -> None:
    with pytest.raises(InputError, match="unknown area column 'precinct'"):
        area_period_counts(incidents, area="precinct", period="month")
    with pytest.raises(InputError, match="unknown area column"):
        release_areas(pd.DataFrame({"x": [1], "month": ["2024-01-01"], "count": [3]}), area="x", period="month")


def test_writes_csv_geojson_parquet(incidents: pd.DataFrame, tmp_path: Path) -> None:
    rel = release_points(incidents, k=10, seed=2)
    gj = json.loads(rel.write(tmp_path / "p.geojson").read_text())
    assert len(gj["features"]) == len(rel.data)
    assert set(gj["features"][0]["properties"]) == {"release_id", "category", "category_group", "date"}
    assert pd.read_csv(rel.write(tmp_path / "p.csv")).shape == rel.data.shape
    assert pd.read_parquet(rel.write(tmp_path / "p.parquet")).shape == rel.data.shape
    with pytest.raises(InputError, match="unsupported"):
        rel.write(tmp_path / "p.xlsx")
    counts = area_period_counts(incidents, area="district", period="month")
    with pytest.raises(InputError, match="no geometry"):
        release_areas(counts, area="district", period="month").write(tmp_path / "a.geojson")


def test_grid_release(incidents: pd.DataFrame, tmp_path: Path) -> None:
    loc = incidents.dropna(subset=["x"])
    cells = pd.DataFrame({"cell_x": np.floor(loc["x"] / 250).astype(int),
                          "cell_y": np.floor(loc["y"] / 250).astype(int)})
    cells = cells.value_counts().rename("count").reset_index()
    rel = release_grid(cells, cell_size=250, crs=str(loc["crs"].iloc[0]), k=10)
    shown = rel.data["count"].dropna()
    assert ((shown == 0) | (shown >= 10)).all() and rel.report["guarantee_met"]
    gj = json.loads(rel.write(tmp_path / "g.geojson").read_text())
    assert gj["features"][0]["geometry"]["type"] == "Polygon"


def test_point_release_with_an_address_layer(incidents: pd.DataFrame, tmp_path: Path) -> None:
    from crimelens.geo import to_wgs84
    from crimelens.sources.points import read_reference

    loc = incidents.dropna(subset=["x"])
    rng = np.random.default_rng(0)
    ax = rng.uniform(loc["x"].min(), loc["x"].max(), 3_000)
    ay = rng.uniform(loc["y"].min(), loc["y"].max(), 3_000)
    lon, lat = to_wgs84(ax, ay, str(loc["crs"].iloc[0]))
    pd.DataFrame({"Longitude": lon, "Latitude": lat}).to_csv(tmp_path / "addresses.csv", index=False)
    ref = read_reference(tmp_path / "addresses.csv")
    assert ref.shape == (3_000, 2)
    for method in ("donut", "snap"):
        rel = release_points(incidents, method=method, k=10, seed=1, reference=ref, reference_wgs84=True)  # type: ignore[arg-type]
        assert rel.report["guarantee_met"] and rel.report["parameters"]["reference"] == "reference layer"
        assert rel.report["parameters"]["reference_locations"] == 3_000
    gj = {"type": "FeatureCollection", "features": [
        {"type": "Feature", "geometry": {"type": "Point", "coordinates": [float(lon[0]), float(lat[0])]}},
        {"type": "Feature", "geometry": None}]}
    (tmp_path / "a.geojson").write_text(json.dumps(gj))
    assert read_reference(tmp_path / "a.geojson").shape == (1, 2)
    pd.DataFrame({"a": [1]}).to_csv(tmp_path / "bad.csv", index=False)
    with pytest.raises(InputError, match="lon/lat"):
        read_reference(tmp_path / "bad.csv")
