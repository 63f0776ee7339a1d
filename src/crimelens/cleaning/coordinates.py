"""Coordinate validation and projection.

Published coordinates carry every kind of dirt: blanks, ``0,0``, sentinels such as ``Y=90``
(San Francisco), swapped latitude and longitude, points far outside the city, and projected
State Plane feet (Chicago). :func:`clean_coordinates` returns WGS84 lat/lon with invalid points
removed and, per row, a flag saying why a point was dropped or changed. Incidents without a
usable point are kept (they count for trends) with ``location_precision = none`` unless the
mapping requires a location.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crimelens.cleaning.columns import arrow_strings
from crimelens.geo.crs import to_wgs84

#: Points farther than this from the dataset's centre are flagged when no bbox is given.
MAX_SPREAD_M = 150_000.0


@dataclass(slots=True)
class CleanCoordinates:
    """Validated WGS84 coordinates (NaN where dropped) and a flag per row (None where clean)."""

    lat: np.ndarray
    lon: np.ndarray
    flag: pd.Series


def clean_coordinates(
    lat_raw: pd.Series | None,
    lon_raw: pd.Series | None,
    x_raw: pd.Series | None = None,
    y_raw: pd.Series | None = None,
    *,
    crs: str | None = None,
    bbox: tuple[float, float, float, float] | None = None,
    centre: tuple[float, float] | None = None,
    index: pd.Index | None = None,
) -> CleanCoordinates:
    """Validate coordinates; fill lat/lon from projected x/y (in ``crs``) where they are missing.

    Flags: ``coords_invalid`` (not a number), ``coords_zero`` (0,0), ``coords_sentinel``
    (|lat| = 90 or |lon| = 180), ``coords_swapped`` (lat/lon exchanged, repaired),
    ``coords_out_of_range``, ``coords_outside_extent`` (outside ``bbox``, or farther than 150 km
    from ``centre`` when no bbox is given).
    """
    idx = index if index is not None else (lat_raw if lat_raw is not None else x_raw).index  # type: ignore[union-attr]
    n = len(idx)
    flag = pd.Series(None, index=idx, dtype=object)
    lat, lon, given = _numeric_pair(lat_raw, lon_raw, n, flag)
    if x_raw is not None and y_raw is not None and crs:
        xs, ys, xgiven = _numeric_pair(x_raw, y_raw, n, flag)
        xs[(xs == 0) & (ys == 0)] = np.nan
        need = ~np.isfinite(lat) & np.isfinite(xs) & np.isfinite(ys)
        if need.any():
            plon, plat = to_wgs84(xs[need], ys[need], crs)
            lat[need], lon[need] = plat, plon
            flag[need & flag.notna().to_numpy()] = None
        given |= xgiven
    with np.errstate(invalid="ignore"):
        zero = (lat == 0) & (lon == 0)
        _drop(zero, "coords_zero", lat, lon, flag)
        sentinel = (np.abs(lat) == 90) | (np.abs(lon) == 180)
        _drop(sentinel, "coords_sentinel", lat, lon, flag)
        out_range = (np.abs(lat) > 90) | (np.abs(lon) > 180)
        swappable = out_range & (np.abs(lon) <= 90) & (np.abs(lat) <= 180)
        if bbox is not None:
            swappable |= ~_inside(lat, lon, bbox) & _inside(lon, lat, bbox)
        _swap(swappable, lat, lon, flag)
        out_range = (np.abs(lat) > 90) | (np.abs(lon) > 180)
        _drop(out_range, "coords_out_of_range", lat, lon, flag)
        finite = np.isfinite(lat) & np.isfinite(lon)
        if bbox is not None:
            outside = finite & ~_inside(lat, lon, _pad(bbox))
        else:
            c = centre if centre is not None else _robust_centre(lat, lon)
            outside = finite & (_distance_m(lat, lon, c) > MAX_SPREAD_M) if c else np.zeros(n, bool)
        _drop(outside, "coords_outside_extent", lat, lon, flag)
    return CleanCoordinates(lat, lon, flag)


def _numeric_pair(
    a: pd.Series | None, b: pd.Series | None, n: int, flag: pd.Series
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    if a is None or b is None:
        return np.full(n, np.nan), np.full(n, np.nan), np.zeros(n, bool)
    given = np.array((a.notna() | b.notna()).to_numpy(), dtype=bool)
    av, bv = to_float(a), to_float(b)
    bad = given & ~(np.isfinite(av) & np.isfinite(bv))
    av[bad], bv[bad] = np.nan, np.nan
    flag[bad] = "coords_invalid"
    return av, bv, given


def to_float(s: pd.Series) -> np.ndarray:
    """Strings to float64 (NaN where not a number): Arrow's cast, falling back to pandas on bad values."""
    arr = arrow_strings(s)
    try:
        out = pc.cast(pc.utf8_trim_whitespace(arr), pa.float64()).to_numpy(zero_copy_only=False)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        out = pd.to_numeric(s, errors="coerce").to_numpy(dtype=float, na_value=np.nan)
    return np.array(out, dtype=float)


def _drop(mask: np.ndarray, name: str, lat: np.ndarray, lon: np.ndarray, flag: pd.Series) -> None:
    if mask.any():
        lat[mask], lon[mask] = np.nan, np.nan
        flag[mask] = name


def _swap(mask: np.ndarray, lat: np.ndarray, lon: np.ndarray, flag: pd.Series) -> None:
    if mask.any():
        lat[mask], lon[mask] = lon[mask].copy(), lat[mask].copy()
        flag[mask] = "coords_swapped"


def _inside(lat: np.ndarray, lon: np.ndarray, bbox: tuple[float, float, float, float]) -> np.ndarray:
    x0, y0, x1, y1 = bbox
    with np.errstate(invalid="ignore"):
        return np.asarray((lon >= x0) & (lon <= x1) & (lat >= y0) & (lat <= y1))


def _pad(bbox: tuple[float, float, float, float]) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = bbox
    dx, dy = (x1 - x0) * 0.05, (y1 - y0) * 0.05
    return x0 - dx, y0 - dy, x1 + dx, y1 + dy


def _robust_centre(lat: np.ndarray, lon: np.ndarray) -> tuple[float, float] | None:
    ok = np.isfinite(lat) & np.isfinite(lon) & (np.abs(lat) <= 90) & (np.abs(lon) <= 180)
    if ok.sum() < 1:
        return None
    return float(np.median(lon[ok])), float(np.median(lat[ok]))


def _distance_m(lat: np.ndarray, lon: np.ndarray, centre: tuple[float, float]) -> np.ndarray:
    clon, clat = centre
    r = 6_371_000.0
    p1, p2 = np.radians(lat), np.radians(clat)
    dphi, dlmb = p1 - p2, np.radians(lon - clon)
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlmb / 2) ** 2
    return np.asarray(2 * r * np.arcsin(np.sqrt(np.clip(a, 0, 1))))
