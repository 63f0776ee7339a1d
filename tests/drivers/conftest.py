"""Fixtures for the drivers tests: the Columbus and St Louis area files shipped inside libpysal."""

from __future__ import annotations

from pathlib import Path

import pytest


def libpysal_example(name: str) -> Path:
    """Path of a data file shipped in the libpysal wheel, or skip when this libpysal lacks it."""
    examples = pytest.importorskip("libpysal.examples")
    try:
        return Path(examples.get_path(name))
    except (KeyError, FileNotFoundError, OSError):
        pytest.skip(f"libpysal does not ship {name}")


@pytest.fixture(scope="session")
def columbus_shp() -> Path:
    return libpysal_example("columbus.shp")


@pytest.fixture(scope="session")
def stl_shp() -> Path:
    return libpysal_example("stl_hom.shp")


def square_grid(nx: int, ny: int, *, x0: float = -87.75, y0: float = 41.80, size: float = 0.01) -> object:
    """A GeoDataFrame of ``nx * ny`` square cells in WGS84 (rook/queen contiguous), ids ``c0..``."""
    import geopandas as gpd
    from shapely.geometry import box

    cells = [box(x0 + i * size, y0 + j * size, x0 + (i + 1) * size, y0 + (j + 1) * size)
             for j in range(ny) for i in range(nx)]
    return gpd.GeoDataFrame({"cid": [f"c{k}" for k in range(len(cells))]}, geometry=cells, crs="EPSG:4326")
