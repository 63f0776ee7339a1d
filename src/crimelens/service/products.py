"""What the API and dashboard show, computed from the store through the core's analyses.

Every function takes a store (a per-thread read view) and an :class:`IncidentFilter` and
returns a JSON-ready dict; the routes only parse, call and serialise. Heavy results (hot spots,
area outlines) are cached per data generation by the caller.

Forecasts and leaderboards are *published* products: whoever computes them (``crimelens demo``,
a scheduled job, the forecasting module) stores the GeoJSON with :func:`publish`, and the API
serves the latest per model. Until one is published the API serves a clearly labelled
fallback: the densest cells of the last 28 days.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from crimelens.analysis.compstat import compstat as compstat_table
from crimelens.analysis.gistar import GetisOrd
from crimelens.analysis.temporal import hour_weekday as hour_weekday_matrix
from crimelens.analysis.temporal import time_series
from crimelens.analysis.units import grid_from_cells
from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter
from crimelens.schema import AREA_COLUMNS
from crimelens.service.records import rounded_sql
from crimelens.service.tables import Executes
from crimelens.store.duckdb import DuckDBStore
from crimelens.store.sql import where_clause

FALLBACK_MODEL = "recent_density"
MAX_GRID_CELLS = 250_000


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = json.loads(frame.to_json(orient="records", date_format="iso"))
    return out


def trend(store: DuckDBStore, flt: IncidentFilter, period: str = "day", stl: bool = False) -> dict[str, Any]:
    """Zero-filled counts per period, with the STL trend/seasonal/residual when asked and possible."""
    counts = store.counts([period, "time_precision"], flt)
    if counts.empty:
        return {"period": period, "points": [], "excluded": 0, "parameters": {"period": period}, "note": "no data"}
    note = None
    try:
        res = time_series(counts, period, stl=stl)  # type: ignore[arg-type]
    except InputError as exc:
        if not stl:
            raise
        res, note = time_series(counts, period), str(exc)  # type: ignore[arg-type]
    frame = res.to_frame()
    frame["period_start"] = frame["period_start"].dt.strftime("%Y-%m-%d")
    return {"period": period, "points": _records(frame), "excluded": res.excluded,
            "parameters": res.parameters, "note": note}


def hour_weekday(store: DuckDBStore, flt: IncidentFilter) -> dict[str, Any]:
    """Weekday × hour counts (UTC)."""
    counts = store.counts(["hour", "weekday", "time_precision"], flt)
    if counts.empty:
        return {"weekdays": [], "hours": list(range(24)), "values": [], "excluded": 0}
    m = hour_weekday_matrix(counts)
    return {"weekdays": [str(x) for x in m.table.index], "hours": [int(h) for h in m.table.columns],
            "values": m.table.to_numpy().tolist(), "excluded": m.excluded, "timezone": "UTC"}


def categories(store: DuckDBStore, flt: IncidentFilter) -> dict[str, Any]:
    """Counts per category, largest first."""
    c = store.counts(["category", "category_group"], flt).sort_values("count", ascending=False)
    return {"rows": _records(c)}


def by_area(store: DuckDBStore, flt: IncidentFilter, column: str) -> dict[str, Any]:
    """Counts per value of an area column (beat, district...)."""
    _check_area(column)
    c = store.counts([column], flt).dropna(subset=[column]).sort_values("count", ascending=False)
    return {"area": column, "rows": [{"area": str(a), "count": int(n)} for a, n in zip(c[column], c["count"],
                                                                                         strict=True)]}


def compstat(store: DuckDBStore, flt: IncidentFilter, as_of: str | None = None) -> dict[str, Any]:
    """CompStat table: offences × (7 days, 28 days, year to date) against last year."""
    return compstat_from_counts(compstat_counts(store, flt), as_of)


def compstat_counts(store: DuckDBStore, flt: IncidentFilter) -> pd.DataFrame:
    """The one database step of :func:`compstat`: all-history daily counts per offence. It does not
    depend on ``as_of``, so the service caches it per data generation and filter (a new report
    date then costs the table, not a scan of the store)."""
    return store.counts(["day", "category", "time_precision"], flt)


def compstat_from_counts(counts: pd.DataFrame, as_of: str | None = None) -> dict[str, Any]:
    """:func:`compstat` from :func:`compstat_counts` (no store; ``counts`` is not modified)."""
    if counts.empty:
        return {"method": "compstat", "windows": {}, "rows": [], "parameters": {}}
    out: dict[str, Any] = json.loads(json.dumps(compstat_table(counts, as_of=as_of).summary(), default=_jsonable))
    return out


def density_cells(store: DuckDBStore, flt: IncidentFilter, cell_m: float) -> dict[str, Any]:
    """Incident counts on square cells of each source's metric CRS, as a WGS84 FeatureCollection."""
    return _cell_features(store.counts(["crs", f"cell:{cell_m:g}"], flt), cell_m)


def _cell_features(counts: pd.DataFrame, cell_m: float) -> dict[str, Any]:
    """Cell counts (``crs``, ``cell_x``, ``cell_y``, ``count``) as WGS84 square polygons."""
    feats: list[dict[str, Any]] = []
    for crs, part in counts.dropna(subset=["crs"]).groupby("crs"):
        grid = grid_from_cells(part["cell_x"], part["cell_y"], cell_m, str(crs))
        col = part["cell_x"].to_numpy(np.int64) - round(grid.x0 / cell_m)
        row = part["cell_y"].to_numpy(np.int64) - round(grid.y0 / cell_m)
        ids = row * grid.nx + col
        rings = grid.polygons_wgs84(ids)
        for ring, n in zip(rings, part["count"].tolist(), strict=True):
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                          "properties": {"count": int(n), "per_km2": round(n / (cell_m**2 / 1e6), 3)}})
    return {"type": "FeatureCollection", "features": feats,
            "parameters": {"cell_size_m": cell_m, "units": "incidents per cell"}}


def hotspots(store: DuckDBStore, flt: IncidentFilter, cell_m: float, band_m: float | None) -> dict[str, Any]:
    """Getis-Ord Gi* hot and cold spots on square cells (significant cells only), per source CRS."""
    return hotspots_from_counts(hotspot_counts(store, flt, cell_m), cell_m, band_m)


def hotspot_counts(store: DuckDBStore, flt: IncidentFilter, cell_m: float) -> pd.DataFrame:
    """The one database step of :func:`hotspots`: incidents per (CRS, square cell), grouped by the store."""
    return store.counts(["crs", f"cell:{cell_m:g}"], flt)


def hotspots_from_counts(counts: pd.DataFrame, cell_m: float, band_m: float | None) -> dict[str, Any]:
    """:func:`hotspots` from :func:`hotspot_counts` (no store: Gi* in the core on the cell counts)."""
    feats: list[dict[str, Any]] = []
    params: dict[str, Any] = {}
    classes: dict[str, int] = {}
    for crs, part in counts.dropna(subset=["crs"]).groupby("crs"):
        if len(part) < 3:
            continue
        span = (part["cell_x"].max() - part["cell_x"].min() + 1) * (part["cell_y"].max() - part["cell_y"].min() + 1)
        if span > MAX_GRID_CELLS:
            raise InputError(f"{cell_m:g} m cells are too small for this extent ({int(span):,} cells); "
                             "use larger cells")
        est = GetisOrd(distance_band=band_m or 3 * cell_m, cell_size=cell_m, crs=str(crs))
        res = est.fit(part[["cell_x", "cell_y", "count"]]).result_
        bins = np.asarray(res.values["Gi_Bin"])
        gj = res.to_geojson(include=bins != 0)
        feats.extend(gj["features"])
        params = gj.get("parameters", {})
        for k, v in res.class_counts().items():
            classes[k] = classes.get(k, 0) + v
    return {"type": "FeatureCollection", "features": feats, "parameters": params, "class_counts": classes}


def area_outlines(store: DuckDBStore, flt: IncidentFilter, column: str) -> dict[str, Any]:
    """Approximate outline (convex hull of its incidents) and count of each area, for tile-free maps."""
    from scipy.spatial import ConvexHull, QhullError

    _check_area(column)
    where, params = where_clause(flt)
    frame = store.execute(
        f'SELECT "{column}" AS area, {rounded_sql("lon", 4)} AS lon, {rounded_sql("lat", 4)} AS lat, count(*) AS n '  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
        f'FROM incidents WHERE {where} AND lat IS NOT NULL AND "{column}" IS NOT NULL GROUP BY 1, 2, 3', params)
    feats = []
    for area, part in frame.groupby("area"):
        pts = part[["lon", "lat"]].to_numpy(float)
        if len(pts) < 3:
            continue
        try:
            hull = ConvexHull(pts)
        except QhullError:
            continue
        ring = [[float(x), float(y)] for x, y in pts[hull.vertices]]
        feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [[*ring, ring[0]]]},
                      "properties": {"area": str(area), "count": int(part["n"].sum())}})
    return {"type": "FeatureCollection", "features": feats,
            "parameters": {"area": column, "outline": "convex hull of the area's incidents (approximate)"}}


# -- published products ------------------------------------------------------------------------
def publish(con: Executes, kind: str, name: str, payload: dict[str, Any], *, at: datetime | None = None) -> None:
    """Store a product (``forecast`` GeoJSON per model, ``leaderboard`` rows) for the API to serve."""
    con.execute("INSERT INTO svc_products VALUES (?, ?, ?, ?)",
                [kind, name, at or datetime.now(UTC), json.dumps(payload, default=_jsonable)])


def latest(store: DuckDBStore, kind: str) -> dict[str, dict[str, Any]]:
    """The newest product of ``kind`` per name: ``{name: {"created_at", "payload"}}``."""
    frame = store.execute(
        "SELECT name, created_at, payload FROM (SELECT *, row_number() OVER (PARTITION BY name "
        "ORDER BY created_at DESC) AS k FROM svc_products WHERE kind = ?) p WHERE k = 1 ORDER BY name", [kind])
    return {str(name): {"created_at": pd.Timestamp(at).isoformat(), "payload": json.loads(str(payload))}
            for name, at, payload in zip(frame["name"], frame["created_at"], frame["payload"], strict=True)}


def fallback_forecast(
    store: DuckDBStore, flt: IncidentFilter, cell_m: float, top_share: float = 0.02,
) -> dict[str, Any]:
    """The densest cells of the last 28 days: a naive 'recent density' surface, labelled as such."""
    last = store.execute("SELECT max(occurred_at) AS t FROM incidents")["t"].iloc[0]
    if last is None or pd.isna(last):
        return {"type": "FeatureCollection", "features": [], "parameters": {"model": FALLBACK_MODEL}}
    end = pd.Timestamp(last).tz_convert("UTC") + pd.Timedelta(seconds=1)
    window = IncidentFilter(start=(end - pd.Timedelta(days=28)).to_pydatetime(), end=end.to_pydatetime(),
                            categories=flt.categories, sources=flt.sources, areas=flt.areas)
    every = store.counts(["crs", f"cell:{cell_m:g}"], window).dropna(subset=["crs"])
    total = int(every["count"].sum()) or 1
    top = every.nlargest(max(1, int(len(every) * top_share)), "count", keep="first") if len(every) else every
    # outlines of the kept cells only (the fallback keeps 2% of a month's cells)
    keep = sorted(_cell_features(top, cell_m)["features"], key=lambda f: -f["properties"]["count"])
    for rank, f in enumerate(keep, 1):
        f["properties"].update(rank=rank, score=f["properties"]["count"] / total)
    return {"type": "FeatureCollection", "features": keep, "parameters": {
        "model": FALLBACK_MODEL, "cell_size_m": cell_m, "window_days": 28, "top_share": top_share,
        "note": "fallback: no forecast has been published; shows the densest recent cells"}}


def _check_area(column: str) -> None:
    if column not in AREA_COLUMNS:
        raise InputError(f"unknown area column {column!r}; use one of {', '.join(AREA_COLUMNS)}")


def _jsonable(value: Any) -> Any:
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return None if not np.isfinite(value) else float(value)
    if isinstance(value, (pd.Timestamp, datetime)):
        return value.isoformat()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return str(value)
