"""Area layers round-trip through the store (DuckDB always, PostgreSQL when a server is running)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from crimelens.drivers.areas import AreaLayer, count_by_area
from crimelens.sources.areas import read_areas
from crimelens.store.areas import list_layers, load_layer, save_layer


def _roundtrip(url: str, stl_shp: Path) -> None:
    from crimelens.store import connect

    layer = read_areas(stl_shp, id_col="FIPSNO", crs="EPSG:4326", population=("PO8893",), name="stl")
    store = connect(url)
    try:
        assert save_layer(store, layer) is False
        back = load_layer(store, "stl")
        assert [x["name"] for x in list_layers(store)] == ["stl"]
    finally:
        store.close()
    assert back.population == ("PO8893",) and back.crs == "EPSG:4326" and len(back) == 78
    assert list(back.frame["area_id"]) == list(layer.frame["area_id"])
    assert back.frame["HR8893"].to_numpy() == pytest.approx(layer.frame["HR8893"].to_numpy())
    assert back.frame["NAME"].tolist() == layer.frame["NAME"].tolist()
    assert back.frame.geometry.geom_equals_exact(layer.frame.geometry, tolerance=1e-12).all()


def test_duckdb_roundtrip(tmp_path: Path, stl_shp: Path) -> None:
    _roundtrip(str(tmp_path / "a.duckdb"), stl_shp)


@pytest.fixture
def pg_url() -> Iterator[str]:
    psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    from tests.service.conftest import PG_SERVER, pg_or_skip

    pg_or_skip()
    schema = f"t_areas_{uuid.uuid4().hex[:10]}"
    yield f"{PG_SERVER}?schema={schema}"
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


@pytest.mark.service
def test_postgres_roundtrip(pg_url: str, stl_shp: Path) -> None:
    _roundtrip(pg_url, stl_shp)


def test_point_in_polygon_matches_shapely(stl_shp: Path) -> None:
    """The vectorised join gives each point the county that shapely's own ``contains`` finds."""
    layer: AreaLayer = read_areas(stl_shp, id_col="FIPSNO", crs="EPSG:4326")
    rng = np.random.default_rng(0)
    minx, miny, maxx, maxy = layer.frame.total_bounds
    lon, lat = rng.uniform(minx, maxx, 400), rng.uniform(miny, maxy, 400)
    from shapely.geometry import Point

    expected: dict[str, int] = {}
    for x, y in zip(lon, lat, strict=True):
        pt = Point(x, y)
        for aid, geom in zip(layer.frame["area_id"], layer.frame.geometry, strict=True):
            if geom.contains(pt):
                expected[aid] = expected.get(aid, 0) + 1
                break
    counts = count_by_area(layer, lon, lat)
    assert int(counts.sum()) == sum(expected.values())
    assert {k: v for k, v in counts.items() if v} == expected


def test_csv_joined_to_boundaries(tmp_path: Path, stl_shp: Path) -> None:
    import geopandas as gpd

    shapes = gpd.read_file(stl_shp)[["FIPSNO", "geometry"]].set_crs("EPSG:4326")
    shapes.to_file(tmp_path / "b.gpkg", driver="GPKG")
    table = gpd.read_file(stl_shp).drop(columns="geometry").iloc[:70]  # 8 counties lack attributes
    table.to_csv(tmp_path / "attrs.csv", index=False)
    layer = read_areas(tmp_path / "attrs.csv", boundaries=tmp_path / "b.gpkg", key="FIPSNO",
                       population=("PO8893",))
    assert len(layer) == 70 and layer.crs == "EPSG:4326"
    assert layer.frame["PO8893"].sum() == table["PO8893"].sum()
