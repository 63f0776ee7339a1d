"""Write any analysis result to the file format its suffix names (ARCHITECTURE §7).

``.gpkg`` GeoPackage for GIS users, ``.geojson`` for the web (always WGS84), ``.csv`` with
longitude/latitude columns, ``.parquet`` for data people, ``.png`` for people. Tables without
geometry (CompStat, trends, near-repeat) go to CSV, Parquet, JSON or PNG.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from crimelens.analysis.centrography import DirectionalDistribution
from crimelens.analysis.compstat import CompStatResult
from crimelens.analysis.nearrepeat import NearRepeatResult
from crimelens.analysis.results import ClusterResult, DataQuality, DensitySurface, UnitResult
from crimelens.analysis.temporal import MatrixResult, TrendResult
from crimelens.exceptions import InputError

AnyResult = (
    UnitResult
    | DensitySurface
    | ClusterResult
    | DirectionalDistribution
    | TrendResult
    | MatrixResult
    | NearRepeatResult
    | CompStatResult
)
SPATIAL = (UnitResult, DensitySurface, ClusterResult, DirectionalDistribution)
SUFFIXES = (".geojson", ".json", ".gpkg", ".csv", ".parquet", ".png")


def save(result: AnyResult, path: str | Path, *, title: str | None = None, quality: DataQuality | None = None) -> Path:
    """Write ``result`` to ``path``; the suffix picks the format. Returns the path."""
    out = Path(path)
    suffix = out.suffix.lower()
    if suffix not in SUFFIXES:
        raise InputError(f"unsupported output {out.name!r}: use {', '.join(SUFFIXES)}")
    if suffix == ".png":
        return _png(result, out, title, quality)
    if suffix in (".geojson", ".json", ".gpkg") and isinstance(result, SPATIAL):
        gj = result.to_geojson()
        if suffix == ".gpkg":
            return _gpkg(gj, out)
        out.write_text(json.dumps(gj, default=_default))
        return out
    if suffix in (".geojson", ".gpkg"):
        raise InputError(f"{type(result).__name__} has no geometry: write .csv, .parquet, .json or .png")
    if suffix == ".json":
        out.write_text(json.dumps(result.summary(), default=_default, indent=2))
        return out
    frame = result.to_frame()
    if suffix == ".csv":
        frame.to_csv(out, index=False)
    else:
        frame.to_parquet(out, index=False)
    return out


def _default(v: Any) -> Any:
    if hasattr(v, "item"):
        return v.item()
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    return str(v)


def _gpkg(geojson: dict[str, Any], out: Path) -> Path:
    import geopandas as gpd

    feats = [f for f in geojson["features"] if f.get("geometry") is not None]
    gdf = gpd.GeoDataFrame.from_features(feats, crs="EPSG:4326")
    gdf.to_file(out, driver="GPKG", layer=out.stem)
    return out


def _png(result: AnyResult, out: Path, title: str | None, quality: DataQuality | None) -> Path:
    from crimelens.analysis import charts, plotting

    if isinstance(result, UnitResult | DensitySurface | ClusterResult):
        return plotting.map_png(result, out, title=title, quality=quality)
    if isinstance(result, TrendResult):
        return charts.trend_png(result, out, title=title, quality=quality)
    if isinstance(result, MatrixResult):
        return charts.matrix_png(result, out, title=title, quality=quality)
    if isinstance(result, NearRepeatResult):
        return charts.near_repeat_png(result, out, title=title, quality=quality)
    if isinstance(result, CompStatResult):
        return charts.compstat_png(result, out, title=title, quality=quality)
    raise InputError(f"no PNG rendering for {type(result).__name__}")
