"""Result objects: GeoJSON in WGS84 with the agreed properties and colours, files of every format."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis import (
    DataQuality,
    GetisOrd,
    KernelDensity,
    KnoxTest,
    LocalMoran,
    PointClusters,
    compstat,
    count_incidents,
    grid_counts,
    hour_weekday,
    save,
    time_series,
)
from crimelens.analysis.palettes import CLASS_COLOURS
from crimelens.exceptions import InputError

from .conftest import CRS, Cluster


@pytest.fixture
def hot(city: Callable[..., pd.DataFrame]) -> object:
    df = city(0, background=1500, clusters=[Cluster(2000, 2000, 150, 300)])
    return GetisOrd(distance_band=300).fit(grid_counts(count_incidents(df, ["cell:200"]), 200, CRS)).result_


def test_hotspot_geojson_has_wgs84_polygons_and_the_agreed_properties(hot: object) -> None:
    gj = hot.to_geojson()  # type: ignore[attr-defined]
    assert gj["type"] == "FeatureCollection" and len(gj["features"]) == hot.units.n  # type: ignore[attr-defined]
    f = gj["features"][0]
    assert f["geometry"]["type"] == "Polygon"
    ring = np.array(f["geometry"]["coordinates"][0])
    assert ring.shape == (5, 2) and (ring[0] == ring[-1]).all()
    assert (ring[:, 0] > -80).all() and (ring[:, 0] < -78).all() and (ring[:, 1] > 43).all()
    props = f["properties"]
    assert {"cell_id", "count", "z", "p", "class", "Gi_Bin", "color"} <= set(props)
    for feat in gj["features"]:
        assert feat["properties"]["color"] == CLASS_COLOURS[feat["properties"]["class"]]
    assert gj["parameters"]["distance_band_m"] == 300 and gj["parameters"]["fdr"] == "Benjamini-Hochberg"
    json.dumps(gj)  # plain JSON types only
    summary = hot.summary()  # type: ignore[attr-defined]
    assert sum(summary["classes"].values()) == hot.units.n  # type: ignore[attr-defined]
    assert summary["classes"].get("hot_99", 0) > 0


@pytest.mark.parametrize("suffix", [".geojson", ".csv", ".parquet", ".gpkg", ".png"])
def test_save_every_format(hot: object, tmp_path: Path, suffix: str) -> None:
    out = save(hot, tmp_path / f"hot{suffix}", quality=DataQuality(sources=("test",), crs=CRS))  # type: ignore[arg-type]
    assert out.exists() and out.stat().st_size > 0
    if suffix == ".csv":
        back = pd.read_csv(out)
        assert {"cell_id", "count", "z", "p", "class", "Gi_Bin", "longitude", "latitude"} <= set(back.columns)
    if suffix == ".gpkg":
        gpd = pytest.importorskip("geopandas")
        layer = gpd.read_file(out)
        assert len(layer) == hot.units.n and layer.crs.to_epsg() == 4326  # type: ignore[attr-defined]
    if suffix == ".png":
        assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_every_result_renders(city: Callable[..., pd.DataFrame], tmp_path: Path) -> None:
    df = city(1, background=1200, clusters=[Cluster(1000, 1000, 80, 200)], days=400)
    units = grid_counts(count_incidents(df, ["cell:100"]), 100, CRS)
    results = {
        "lisa": LocalMoran().fit(units).result_,
        "kde": KernelDensity().fit(units).result_,
        "dbscan": PointClusters(eps=150).fit(units).result_,
        "trend": time_series(count_incidents(df, ["day", "time_precision"]), "week"),
        "hw": hour_weekday(count_incidents(df, ["hour", "weekday", "time_precision"])),
        "knox": KnoxTest(n_permutations=9).fit(df).result_,
        "compstat": compstat(count_incidents(df, ["day", "category", "time_precision"])),
    }
    for name, res in results.items():
        assert save(res, tmp_path / f"{name}.png").stat().st_size > 10_000  # type: ignore[arg-type]
        assert save(res, tmp_path / f"{name}.csv").stat().st_size > 0  # type: ignore[arg-type]
        json.loads(save(res, tmp_path / f"{name}.json").read_text())  # type: ignore[arg-type]
    kde_gj = results["kde"].to_geojson()  # type: ignore[union-attr]
    assert all(f["properties"]["per_km2"] > 0 for f in kde_gj["features"])
    with pytest.raises(InputError):
        save(results["trend"], tmp_path / "trend.geojson")  # type: ignore[arg-type]
    with pytest.raises(InputError):
        save(results["lisa"], tmp_path / "lisa.shp")  # type: ignore[arg-type]


def test_footer_names_sources_crs_and_parameters() -> None:
    q = DataQuality(
        sources=("toronto",),
        extracted_at="2024-01-02",
        share_geocoded=0.987,
        crs=CRS,
        incidents=1234,
        notes=("Categories: all crime",),
    )
    text = q.footer({"cell_size_m": 250, "fdr": "Benjamini-Hochberg"})
    for part in (
        "toronto",
        "2024-01-02",
        "98.7% geocoded",
        CRS,
        "1,234 incidents",
        "cell_size_m=250",
        "fdr=Benjamini-Hochberg",
        "Categories: all crime",
    ):
        assert part in text
