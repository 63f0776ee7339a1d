"""Projections between WGS84 and a dataset's local metric CRS (UTM by default).

Analyses run in metres. A dataset gets the UTM zone of its centre (EPSG:326xx north, 327xx
south) unless the caller gives another metric CRS (e.g. British National Grid, EPSG:27700).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import numpy.typing as npt
from pyproj import CRS, Transformer

FloatArray = npt.NDArray[np.float64]


def local_utm(lon: float, lat: float) -> str:
    """The UTM zone CRS (``EPSG:326zz`` / ``EPSG:327zz``) containing ``(lon, lat)``."""
    if not (np.isfinite(lon) and np.isfinite(lat)):
        raise ValueError("local_utm needs a finite centre point")
    zone = int((lon + 180) // 6) % 60 + 1
    return f"EPSG:{32600 + zone if lat >= 0 else 32700 + zone}"


@lru_cache(maxsize=32)
def _transformer(src: str, dst: str) -> Transformer:
    return Transformer.from_crs(CRS.from_user_input(src), CRS.from_user_input(dst), always_xy=True)


def to_local(lon: FloatArray, lat: FloatArray, crs: str) -> tuple[FloatArray, FloatArray]:
    """Project WGS84 ``lon``/``lat`` arrays to ``crs``; NaN stays NaN."""
    x, y = _transformer("EPSG:4326", crs).transform(np.asarray(lon, float), np.asarray(lat, float))
    return np.asarray(x, float), np.asarray(y, float)


def to_wgs84(x: FloatArray, y: FloatArray, crs: str) -> tuple[FloatArray, FloatArray]:
    """Project ``x``/``y`` in ``crs`` to WGS84; returns ``(lon, lat)``."""
    lon, lat = _transformer(crs, "EPSG:4326").transform(np.asarray(x, float), np.asarray(y, float))
    return np.asarray(lon, float), np.asarray(lat, float)
