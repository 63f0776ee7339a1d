"""Where and when an incident is, as the models see it: local wall-clock times and metric
coordinates of a canonical incident frame (shared by the feature, context and anomaly code)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from crimelens.geo.crs import local_utm, to_local


def local_times(occurred_at: pd.Series, timezone: str | None) -> pd.Series:
    """``occurred_at`` converted to local wall-clock time (UTC when ``timezone`` is None)."""
    ts = pd.to_datetime(occurred_at, utc=True)
    return ts.dt.tz_convert(timezone) if timezone else ts


def metric_xy(incidents: pd.DataFrame, crs: str | None = None) -> tuple[np.ndarray, np.ndarray, str]:
    """Metric coordinates of each incident: the canonical ``x``/``y`` or ``lon``/``lat`` projected.

    Returns ``(x, y, crs)``; rows without coordinates are NaN (all of them, with crs ``"none"``,
    for a source that publishes no coordinates).
    """
    if "x" in incidents and incidents["x"].notna().any():
        used = crs or _first(incidents.get("crs")) or "local"
        return incidents["x"].to_numpy(float), incidents["y"].to_numpy(float), used
    if "lon" not in incidents or incidents["lon"].notna().sum() == 0:
        nan = np.full(len(incidents), np.nan)
        return nan, nan.copy(), crs or "none"
    lon, lat = incidents["lon"].to_numpy(float), incidents["lat"].to_numpy(float)
    used = crs or local_utm(float(np.nanmedian(lon)), float(np.nanmedian(lat)))
    x, y = to_local(lon, lat, used)
    return x, y, used


def _first(col: pd.Series | None) -> str | None:
    """The first non-null value of ``col`` as a string (None when there is none)."""
    if col is None:
        return None
    got = col.dropna()
    return str(got.iloc[0]) if len(got) else None
