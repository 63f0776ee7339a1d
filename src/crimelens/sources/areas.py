"""Read area files (boundaries with attributes) into an :class:`~crimelens.drivers.areas.AreaLayer`.

Accepted: GeoPackage, GeoJSON, shapefile (anything ``pyogrio`` reads), or a CSV of attributes joined
to a boundary file by a key column. On the way in:

- **CRS.** A file's CRS is taken from the file or from ``crs=`` (never guessed from the numbers);
  with one known, the layer is reprojected to WGS84 so incident coordinates can be placed in it.
  Without one, coordinates are kept as planar values and the layer can be modelled but not joined
  to incidents (a note says so).
- **Geometry.** Empty or missing geometries are dropped, invalid ones are repaired with
  ``shapely.make_valid`` (keeping the polygonal part); an area whose repair leaves no polygon is
  dropped. Every drop and repair is reported in ``layer.notes`` with the area id and reason.
- **Keys and population.** ``id_col`` must be unique and present; population columns are declared by
  the caller and must be numeric and non-negative.
"""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pandas as pd
import shapely

from crimelens.drivers.areas import AREA_ID, AreaLayer
from crimelens.exceptions import InputError

VECTOR_SUFFIXES = (".gpkg", ".geojson", ".json", ".shp", ".fgb", ".gml", ".kml", ".zip")
_POLYGONAL = ("Polygon", "MultiPolygon")


def _read_vector(path: Path) -> gpd.GeoDataFrame:
    if not path.exists():
        raise InputError(f"{path}: no such file")
    try:
        gdf = gpd.read_file(path)
    except Exception as exc:  # pyogrio raises many driver-specific types; report one line
        raise InputError(f"{path}: cannot read as a vector file ({str(exc).splitlines()[0]})") from exc
    if not isinstance(gdf, gpd.GeoDataFrame) or gdf.geometry.name not in gdf.columns:
        raise InputError(f"{path}: has no geometry column")
    return gdf


def _join_csv(path: Path, boundaries: Path | None, key: str | None) -> gpd.GeoDataFrame:
    if boundaries is None or key is None:
        raise InputError(f"{path}: a CSV of area attributes needs --boundaries FILE and --key COLUMN to join on")
    try:
        table = pd.read_csv(path)
    except (OSError, ValueError) as exc:
        raise InputError(f"{path}: cannot read CSV ({str(exc).splitlines()[0]})") from exc
    shapes = _read_vector(boundaries)
    for name, frame in (("CSV", table), ("boundary file", shapes)):
        if key not in frame.columns:
            raise InputError(f"key column {key!r} is not in the {name}")
    if table[key].duplicated().any():
        raise InputError(f"key {key!r} repeats in {path}: one row per area is needed")
    table[key] = table[key].astype(str)
    shapes = shapes[[key, shapes.geometry.name]].copy()
    shapes[key] = shapes[key].astype(str)
    merged = shapes.merge(table, on=key, how="inner")
    if merged.empty:
        raise InputError(f"no {key!r} value of {path} matches the boundary file {boundaries}")
    return gpd.GeoDataFrame(merged, geometry=shapes.geometry.name, crs=shapes.crs)


def repair_geometries(gdf: gpd.GeoDataFrame, ids: pd.Series) -> tuple[gpd.GeoDataFrame, list[str]]:
    """Drop empty geometries, repair invalid ones with ``make_valid``; return the kept rows and notes."""
    notes: list[str] = []
    geom = gdf.geometry
    empty = (geom.isna() | geom.is_empty).to_numpy()
    if empty.any():
        notes.append(f"dropped {int(empty.sum())} area(s) with an empty geometry: "
                     + ", ".join(ids[empty].astype(str).head(10)))
    gdf, ids = gdf[~empty].copy(), ids[~empty]
    kinds = set(gdf.geometry.geom_type.unique())
    if kinds and not kinds & {"Polygon", "MultiPolygon", "GeometryCollection"}:
        raise InputError(f"an area layer needs polygons, the file holds {', '.join(sorted(kinds))}")
    invalid = (~gdf.geometry.is_valid).to_numpy()
    if invalid.any():
        fixed = shapely.make_valid(gdf.geometry.to_numpy()[invalid])
        polys = [_polygonal(g) for g in fixed]
        bad = [g is None for g in polys]
        good_ids = [i for i, b in zip(ids[invalid].astype(str), bad, strict=True) if not b]
        bad_ids = [i for i, b in zip(ids[invalid].astype(str), bad, strict=True) if b]
        values = gdf.geometry.to_numpy().copy()
        values[invalid] = [g if g is not None else shapely.Polygon() for g in polys]
        gdf = gdf.set_geometry(gpd.GeoSeries(values, index=gdf.index, crs=gdf.crs))
        if good_ids:
            notes.append(f"repaired {len(good_ids)} invalid geometr{'y' if len(good_ids) == 1 else 'ies'} "
                         f"with make_valid: {', '.join(good_ids[:10])}")
        if bad_ids:
            notes.append(f"refused {len(bad_ids)} area(s) whose geometry make_valid could not turn into a polygon: "
                         + ", ".join(bad_ids[:10]))
            keep = ~gdf.geometry.is_empty.to_numpy()
            gdf = gdf[keep]
    if gdf.empty:
        raise InputError("no area has a usable polygon geometry")
    return gdf, notes


def _polygonal(g: shapely.Geometry) -> shapely.Geometry | None:
    if g is None or g.is_empty:
        return None
    if g.geom_type in _POLYGONAL:
        return g
    if g.geom_type == "GeometryCollection":
        parts = [p for p in shapely.get_parts(g) if p.geom_type in _POLYGONAL]
        if parts:
            return shapely.union_all(parts)
    return None


def read_areas(
    path: str | Path,
    *,
    name: str | None = None,
    id_col: str | None = None,
    population: tuple[str, ...] = (),
    crs: str | None = None,
    boundaries: str | Path | None = None,
    key: str | None = None,
) -> AreaLayer:
    """Read an area file into an :class:`AreaLayer` (see the module docstring for the checks).

    Parameters
    ----------
    path
        GeoPackage / GeoJSON / shapefile, or a CSV (then ``boundaries`` and ``key`` are required).
    name
        Layer name; the file stem by default.
    id_col
        Unique area key column; the row number when omitted (reported).
    population
        Declared population / exposure columns.
    crs
        CRS of the file when it carries none (e.g. ``EPSG:4326`` for a shapefile without ``.prj``).
    """
    path = Path(path)
    if path.suffix.lower() == ".csv":
        gdf = _join_csv(path, Path(boundaries) if boundaries else None, key)
        id_col = id_col or key
    else:
        gdf = _read_vector(path)
    notes: list[str] = []
    if gdf.empty:
        raise InputError(f"{path}: has no areas")
    if id_col is None:
        ids = pd.Series([str(i + 1) for i in range(len(gdf))], index=gdf.index)
        notes.append("no --id given: areas are numbered 1..n in file order")
    else:
        if id_col not in gdf.columns:
            raise InputError(f"--id {id_col!r} is not a column of {path} (columns: {', '.join(map(str, gdf.columns))})")
        if gdf[id_col].isna().any() or gdf[id_col].duplicated().any():
            raise InputError(f"--id {id_col!r} is not a unique key: it has missing or repeated values")
        ids = gdf[id_col].astype(str)
    for col in population:
        if col not in gdf.columns:
            raise InputError(f"population column {col!r} is not in {path}")
        if not pd.api.types.is_numeric_dtype(gdf[col]):
            raise InputError(f"population column {col!r} is not numeric")
        if (gdf[col] < 0).any():
            raise InputError(f"population column {col!r} has negative values")
    if crs is not None:
        try:
            gdf = gdf.set_crs(crs, allow_override=True) if gdf.crs is None else gdf
        except Exception as exc:  # pyproj raises CRSError for unknown text
            raise InputError(f"--crs {crs!r} is not a CRS pyproj knows") from exc
        if gdf.crs is not None and not gdf.crs.equals(crs):
            notes.append(f"file declares {gdf.crs.to_string()}; --crs {crs} ignored")
    gdf, repair_notes = repair_geometries(gdf, ids)
    notes.extend(repair_notes)
    ids = ids.loc[gdf.index]
    layer_crs: str | None = None
    if gdf.crs is None:
        notes.append("the file has no CRS: coordinates are kept as planar values; pass --crs to place incidents")
    else:
        if not gdf.crs.equals("EPSG:4326"):
            notes.append(f"reprojected from {gdf.crs.to_string()} to EPSG:4326")
            gdf = gdf.to_crs("EPSG:4326")
        layer_crs = "EPSG:4326"
    frame = gdf.drop(columns=[AREA_ID], errors="ignore").reset_index(drop=True)
    frame.insert(0, AREA_ID, ids.to_numpy())
    frame = frame.rename_geometry("geometry") if frame.geometry.name != "geometry" else frame
    return AreaLayer(name=name or path.stem, frame=frame, population=tuple(population), crs=layer_crs, notes=notes)


def is_area_file(text: str) -> bool:
    """True when ``text`` names an existing file (rather than a stored layer name)."""
    p = Path(text)
    return p.suffix.lower() in (*VECTOR_SUFFIXES, ".csv") and p.exists()
