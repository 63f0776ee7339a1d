"""Typed analysis results: tables for people, GeoJSON for the web, parameters always attached.

Every result carries the parameters that shaped it (cell size, bandwidth, weights, FDR...) and
exports itself with ``to_frame()`` (one row per unit or cluster) and ``to_geojson()`` (a WGS84
``FeatureCollection`` whose foreign member ``parameters`` repeats them). Hot spot layers carry
ArcGIS's ``Gi_Bin`` beside our ``class`` and the ArcGIS colours (ARCHITECTURE §7).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.analysis.palettes import CLASS_COLOURS
from crimelens.analysis.units import UnitCounts, unit_centres_wgs84
from crimelens.geo.crs import FloatArray, to_wgs84
from crimelens.geo.grid import SquareGrid


@dataclass(frozen=True)
class DataQuality:
    """What a reader needs to judge a product: the data-quality footer of maps and tables.

    Attributes
    ----------
    sources : tuple of str
        Source names.
    extracted_at : str, optional
        When the data were extracted (latest ingest), ISO text.
    share_geocoded : float, optional
        Share of incidents with usable coordinates (0-1).
    crs : str, optional
        The metric CRS the analysis ran in.
    incidents : int, optional
        Incidents analysed.
    period : str, optional
        The period covered, e.g. ``2014-01-01 to 2021-12-31``.
    notes : tuple of str
        Anything else worth saying (time precision dropped, filters).
    """

    sources: tuple[str, ...] = ()
    extracted_at: str | None = None
    share_geocoded: float | None = None
    crs: str | None = None
    incidents: int | None = None
    period: str | None = None
    notes: tuple[str, ...] = ()

    def footer(self, parameters: Mapping[str, Any] | None = None) -> str:
        """One or two lines of text: sources, extract date, geocoded share, CRS, parameters."""
        parts = []
        if self.sources:
            parts.append("Source: " + ", ".join(self.sources))
        if self.period:
            parts.append(f"period {self.period}")
        if self.incidents is not None:
            parts.append(f"{self.incidents:,} incidents")
        if self.extracted_at:
            parts.append(f"extracted {self.extracted_at}")
        if self.share_geocoded is not None:
            parts.append(f"{100 * self.share_geocoded:.1f}% geocoded")
        if self.crs:
            parts.append(f"CRS {self.crs}")
        lines = ["; ".join(parts)] if parts else []
        if parameters:
            lines.append("Parameters: " + "; ".join(f"{k}={_short(v)}" for k, v in parameters.items()))
        lines.extend(self.notes)
        return "\n".join(lines)


def _short(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _jsonable(v: Any) -> Any:
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        f = float(v)
        return None if np.isnan(f) else f
    if isinstance(v, float) and np.isnan(v):
        return None
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, Mapping):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_jsonable(x) for x in v]
    return v


def _id_for_json(units: UnitCounts) -> list[Any]:
    if units.kind == "h3":
        return [format(int(i), "x") for i in units.ids]  # H3's string form: int64 overflows JS numbers
    if units.kind == "grid":
        return [int(i) for i in units.ids]
    return [str(i) for i in units.ids]


@dataclass(frozen=True, eq=False)
class UnitResult:
    """Per-unit values of a local statistic over zero-filled :class:`UnitCounts`.

    Attributes
    ----------
    method : str
        The method that produced it (``gistar``, ``lisa``, ``emerging``...).
    units : UnitCounts
        The units and their counts.
    values : dict of str to ndarray
        Per-unit result columns, in unit order.
    parameters : dict
        Every parameter that shaped the result.
    palette : dict
        Colour of each class (written as ``color`` in GeoJSON).
    class_column : str
        The column holding the map class.
    """

    method: str
    units: UnitCounts
    values: dict[str, npt.NDArray[Any]]
    parameters: dict[str, Any] = field(default_factory=dict)

    palette: Mapping[str, str] = field(default_factory=lambda: dict(CLASS_COLOURS))
    class_column: str = "class"

    def to_frame(self) -> pd.DataFrame:
        """One row per unit: ``cell_id``, ``count``, result columns, centroid ``longitude``/``latitude``."""
        lon, lat = unit_centres_wgs84(self.units)
        df = pd.DataFrame({"cell_id": self.units.ids, "count": self.units.counts})
        for k, v in self.values.items():
            df[k] = v
        df["longitude"], df["latitude"] = lon, lat
        return df

    def to_geojson(self, *, include: npt.NDArray[np.bool_] | None = None) -> dict[str, Any]:
        """A WGS84 ``FeatureCollection`` of unit polygons with ``cell_id``, ``count`` and the result columns.

        ``include`` selects units (default all). The parameters ride along as a foreign member.
        """
        ids = _id_for_json(self.units)
        keep = np.ones(self.units.n, bool) if include is None else np.asarray(include, bool)
        picked = np.flatnonzero(keep)
        geoms = self.units.geometries_wgs84(picked)  # only the units kept: a few hot cells of a large grid
        cols = {k: v.tolist() for k, v in self.values.items()}
        counts = self.units.counts.tolist()
        feats = []
        for g, i in enumerate(picked):
            props: dict[str, Any] = {"cell_id": ids[i], "count": _num(counts[i])}
            for k, v in cols.items():
                props[k] = _jsonable(v[i])
            if self.class_column in cols:
                props["color"] = self.palette.get(str(cols[self.class_column][i]), "#F7F7F2")
            feats.append({"type": "Feature", "geometry": geoms[g], "properties": props})
        return {"type": "FeatureCollection", "features": feats, "parameters": _jsonable(self.parameters)}

    def class_counts(self) -> dict[str, int]:
        """Number of units per class."""
        if self.class_column not in self.values:
            return {}
        return dict(sorted(Counter(str(c) for c in self.values[self.class_column]).items()))

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary: method, units, incidents, cells per class, parameters."""
        return {
            "method": self.method,
            "units": self.units.label(),
            "n_units": self.units.n,
            "incidents": _num(self.units.total),
            "classes": self.class_counts(),
            "parameters": _jsonable(self.parameters),
        }


def _num(v: float) -> float | int:
    f = float(v)
    return int(f) if f.is_integer() else f


class HotspotResult(UnitResult):
    """Getis-Ord Gi* hot spots: ``z``, ``p``, ``Gi_Bin`` (−3…+3) and ``class`` per unit."""


class LocalMoranResult(UnitResult):
    """Local Moran's I: ``I``, ``z``, ``p``, ``quadrant`` (HH/LL/HL/LH) and ``class`` per unit."""


class EmergingResult(UnitResult):
    """Emerging hot spots: ArcGIS pattern ``class`` per unit with its trend and history."""


@dataclass(frozen=True, eq=False)
class DensitySurface:
    """A kernel density surface over a square grid, in incidents (not kernel units).

    Attributes
    ----------
    grid : SquareGrid
        The raster's grid.
    values : ndarray
        ``(ny, nx)`` expected incidents per cell; sums to the number of incidents.
    parameters : dict
        Kernel, bandwidth (metres) and rule, cell size.
    """

    grid: SquareGrid
    values: FloatArray
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = "kde"

    @property
    def per_km2(self) -> FloatArray:
        """Density in incidents per square kilometre."""
        return np.asarray(self.values / (self.grid.cell_area / 1e6), dtype=float)

    def to_frame(self, *, min_value: float = 0.0) -> pd.DataFrame:
        """``cell_id``, ``count`` (expected incidents in the cell), ``per_km2``, centre lon/lat."""
        flat = self.values.ravel()
        ids = np.flatnonzero(flat > min_value) if min_value > 0 else np.arange(flat.size)
        x, y = self.grid.centres(ids)
        lon, lat = to_wgs84(x, y, self.grid.crs)
        return pd.DataFrame(
            {
                "cell_id": ids,
                "count": flat[ids],
                "per_km2": self.per_km2.ravel()[ids],
                "longitude": lon,
                "latitude": lat,
            }
        )

    def to_geojson(self, *, min_share: float = 0.01) -> dict[str, Any]:
        """Cells whose value is at least ``min_share`` of the maximum, as WGS84 polygons."""
        flat = self.values.ravel()
        top = float(flat.max()) if flat.size else 0.0
        ids = np.flatnonzero(flat >= min_share * top) if top > 0 else np.zeros(0, np.int64)
        rings = self.grid.polygons_wgs84(ids)
        dens = self.per_km2.ravel()
        feats = [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [r]},
                "properties": {"cell_id": int(i), "count": float(flat[i]), "per_km2": float(dens[i])},
            }
            for i, r in zip(ids, rings, strict=True)
        ]
        params = dict(self.parameters, geojson_min_share=min_share)
        return {"type": "FeatureCollection", "features": feats, "parameters": _jsonable(params)}

    def summary(self) -> dict[str, Any]:
        """Total, peak and parameters."""
        return {
            "method": self.method,
            "cells": int(self.values.size),
            "incidents": float(self.values.sum()),
            "peak_per_km2": float(self.per_km2.max()) if self.values.size else 0.0,
            "parameters": _jsonable(self.parameters),
        }


@dataclass(frozen=True, eq=False)
class ClusterResult:
    """Point clusters (DBSCAN, HDBSCAN, K-Means): a label per point and a row per cluster.

    Attributes
    ----------
    labels : ndarray of int
        Cluster of each input point (or weighted cell); ``-1`` is noise.
    clusters : DataFrame
        ``cluster``, ``count``, ``x``, ``y`` (weighted mean centre, metres), ``radius_m``
        (weighted standard distance), ``hull`` (convex hull coordinates, metres).
    crs : str
        The metric CRS.
    parameters : dict
        Algorithm and its parameters.
    """

    labels: npt.NDArray[np.int64]
    clusters: pd.DataFrame
    crs: str
    parameters: dict[str, Any] = field(default_factory=dict)
    method: str = "dbscan"

    def to_frame(self) -> pd.DataFrame:
        """One row per cluster with the centre in longitude/latitude."""
        df = self.clusters.drop(columns=["hull"]).copy()
        lon, lat = to_wgs84(df["x"].to_numpy(float), df["y"].to_numpy(float), self.crs)
        df["longitude"], df["latitude"] = lon, lat
        return df

    def to_geojson(self) -> dict[str, Any]:
        """Cluster hulls as WGS84 polygons (a point for clusters of fewer than three locations)."""
        feats = []
        for row in self.clusters.to_dict("records"):
            hull = np.asarray(row["hull"], float).reshape(-1, 2)
            lon, lat = to_wgs84(hull[:, 0], hull[:, 1], self.crs)
            coords = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
            if len(coords) >= 3:
                geom: dict[str, Any] = {"type": "Polygon", "coordinates": [[*coords, coords[0]]]}
            else:
                c_lon, c_lat = to_wgs84(np.array([row["x"]]), np.array([row["y"]]), self.crs)
                geom = {"type": "Point", "coordinates": [float(c_lon[0]), float(c_lat[0])]}
            props = {
                "cell_id": int(row["cluster"]),
                "cluster": int(row["cluster"]),
                "count": _num(float(row["count"])),
                "radius_m": float(row["radius_m"]),
            }
            feats.append({"type": "Feature", "geometry": geom, "properties": props})
        return {"type": "FeatureCollection", "features": feats, "parameters": _jsonable(self.parameters)}

    def summary(self) -> dict[str, Any]:
        """Number of clusters, clustered share and parameters."""
        w = self.parameters.get("_weights_total")
        total = float(w) if w is not None else float(len(self.labels))
        clustered = float(self.clusters["count"].sum()) if len(self.clusters) else 0.0
        return {
            "method": self.method,
            "clusters": len(self.clusters),
            "clustered_share": round(clustered / total, 4) if total else 0.0,
            "largest": _num(float(self.clusters["count"].max())) if len(self.clusters) else 0,
            "parameters": _jsonable({k: v for k, v in self.parameters.items() if not k.startswith("_")}),
        }


def cell_lonlat(grid: SquareGrid, ids: npt.NDArray[np.int64]) -> tuple[FloatArray, FloatArray]:
    """Longitude and latitude of grid cell centres."""
    x, y = grid.centres(ids)
    return to_wgs84(x, y, grid.crs)
