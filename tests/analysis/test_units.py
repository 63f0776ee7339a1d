"""Units of analysis: zero-filled grids, H3, areas and user polygons; store-key compatible counting."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis import area_counts, count_incidents, grid_counts, h3_counts, polygon_counts
from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid

from .conftest import CRS, Cluster


def test_grid_counts_from_store_keys_equal_counts_from_points(city: Callable[..., pd.DataFrame]) -> None:
    df = city(0, background=500, clusters=[Cluster(1000, 1000, 100, 100)])
    from_keys = grid_counts(count_incidents(df, ["cell:200"]), 200, CRS)
    from_points = grid_counts(df[["x", "y"]], 200, CRS)
    assert from_keys.grid == from_points.grid
    np.testing.assert_array_equal(from_keys.counts, from_points.counts)
    g = from_keys.grid
    assert from_keys.n == g.n_cells  # every cell exists, zeros included
    assert (from_keys.counts == 0).any()
    assert from_keys.total == len(df)
    assert g.x0 % 200 == 0 and g.y0 % 200 == 0  # aligned like SquareGrid.covering


def test_hull_study_area_and_fixed_grid() -> None:
    frame = pd.DataFrame({"cell_x": [0, 10, 0, 10, 5], "cell_y": [0, 0, 10, 10, 20], "count": 1})
    full = grid_counts(frame, 100, CRS)
    hull = grid_counts(frame, 100, CRS, study_area="hull")
    assert hull.n < full.n and hull.total == full.total == 5
    fixed = SquareGrid(-500.0, -500.0, 100.0, 30, 40, CRS)
    on_fixed = grid_counts(frame, 100, CRS, grid=fixed)
    assert on_fixed.n == fixed.n_cells and on_fixed.total == 5


def test_h3_counts_zero_fill_the_hexagons_inside_the_hull(city: Callable[..., pd.DataFrame]) -> None:
    df = city(
        1,
        background=0,
        clusters=[Cluster(500, 500, 100, 100), Cluster(4500, 4500, 100, 100), Cluster(500, 4500, 100, 100)],
    )
    counts = count_incidents(df, ["h3_8"])
    units = h3_counts(counts, 8, CRS)
    assert units.total == len(df)
    assert units.n > len(counts)  # empty hexagons were added
    assert len(set(units.ids.tolist())) == units.n
    assert units.spacing() == pytest.approx(925, rel=0.2)  # H3 res 8: ~460 m edge, ~920 m apart
    geoms = units.geometries_wgs84()
    assert all(g["type"] == "Polygon" and len(g["coordinates"][0]) == 7 for g in geoms)
    with pytest.raises(InputError):
        h3_counts(counts.rename(columns={"h3_8": "other"}), 8, CRS)


def test_area_counts_keep_empty_areas() -> None:
    frame = pd.DataFrame({"district": ["1", "2"], "count": [5, 7]})
    units = area_counts(frame, "district", areas=["1", "2", "3"])
    assert list(units.ids) == ["1", "2", "3"] and list(units.counts) == [5, 7, 0]
    with pytest.raises(InputError, match="geometry"):
        units.weights(band=100)


def test_polygon_counts_from_fine_cells_and_points(city: Callable[..., pd.DataFrame]) -> None:
    gpd = pytest.importorskip("geopandas")
    from shapely.geometry import box

    df = city(2, background=2000)
    x0, y0 = df["x"].min(), df["y"].min()
    polys = gpd.GeoDataFrame(
        {"name": ["west", "east", "outside"]},
        geometry=[
            box(x0 - 50, y0 - 50, x0 + 2500, y0 + 5050),
            box(x0 + 2500, y0 - 50, x0 + 5050, y0 + 5050),
            box(x0 + 9000, y0, x0 + 9500, y0 + 500),
        ],
        crs=CRS,
    ).to_crs("EPSG:4326")
    exact = polygon_counts(polys, df[["x", "y"]], CRS, id_field="name")
    west = int((df["x"] < x0 + 2500).sum())
    assert list(exact.ids) == ["west", "east", "outside"]
    assert exact.counts[0] == pytest.approx(west, abs=2) and exact.counts[2] == 0
    fine = polygon_counts(polys, count_incidents(df, ["cell:10"]), CRS, id_field="name", cell_size=10.0)
    assert np.abs(fine.counts - exact.counts).max() <= 0.02 * len(df)
    assert fine.total == exact.total
