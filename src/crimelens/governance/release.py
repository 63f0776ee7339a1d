"""Public releases of incident data: masked points or suppressed counts, with a protection report.

A release is built from a whitelist, never by dropping columns from the canonical table: points
carry only a fresh random ``release_id``, the category (or its group), the date truncated to a
day, week or month, and masked ``lat``/``lon``; count tables carry only their keys and counts.
Suspect and victim references, narratives, addresses, incident ids, lineage and raw fields never
reach a release, and release ids do not join back to the store.

Sexual offences and human trafficking are withheld from point releases by default (they are
still counted in tables), as many agencies do, because even a masked point can single out a
victim's home.

Limits: protection is spatial (points) or per table (counts). Dates and categories published
next to a masked point can narrow an attacker's candidates further (spatio-temporal linkage), and
tables from different releases that share margins are not protected jointly.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.geo.crs import to_local
from crimelens.governance.anchors import snap_to_anchors
from crimelens.governance.exports import safe_csv
from crimelens.governance.geomask import MaskedPoints, donut_candidates, donut_mask, verify_mask
from crimelens.governance.mapcounts import GridCounts, GridMethod, protect_grid
from crimelens.governance.suppression import TOTAL, suppress_table
from crimelens.schema import AREA_COLUMNS

MaskMethod = Literal["donut", "snap"]
#: Categories withheld from point releases by default.
WITHHELD_CATEGORIES: tuple[str, ...] = (
    "rape", "sexual_offense_other", "sexual_offense", "violence_and_sexual", "human_trafficking",
)
#: The only columns a point release may contain.
POINT_COLUMNS: tuple[str, ...] = ("release_id", "category", "category_group", "date", "lat", "lon")
PERIODS = {"day": "D", "week": "W-SUN", "month": "M"}
FORMATS = (".csv", ".parquet", ".geojson")


@dataclass(slots=True)
class PublicRelease:
    """A release ready to write, and the report of the protection applied.

    Attributes
    ----------
    kind : str
        ``points``, ``areas`` or ``grid``.
    data : DataFrame
        The rows to publish.
    report : dict
        JSON-ready: method, k, parameters, what was dropped or hidden, and the audit figures.
    rings : list, optional
        ``grid``: each row's outline as a WGS84 ring, for GeoJSON.
    """

    kind: str
    data: pd.DataFrame
    report: dict[str, Any]
    rings: list[list[list[float]]] | None = field(default=None, repr=False)

    def to_geojson(self) -> dict[str, Any]:
        """A GeoJSON FeatureCollection (points or grid cells)."""
        if self.kind == "areas":
            raise InputError("an area table has no geometry: write it as .csv or .parquet")
        props = [c for c in self.data.columns if c not in ("lat", "lon")]
        records = self.data[props].astype(object).where(self.data[props].notna(), None).to_dict("records")
        if self.kind == "points":
            geoms = [{"type": "Point", "coordinates": [round(float(lo), 6), round(float(la), 6)]}
                     for lo, la in zip(self.data["lon"], self.data["lat"], strict=True)]
        else:
            geoms = [{"type": "Polygon", "coordinates": [ring]} for ring in self.rings or []]
        feats = [{"type": "Feature", "geometry": g, "properties": {k: _plain(v) for k, v in p.items()}}
                 for g, p in zip(geoms, records, strict=True)]
        return {"type": "FeatureCollection", "features": feats}

    def write(self, path: str | Path) -> Path:
        """Write the data as ``.csv`` (formula-safe), ``.parquet`` or ``.geojson``."""
        out = Path(path)
        suffix = out.suffix.lower()
        if suffix not in FORMATS:
            raise InputError(f"unsupported release format {out.name!r}: use {', '.join(FORMATS)}")
        if suffix == ".geojson":
            out.write_text(json.dumps(self.to_geojson()), encoding="utf-8")
        elif suffix == ".parquet":
            self.data.to_parquet(out, index=False)
        else:
            safe_csv(self.data, out)
        return out


def _plain(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    return value


def _periods(occurred_at: pd.Series, period: str, tz: str) -> pd.Series:
    if period not in PERIODS:
        raise InputError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    local = pd.to_datetime(occurred_at, utc=True).dt.tz_convert(tz).dt.tz_localize(None)
    return local.dt.to_period(PERIODS[period]).dt.start_time.dt.strftime("%Y-%m-%d")


def _located(incidents: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    missing = {"x", "y", "crs", "occurred_at", "category", "category_group"} - set(incidents.columns)
    if missing:
        raise InputError(f"a point release needs columns {', '.join(sorted(missing))}")
    located = incidents[incidents["x"].notna() & incidents["y"].notna() & incidents["crs"].notna()]
    crs = sorted(located["crs"].astype(str).unique())
    if len(crs) > 1:
        raise InputError(f"the selection mixes CRSs ({', '.join(crs)}): release one source at a time")
    if not crs:
        raise InputError("no located incidents to release")
    return located, crs[0]


def release_points(
    incidents: pd.DataFrame,
    *,
    method: MaskMethod = "donut",
    k: int = 10,
    period: str = "week",
    level: Literal["category", "category_group"] = "category",
    seed: int | None = None,
    tz: str = "UTC",
    reference: Any = None,
    reference_wgs84: bool = False,
    withhold: tuple[str, ...] = WITHHELD_CATEGORIES,
    min_radius: float = 0.0,
    max_radius: float | None = None,
    cell_size: float = 100.0,
) -> PublicRelease:
    """Masked incident points with only non-personal columns.

    Parameters
    ----------
    incidents : DataFrame
        Canonical incidents (at least ``x``, ``y``, ``crs``, ``occurred_at``, ``category``,
        ``category_group``); unlocated ones are counted and left out.
    method : {"donut", "snap"}
        :func:`~crimelens.governance.geomask.donut_mask` or
        :func:`~crimelens.governance.geomask.snap_to_anchors`.
    k : int
        Spatial k-anonymity (donut) or smallest anchor catchment (snap).
    period : {"day", "week", "month"}
        The published ``date`` is the start of the incident's local day, week or month.
    level : {"category", "category_group"}
        Publish the category, or only its group (``category`` is then omitted).
    seed : int, optional
        Donut key (keep it secret; the report never contains it).
    tz : str
        Time zone of the published dates.
    reference : array_like, optional
        ``(n, 2)`` reference locations (e.g. address points), in the incidents' CRS.
    reference_wgs84 : bool
        ``reference`` is ``(lon, lat)`` in WGS84 (see :func:`crimelens.sources.points.read_reference`) and is projected.
    withhold : tuple of str
        Categories left out of the release.
    min_radius, max_radius : float
        Donut displacement bounds in metres; points that cannot meet ``k`` within
        ``max_radius`` are left out.
    cell_size : float
        Snap: finest anchor cell in metres.

    Returns
    -------
    PublicRelease
    """
    if method not in ("donut", "snap"):
        raise InputError(f"mask method must be donut or snap, got {method!r}")
    located, crs = _located(incidents)
    held = located["category"].isin(withhold)
    kept = located[~held]
    if kept.empty:
        raise InputError("no incidents left to release after withholding sensitive categories")
    x, y = kept["x"].to_numpy(float), kept["y"].to_numpy(float)
    if reference is not None and reference_wgs84:
        lonlat = np.asarray(reference, dtype=float).reshape(-1, 2)
        reference = np.column_stack(to_local(lonlat[:, 0], lonlat[:, 1], crs))
    mask: MaskedPoints
    if method == "donut":
        mask = donut_mask(x, y, k=k, min_radius=min_radius, max_radius=max_radius, reference=reference,
                          seed=seed, crs=crs)
    else:
        mask = snap_to_anchors(x, y, k=k, cell_size=cell_size, reference=reference, max_distance=max_radius,
                               crs=crs)
    ok = mask.protected
    check = verify_mask(x[ok], y[ok], mask.x[ok], mask.y[ok], reference=reference, k=k)
    if mask.lat is None or mask.lon is None:  # pragma: no cover - a CRS is always given here
        raise InputError("masked points have no WGS84 coordinates")
    cols = ["category_group"] if level == "category_group" else ["category", "category_group"]
    data = pd.DataFrame({c: kept[c].to_numpy()[ok] for c in cols})
    data["date"] = _periods(kept["occurred_at"], period, tz).to_numpy()[ok]
    data["lat"] = np.round(mask.lat[ok], 6)
    data["lon"] = np.round(mask.lon[ok], 6)
    data = data.sort_values(["date", *cols, "lat", "lon"], kind="stable").reset_index(drop=True)
    data.insert(0, "release_id", [secrets.token_hex(8) for _ in range(len(data))])
    summary = check.summary()
    if method == "donut":
        summary.pop("min_catchment")  # one location per published point: its protection is the k-anonymity
        cand = donut_candidates(mask.x[ok], mask.y[ok], np.column_stack([x, y]) if reference is None else reference,
                                k=k, min_radius=min_radius, max_radius=max_radius)
        summary["min_consistent_candidates"] = int(cand.min()) if len(cand) else None
        summary["share_consistent_below_k"] = float(np.mean(cand < k)) if len(cand) else 0.0
    report: dict[str, Any] = {
        "kind": "points", "method": method, "k": k, "parameters": mask.params, "crs": crs,
        "seed_published": False, "period": period, "level": level, "columns": list(data.columns),
        "records": len(data), "input_incidents": len(incidents),
        "dropped_unlocated": len(incidents) - len(located),
        "withheld_categories": {str(c): int(n) for c, n in located.loc[held, "category"].value_counts().items()},
        "dropped_unprotected": int((~ok).sum()),
        "verification": summary,
        "guarantee": (f"every published point has at least {k} other distinct locations closer to its true "
                      f"location than the published point is, and at least {k} reference locations whose donut "
                      "could have produced it" if method == "donut" else
                      f"every published point stands for at least {k} distinct locations"),
    }
    if mask.anchors is not None and mask.anchor is not None:
        report["min_anchor_catchment"] = int(mask.anchors["catchment"].to_numpy()[np.unique(mask.anchor[ok])].min())
    if method == "donut":
        achieved = min(summary["min_k_anonymity"] or 0, summary["min_consistent_candidates"] or 0)
    elif reference is None:
        achieved = summary["min_catchment"] or 0
    else:
        achieved = report["min_anchor_catchment"]
    report["guarantee_met"] = bool(summary["published_equal_to_input"] == 0 and achieved >= k)
    return PublicRelease("points", data, report)



def area_period_counts(incidents: pd.DataFrame, *, area: str, period: str, tz: str = "UTC") -> pd.DataFrame:
    """Counts by ``area`` and ``period`` from an in-memory canonical frame (``Store.counts`` shape)."""
    check_area(area, incidents.columns)
    keys = pd.DataFrame({area: incidents[area].to_numpy(), period: _periods(incidents["occurred_at"], period, tz)})
    return keys.value_counts(dropna=False).rename("count").reset_index()


def check_area(area: str, columns: Any = AREA_COLUMNS) -> str:
    """``area`` if it is a canonical area column present in ``columns``, else :class:`InputError`."""
    if area not in AREA_COLUMNS or area not in set(columns):
        raise InputError(f"unknown area column {area!r}; use one of {', '.join(AREA_COLUMNS)}")
    return area


def release_areas(counts: pd.DataFrame, *, area: str, period: str, k: int = 10,
                  protection: float | None = None) -> PublicRelease:
    """An area × period count table with margins, small cells suppressed.

    Parameters
    ----------
    counts : DataFrame
        Columns ``area``, ``period`` (timestamps or ISO dates) and ``count``, e.g. from
        ``Store.counts([area, period])`` or :func:`area_period_counts`.
    area, period : str
        The key columns. Incidents without an area are the row ``"(none)"``.
    k : int
        Suppression threshold (cells with ``0 < count < k``).
    protection : float, optional
        Minimum feasible-interval width of each suppressed small cell (default ``k``).

    Returns
    -------
    PublicRelease
        Long table: ``area``, ``period`` (period start, ``"all"`` for margins), ``count``
        (empty when suppressed) and ``suppressed``.
    """
    check_area(area, counts.columns)
    if period not in counts.columns or "count" not in counts.columns:
        raise InputError(f"area counts need columns {area!r}, {period!r} and 'count'")
    if counts.empty:
        raise InputError("no incidents match the filters")
    frame = counts.copy()
    frame[area] = frame[area].astype("string").fillna("(none)")
    frame[period] = pd.to_datetime(frame[period]).dt.strftime("%Y-%m-%d")
    table = frame.pivot_table(index=area, columns=period, values="count", aggfunc="sum", fill_value=0)
    table = table.sort_index().sort_index(axis=1)
    protected = suppress_table(table, k=k, protection=protection)
    long = protected.to_long(area, "period")
    long[area] = long[area].astype(str)
    long["period"] = long["period"].astype(str)
    report = {
        "kind": "areas", "method": "cell suppression", "k": k, "area": area, "period": period,
        "rows": int(table.shape[0]), "periods": int(table.shape[1]), "columns": list(long.columns),
        "margins": f"row, column and grand totals labelled {TOTAL!r}",
        "suppression": protected.summary(),
        "guarantee": (f"no published cell or total has 0 < count < {k}; every suppressed small cell's feasible "
                      f"range given the published cells is at least {protected.protection:g} wide"),
        "guarantee_met": protected.protected,
    }
    return PublicRelease("areas", long, report)


def release_grid(cells: pd.DataFrame, *, cell_size: float, crs: str, k: int = 10, levels: int = 3,
                 method: GridMethod = "merge") -> PublicRelease:
    """Grid counts for a map: :func:`~crimelens.governance.mapcounts.protect_grid` as a release.

    Parameters
    ----------
    cells : DataFrame
        ``cell_x``, ``cell_y``, ``count`` at ``cell_size`` metres (``Store.counts(["cell:<size>"])``).
    cell_size : float
        Finest cell in metres.
    crs : str
        The metric CRS of the cells.
    k : int
        Threshold.
    levels : int
        Coarsest cells are ``2**levels`` times ``cell_size`` (merge).
    method : {"merge", "suppress"}
        Merge small cells into coarser ones, or suppress them.

    Returns
    -------
    PublicRelease
        ``cell`` (an id of this release only), ``size_m``, ``count``, ``suppressed``, the centre's
        ``lat``/``lon``; GeoJSON output has the cell polygons.
    """
    grid: GridCounts = protect_grid(cells, cell_size=cell_size, crs=crs, k=k, levels=levels, method=method)
    c = grid.cells
    rings = grid.polygons_wgs84()
    data = pd.DataFrame({
        "cell": np.arange(1, len(c) + 1), "size_m": c["size"].to_numpy(), "count": c["count"],
        "suppressed": c["suppressed"].to_numpy(),
        "lat": [round(float(np.mean([p[1] for p in r[:4]])), 6) for r in rings],
        "lon": [round(float(np.mean([p[0] for p in r[:4]])), 6) for r in rings],
    })
    report = {
        "kind": "grid", "method": method, "k": k, "cell_size_m": cell_size, "levels": levels, "crs": crs,
        "total": grid.total, "columns": list(data.columns), "suppression": grid.summary(),
        "guarantee": f"no published cell or total has 0 < count < {k}", "guarantee_met": grid.table.protected,
    }
    return PublicRelease("grid", data, report, rings)
