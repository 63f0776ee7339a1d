"""Area layers (neighbourhoods, tracts, beats with their attributes) and point-in-polygon assignment.

An :class:`AreaLayer` is a named set of polygons, one row per area, keyed by ``area_id``, with the
attribute columns of the file it came from. Population (exposure) columns are *declared* by the
user when the layer is loaded, never guessed from column names. Geometries are held in WGS84 when
the source CRS is known (incidents carry WGS84 ``lat``/``lon``); analyses that need distances use
:meth:`AreaLayer.metric` (a UTM zone estimated from the layer, as in ``geopandas``).

Assignment of incidents to areas is a vectorised spatial join (``geopandas.sjoin`` with an STRtree
index); a point on a shared boundary goes to the first area the index returns, and points outside
every area get no id.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import geopandas as gpd
import numpy as np
import pandas as pd

from crimelens.exceptions import InputError

#: The key column of every layer.
AREA_ID = "area_id"


@dataclass(slots=True)
class AreaLayer:
    """A named area layer.

    Parameters
    ----------
    name
        Layer name (the key in the store).
    frame
        One row per area: ``area_id`` (string), attribute columns, ``geometry``.
    population
        Declared population / exposure columns.
    crs
        CRS of ``frame`` as text (``EPSG:4326`` normally); ``None`` for planar data of unknown CRS.
    notes
        What happened on loading (reprojection, repairs, dropped rows), in plain words.
    """

    name: str
    frame: gpd.GeoDataFrame
    population: tuple[str, ...] = ()
    crs: str | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def attributes(self) -> list[str]:
        """Attribute column names (everything but ``area_id`` and ``geometry``)."""
        return [c for c in self.frame.columns if c not in (AREA_ID, "geometry")]

    def metric(self) -> gpd.GeoDataFrame:
        """The layer in a metric CRS: a UTM zone when geographic, unchanged when already projected
        or of unknown CRS."""
        gdf = self.frame
        if gdf.crs is not None and gdf.crs.is_geographic:
            utm = gdf.estimate_utm_crs()
            return gdf.to_crs(utm)
        return gdf

    def centroids(self) -> np.ndarray:
        """``(n, 2)`` centroid coordinates in the metric CRS."""
        cent = self.metric().geometry.centroid
        return np.column_stack([cent.x.to_numpy(), cent.y.to_numpy()])

    def summary(self) -> dict[str, Any]:
        """A JSON-ready description of the layer."""
        return {
            "name": self.name, "areas": len(self.frame), "crs": self.crs, "population": list(self.population),
            "attributes": self.attributes, "notes": list(self.notes),
        }


def assign_points(layer: AreaLayer, lon: Any, lat: Any) -> pd.Series:
    """The ``area_id`` of each point (WGS84 ``lon``/``lat``), ``None`` where it falls in no area.

    Vectorised point-in-polygon via ``geopandas.sjoin`` (predicate ``within``). The layer must have a
    known CRS, since incident coordinates are WGS84.
    """
    if layer.crs is None:
        raise InputError(f"layer {layer.name!r} has no CRS, so incident coordinates cannot be placed in it; "
                         "reload it with --crs")
    lon_a = np.asarray(lon, dtype=float)
    lat_a = np.asarray(lat, dtype=float)
    pts = gpd.GeoDataFrame({"_row": np.arange(len(lon_a))}, geometry=gpd.points_from_xy(lon_a, lat_a), crs="EPSG:4326")
    polys = layer.frame[[AREA_ID, "geometry"]]
    if polys.crs is not None and not polys.crs.equals(pts.crs):
        pts = pts.to_crs(polys.crs)
    joined = gpd.sjoin(pts, polys, how="left", predicate="within")
    joined = joined[~joined["_row"].duplicated(keep="first")]
    out = pd.Series([None] * len(lon_a), dtype=object)
    hit = joined[AREA_ID].notna().to_numpy()
    out.iloc[joined["_row"].to_numpy()[hit]] = joined[AREA_ID].to_numpy()[hit]
    return out


def count_by_area(layer: AreaLayer, lon: Any, lat: Any) -> pd.Series:
    """Incident counts per area (every area present, zero where none), indexed by ``area_id``."""
    ids = assign_points(layer, lon, lat)
    counts = ids.dropna().value_counts()
    return counts.reindex(layer.frame[AREA_ID].to_numpy(), fill_value=0).astype("int64").rename("count")
