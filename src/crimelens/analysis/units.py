"""Units of analysis: zero-filled counts over square cells, H3 hexagons, source areas or polygons.

A hot spot statistic is only as honest as its units. Cells and areas with no incidents are real
observations (zeros), so every constructor here *zero-fills*: it starts from the full set of units
covering the study area and adds the counts the store returned from a ``GROUP BY``. Counting is
never done here on individual incidents except for small in-memory inputs.

* :func:`grid_counts` -- square cells of any size in the dataset's metric CRS, from a
  ``store.counts(by=["cell:<m>"])`` frame (``cell_x``, ``cell_y``, ``count``) or from points.
* :func:`h3_counts` -- H3 hexagons (Uber's hierarchical grid) at a stored resolution, from
  ``store.counts(by=["h3_9"])``; zero-filled over the hexagons covering the observed extent.
* :func:`area_counts` -- the source's own areas (beat, district, neighbourhood, LSOA).
* :func:`polygon_counts` -- user polygons (GeoJSON) joined spatially with GeoPandas to fine
  cell counts (exact to the fine cell size) or to points (exact).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.geo.crs import FloatArray, to_local, to_wgs84
from crimelens.geo.grid import SquareGrid
from crimelens.geo.weights import GridBandWeights, SparseWeights, Weights

UnitKind = Literal["grid", "h3", "area", "polygon"]
StudyArea = Literal["extent", "hull"]


@dataclass(frozen=True, eq=False)
class UnitCounts:
    """Zero-filled incident counts over a set of analysis units.

    Attributes
    ----------
    kind : {"grid", "h3", "area", "polygon"}
        The kind of unit.
    ids : ndarray
        Unit identifiers: grid cell ids (row-major in :attr:`grid`), H3 indexes (int64), area
        names or polygon ids.
    counts : ndarray of float
        Incidents per unit (zeros included).
    x, y : ndarray of float
        Unit centroids in metres in :attr:`crs` (NaN for areas without geometry).
    crs : str or None
        The metric CRS of ``x``/``y``.
    grid : SquareGrid or None
        The grid, for ``kind == "grid"``.
    shapes : tuple of dict or None, optional
        GeoJSON geometries (WGS84) of the units, for H3 cells and polygons.
    """

    kind: UnitKind
    ids: npt.NDArray[Any]
    counts: FloatArray
    x: FloatArray
    y: FloatArray
    crs: str | None
    grid: SquareGrid | None = None
    shapes: tuple[dict[str, Any] | None, ...] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("counts", "x", "y"):
            if len(getattr(self, name)) != n:
                raise InputError(f"UnitCounts.{name} has {len(getattr(self, name))} values for {n} units")
        if self.kind == "grid" and self.grid is None:
            raise InputError("grid units need their SquareGrid")

    @property
    def n(self) -> int:
        """Number of units."""
        return len(self.ids)

    @property
    def total(self) -> float:
        """Sum of the counts."""
        return float(np.sum(self.counts))

    def with_counts(self, counts: FloatArray) -> UnitCounts:
        """The same units with other values (e.g. one time step of a space-time cube)."""
        return replace(self, counts=np.asarray(counts, dtype=float))

    def label(self) -> str:
        """A short human description of the units (``100 m cells``, ``H3 resolution 9``...)."""
        if self.kind == "grid" and self.grid is not None:
            return f"{self.grid.cell_size:g} m square cells"
        if self.kind == "h3":
            return f"H3 resolution {_h3_res(self.ids)} hexagons"
        return "areas" if self.kind == "area" else "polygons"

    def geometries_wgs84(self, which: npt.NDArray[np.int64] | None = None) -> list[dict[str, Any] | None]:
        """GeoJSON geometry of each unit (or of the units at positions ``which``) in WGS84
        (``None`` for areas without geometry)."""
        pick = np.arange(self.n) if which is None else np.asarray(which, np.int64)
        if self.kind == "grid" and self.grid is not None:
            rings = self.grid.polygons_wgs84(np.asarray(self.ids, np.int64)[pick])
            return [{"type": "Polygon", "coordinates": [ring]} for ring in rings]
        if self.shapes is not None:
            return [self.shapes[i] for i in pick]
        return [None] * len(pick)

    def weights(
        self,
        *,
        method: Literal["distance", "knn"] = "distance",
        band: float | None = None,
        k: int = 8,
        include_self: bool = True,
    ) -> Weights:
        """Spatial weights between these units.

        Parameters
        ----------
        method : {"distance", "knn"}
            Binary distance band (``band`` metres between centroids) or ``k`` nearest neighbours.
        band : float, optional
            Distance band in metres; required for ``"distance"``.
        k : int
            Neighbours per unit for ``"knn"``.
        include_self : bool
            Whether each unit is its own neighbour (Gi*).
        """
        if np.isnan(self.x).any():
            raise InputError(f"{self.label()} have no geometry: spatial statistics need cells or polygons")
        if method == "knn":
            return SparseWeights.knn(self.x, self.y, k, include_self=include_self)
        if band is None:
            raise InputError("a distance band (metres) is needed for distance-band weights")
        if self.kind == "grid" and self.grid is not None:
            return GridBandWeights(
                (self.grid.ny, self.grid.nx),
                np.asarray(self.ids, np.int64),
                self.grid.cell_size,
                band,
                include_self=include_self,
            )
        return SparseWeights.distance_band(self.x, self.y, band, include_self=include_self)

    def spacing(self) -> float:
        """Typical distance between neighbouring units in metres (cell size for grids)."""
        if self.kind == "grid" and self.grid is not None:
            return self.grid.cell_size
        from scipy.spatial import cKDTree

        pts = np.column_stack([self.x, self.y])
        if len(pts) < 2 or np.isnan(pts).any():
            raise InputError("unit spacing needs at least two units with centroids")
        d, _ = cKDTree(pts).query(pts, k=2)
        return float(np.median(d[:, 1]))

    def to_frame(self) -> pd.DataFrame:
        """``unit_id``, ``count``, ``x``, ``y`` per unit."""
        return pd.DataFrame({"unit_id": self.ids, "count": self.counts, "x": self.x, "y": self.y})


def _h3_res(ids: npt.NDArray[Any]) -> int:
    import h3.api.basic_int as h3i

    return int(h3i.get_resolution(int(ids[0]))) if len(ids) else -1


# --------------------------------------------------------------------------- square grids


def grid_from_cells(cell_x: npt.ArrayLike, cell_y: npt.ArrayLike, cell_size: float, crs: str) -> SquareGrid:
    """The smallest :class:`SquareGrid` containing the store's ``cell_x``/``cell_y`` indices.

    Store cell indices are ``floor(x / cell_size)``, so the grid origin is a multiple of the
    cell size, exactly as :meth:`SquareGrid.covering` builds it from points.
    """
    cx, cy = np.asarray(cell_x, np.int64), np.asarray(cell_y, np.int64)
    if cx.size == 0:
        raise InputError("no located incidents to build a grid from")
    return SquareGrid(
        float(cx.min() * cell_size),
        float(cy.min() * cell_size),
        float(cell_size),
        int(cx.max() - cx.min() + 1),
        int(cy.max() - cy.min() + 1),
        crs,
    )


def grid_counts(
    frame: pd.DataFrame,
    cell_size: float,
    crs: str,
    *,
    grid: SquareGrid | None = None,
    study_area: StudyArea | npt.NDArray[np.bool_] = "extent",
) -> UnitCounts:
    """Zero-filled counts on a square grid.

    Parameters
    ----------
    frame : DataFrame
        Either store counts (``cell_x``, ``cell_y``, ``count`` from ``counts(by=["cell:<m>"])``)
        or points (``x``, ``y``; each row one incident, or weighted by a ``count`` column).
    cell_size : float
        Cell edge in metres; must match the ``cell:<m>`` key used for the counts.
    crs : str
        The metric CRS of the coordinates.
    grid : SquareGrid, optional
        A fixed grid (e.g. the forecasting grid); by default the smallest covering grid.
    study_area : {"extent", "hull"} or boolean array
        Which cells exist: every cell of the grid's rectangle, the cells whose centres fall in
        the convex hull of the occupied cells (plus every occupied cell), or an explicit mask
        over the grid's cells.
    """
    if cell_size <= 0:
        raise InputError("cell size must be positive")
    if {"cell_x", "cell_y"} <= set(frame.columns):
        cx = frame["cell_x"].to_numpy(np.int64)
        cy = frame["cell_y"].to_numpy(np.int64)
        w = frame["count"].to_numpy(float) if "count" in frame else np.ones(len(frame))
        g = grid or grid_from_cells(cx, cy, cell_size, crs)
        xs, ys = (cx + 0.5) * cell_size, (cy + 0.5) * cell_size
    elif {"x", "y"} <= set(frame.columns):
        xs, ys = frame["x"].to_numpy(float), frame["y"].to_numpy(float)
        w = frame["count"].to_numpy(float) if "count" in frame else np.ones(len(frame))
        ok = np.isfinite(xs) & np.isfinite(ys)
        xs, ys, w = xs[ok], ys[ok], w[ok]
        g = grid or SquareGrid.covering(xs, ys, cell_size, crs)
    else:
        raise InputError("grid counts need cell_x/cell_y/count (store counts) or x/y (points)")
    if abs(g.cell_size - cell_size) > 1e-9 * cell_size:
        raise InputError("the given grid's cell size differs from cell_size")
    cell = g.cell_of(xs, ys)
    inside = cell >= 0
    full = np.bincount(cell[inside], weights=w[inside], minlength=g.n_cells).astype(float)
    mask = _study_mask(g, full, study_area)
    ids = np.flatnonzero(mask).astype(np.int64)
    cx_m, cy_m = g.centres(ids)
    return UnitCounts("grid", ids, full[ids], cx_m, cy_m, crs, grid=g)


def _study_mask(
    g: SquareGrid, full: FloatArray, study_area: StudyArea | npt.NDArray[np.bool_]
) -> npt.NDArray[np.bool_]:
    if isinstance(study_area, np.ndarray):
        if study_area.shape != (g.n_cells,):
            raise InputError(f"study-area mask must have one value per grid cell ({g.n_cells})")
        return study_area.astype(bool)
    if study_area == "extent":
        return np.ones(g.n_cells, dtype=bool)
    if study_area != "hull":
        raise InputError(f"unknown study area {study_area!r}: use 'extent', 'hull' or a mask")
    from scipy.spatial import Delaunay, QhullError

    occupied = np.flatnonzero(full > 0)
    mask = full > 0
    if occupied.size < 3:
        return mask
    ox, oy = g.centres(occupied)
    try:
        tri = Delaunay(np.column_stack([ox, oy]))
    except QhullError:  # collinear occupied cells: keep what is occupied
        return mask
    ax, ay = g.centres()
    mask |= tri.find_simplex(np.column_stack([ax, ay])) >= 0
    return mask


# --------------------------------------------------------------------------- H3


def h3_counts(
    frame: pd.DataFrame,
    resolution: int,
    crs: str,
    *,
    column: str | None = None,
    fill: bool = True,
) -> UnitCounts:
    """Zero-filled counts over H3 hexagons.

    Parameters
    ----------
    frame : DataFrame
        Store counts by an H3 column (``h3_9`` and ``count``) or any frame with that column.
    resolution : int
        H3 resolution of the column.
    crs : str
        Metric CRS for the hexagon centroids (weights are computed in metres).
    column : str, optional
        The H3 column; default ``h3_<resolution>``.
    fill : bool
        Add the empty hexagons inside the convex hull of the observed ones (zero-filling).
    """
    import h3
    import h3.api.basic_int as h3i

    col = column or f"h3_{resolution}"
    if col not in frame.columns:
        raise InputError(f"H3 counts need a {col!r} column (store.counts(by=[{col!r}]))")
    f = frame[frame[col].notna()]
    if f.empty:
        raise InputError(f"no incident has an {col} cell: nothing to count on H3 resolution {resolution}")
    ids = f[col].to_numpy(np.int64)
    w = f["count"].to_numpy(float) if "count" in f else np.ones(len(f))
    agg = pd.Series(w).groupby(ids).sum()
    cells = set(agg.index.tolist())
    if fill and len(cells) >= 3:
        lat, lon = np.array([h3i.cell_to_latlng(int(c)) for c in cells]).T
        from scipy.spatial import ConvexHull, QhullError

        try:
            hull = ConvexHull(np.column_stack([lon, lat]))
            ring = [(float(lat[i]), float(lon[i])) for i in hull.vertices]
            cells |= set(h3i.h3shape_to_cells(h3.LatLngPoly(ring), resolution))
        except QhullError:
            pass
    all_ids = np.array(sorted(cells), dtype=np.int64)
    counts = agg.reindex(all_ids, fill_value=0.0).to_numpy(float)
    latlon = np.array([h3i.cell_to_latlng(int(c)) for c in all_ids]).reshape(-1, 2)
    x, y = to_local(latlon[:, 1], latlon[:, 0], crs)
    shapes = tuple(
        {"type": "Polygon", "coordinates": [_closed([[b, a] for a, b in h3i.cell_to_boundary(int(c))])]}
        for c in all_ids
    )
    return UnitCounts("h3", all_ids, counts, x, y, crs, shapes=shapes)


def _closed(ring: list[list[float]]) -> list[list[float]]:
    return ring if ring and ring[0] == ring[-1] else [*ring, ring[0]]


# --------------------------------------------------------------------------- areas and polygons


def area_counts(frame: pd.DataFrame, column: str, *, areas: Sequence[str] | None = None) -> UnitCounts:
    """Zero-filled counts over the source's own areas (``district``, ``beat``, ``lsoa``...).

    ``areas`` lists every area that exists (e.g. from an unfiltered ``store.counts(by=[column])``);
    areas absent from ``frame`` get zero. Areas have no geometry here, so spatial statistics
    need :func:`polygon_counts` instead.
    """
    if column not in frame.columns:
        raise InputError(f"area counts need a {column!r} column")
    f = frame[frame[column].notna()]
    w = f["count"].to_numpy(float) if "count" in f else np.ones(len(f))
    agg = pd.Series(w, index=f[column].astype(str).to_numpy()).groupby(level=0).sum()
    names = sorted(set(agg.index) | {str(a) for a in (areas or ())})
    ids = np.array(names, dtype=object)
    nan = np.full(len(ids), np.nan)
    return UnitCounts("area", ids, agg.reindex(names, fill_value=0.0).to_numpy(float), nan, nan.copy(), None)


def polygon_counts(
    polygons: Any,
    frame: pd.DataFrame,
    crs: str,
    *,
    id_field: str | None = None,
    cell_size: float | None = None,
) -> UnitCounts:
    """Zero-filled counts over user polygons, by a spatial join (GeoPandas ``sjoin``).

    Parameters
    ----------
    polygons : geopandas.GeoDataFrame
        The polygons (any CRS; GeoJSON files are WGS84).
    frame : DataFrame
        Fine store counts (``cell_x``, ``cell_y``, ``count`` with ``cell_size``): each fine cell is
        assigned to the polygon holding its centre, so counts are exact up to the fine cell size
        and no incident is loaded. Or points (``x``, ``y``), joined exactly.
    crs : str
        The metric CRS of the counts.
    id_field : str, optional
        Property naming each polygon; default the row position.
    cell_size : float, optional
        Size of the fine cells, required with cell counts.
    """
    import geopandas as gpd

    if not isinstance(polygons, gpd.GeoDataFrame) or polygons.crs is None:
        raise InputError("polygons must be a GeoDataFrame with a CRS (GeoJSON is read as WGS84)")
    polys = polygons.reset_index(drop=True)
    ids = (polys[id_field].astype(str) if id_field else pd.Series(polys.index.astype(str))).to_numpy(object)
    if len(set(ids)) != len(ids):
        raise InputError(f"polygon ids must be unique ({id_field or 'row number'})")
    if {"cell_x", "cell_y"} <= set(frame.columns):
        if cell_size is None:
            raise InputError("cell_size is needed to place fine cell counts")
        px = (frame["cell_x"].to_numpy(float) + 0.5) * cell_size
        py = (frame["cell_y"].to_numpy(float) + 0.5) * cell_size
    else:
        px, py = frame["x"].to_numpy(float), frame["y"].to_numpy(float)
    w = frame["count"].to_numpy(float) if "count" in frame else np.ones(len(frame))
    ok = np.isfinite(px) & np.isfinite(py)
    pts = gpd.GeoDataFrame({"w": w[ok]}, geometry=gpd.points_from_xy(px[ok], py[ok]), crs=crs)
    local = polys.to_crs(crs)
    joined = gpd.sjoin(pts, local[["geometry"]], how="inner", predicate="within")
    sums = joined.groupby("index_right")["w"].sum()
    counts = sums.reindex(range(len(polys)), fill_value=0.0).to_numpy(float)
    cent = local.geometry.representative_point()
    wgs = polys.to_crs("EPSG:4326").geometry
    shapes = tuple(g.__geo_interface__ if g is not None else None for g in wgs)
    return UnitCounts("polygon", ids, counts, cent.x.to_numpy(float), cent.y.to_numpy(float), crs, shapes=shapes)


def unit_centres_wgs84(units: UnitCounts) -> tuple[FloatArray, FloatArray]:
    """``(lon, lat)`` of each unit centroid."""
    if units.crs is None:
        nan = np.full(units.n, np.nan)
        return nan, nan.copy()
    return to_wgs84(units.x, units.y, units.crs)
