"""Evaluate user rules on recent incidents: near-repeat series, watched offences, area thresholds.

**Series** ("3 or more burglaries within 400 m and 7 days"): among the rule's incidents in the
``days`` before ``now``, an incident is a *core* when at least ``min_count − 1`` others lie
within ``radius_m`` of it; cores within ``radius_m`` of each other join one series, together with
their neighbours (density-based clustering in the spirit of DBSCAN, Ester et al. 1996, with the
time limit given by the window). Each series with ``min_count`` or more incidents is one alert,
placed in the area most of its incidents fall in. This is the operational form of the
near-repeat pattern (Johnson & Bowers 2004; Townsley, Homel & Chaseling 2003).

**Watch**: every incident of the rule's categories in the window is an alert.

**Threshold**: the count of the rule's categories in an area over the window reaches
``min_count``.

References
----------
Ester, M., Kriegel, H.-P., Sander, J. & Xu, X. (1996). A density-based algorithm for discovering
clusters in large spatial databases with noise. *KDD-96*, 226-231.
Johnson, S. D. & Bowers, K. J. (2004). The burglary as clue to the future: the beginnings of
prospective hot-spotting. *European Journal of Criminology* 1(2), 237-255.
Townsley, M., Homel, R. & Chaseling, J. (2003). Infectious burglaries: a test of the near repeat
hypothesis. *British Journal of Criminology* 43(3), 615-633.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from crimelens.alerts.model import Alert, Severity
from crimelens.alerts.panel import local_midnight
from crimelens.alerts.rules import Rule, RuleBook
from crimelens.filters import utc

_EARTH_M = 6_371_008.8


def _ids(frame: pd.DataFrame) -> list[str]:
    return [f"{s}:{i}" for s, i in zip(frame["source"], frame["incident_id"], strict=True)]


def _area(frame: pd.DataFrame, level: str) -> pd.Series:
    if level == "city":
        return pd.Series("all", index=frame.index)
    return frame[level].astype("string").fillna("(none)")


def _metres(frame: pd.DataFrame) -> np.ndarray:
    """Planar coordinates in metres: the local CRS, else an equirectangular projection of lat/lon."""
    if frame["x"].notna().all():
        return np.column_stack([frame["x"].to_numpy(float), frame["y"].to_numpy(float)])
    lat = np.radians(frame["lat"].to_numpy(float))
    lon = np.radians(frame["lon"].to_numpy(float))
    lat0 = float(np.nanmean(lat)) if lat.size else 0.0
    return np.column_stack([_EARTH_M * lon * np.cos(lat0), _EARTH_M * lat])


def _select(rule: Rule, incidents: pd.DataFrame, now: pd.Timestamp) -> pd.DataFrame:
    t = pd.to_datetime(incidents["occurred_at"], utc=True)
    m = (t >= now - pd.Timedelta(rule.window)) & (t < now) & incidents["category"].isin(rule.expanded)
    if rule.areas:
        m &= _area(incidents, rule.area_level).isin(rule.areas)
    return incidents[m]


def find_series(points: np.ndarray, min_count: int, radius_m: float) -> list[np.ndarray]:
    """Indices of each series (≥ ``min_count`` points) among planar ``points`` (metres)."""
    n = len(points)
    if n < min_count:
        return []
    tree = cKDTree(points)
    pairs = tree.query_pairs(radius_m, output_type="ndarray")
    if len(pairs) == 0:
        return []
    degree = np.bincount(pairs.ravel(), minlength=n)
    core = degree >= min_count - 1
    # link core-core pairs; attach each border point to one neighbouring core
    cc = pairs[core[pairs[:, 0]] & core[pairs[:, 1]]]
    graph = coo_matrix((np.ones(len(cc)), (cc[:, 0], cc[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    member = np.full(n, -1)
    member[core] = labels[core]
    for a, b in pairs:
        if core[a] and member[b] < 0:
            member[b] = labels[a]
        elif core[b] and member[a] < 0:
            member[a] = labels[b]
    out = []
    for lab in np.unique(member[member >= 0]):
        idx = np.flatnonzero(member == lab)
        if idx.size >= min_count:
            out.append(idx)
    return out


def _local_day(when: pd.Timestamp, tz: str, shift: int = 0) -> pd.Timestamp:
    day = when.tz_convert(tz).tz_localize(None).normalize() + pd.Timedelta(days=shift)
    return local_midnight(day, tz)


def evaluate_rule(rule: Rule, incidents: pd.DataFrame, now: Any, *,
                  must_include: set[str] | None = None, tz: str = "UTC") -> list[Alert]:
    """Alerts ``rule`` raises on ``incidents`` at ``now`` (the window is ``rule.window`` before it).

    ``must_include`` (``source:incident_id`` values) keeps only alerts involving one of those
    incidents -- what evaluation on arrival needs. ``tz`` is the zone of the local days that
    watch and series alerts span.
    """
    if not rule.enabled or incidents.empty:
        return []
    at = utc(pd.Timestamp(now))
    sel = _select(rule, incidents, at)
    if sel.empty:
        return []
    start, end = at - pd.Timedelta(rule.window), at
    areas = _area(sel, rule.area_level)
    alerts: list[Alert] = []
    if rule.type == "watch":
        for (_, row), ids, area in zip(sel.iterrows(), _ids(sel), areas, strict=True):
            when = utc(pd.Timestamp(row["occurred_at"]))
            alerts.append(Alert(kind="watch", area_level=rule.area_level, area=str(area),
                                category=str(row["category"]), window_start=_local_day(when, tz),
                                window_end=_local_day(when, tz, 1), observed=1.0,
                                severity=rule.severity or "high", method="rule", rule=rule.name,
                                incident_ids=[ids], timezone=tz))
    elif rule.type == "threshold":
        for area, grp in sel.groupby(areas, sort=True):
            if len(grp) >= rule.min_count:
                alerts.append(Alert(kind="threshold", area_level=rule.area_level, area=str(area),
                                    category=",".join(rule.categories), window_start=start, window_end=end,
                                    observed=float(len(grp)), severity=rule.severity or "medium",
                                    method="rule", rule=rule.name, incident_ids=_ids(grp),
                                    scores={"threshold": float(rule.min_count)}, timezone=tz))
    else:
        located = sel[sel["lat"].notna() | sel["x"].notna()]
        pts = _metres(located)
        for idx in find_series(pts, rule.min_count, rule.radius_m):
            grp = located.iloc[idx]
            grp_areas = _area(grp, rule.area_level)
            size = len(grp)
            sev: Severity = rule.severity or ("high" if size >= 2 * rule.min_count else "medium")
            times = pd.to_datetime(grp["occurred_at"], utc=True)
            alerts.append(Alert(
                kind="series", area_level=rule.area_level, area=str(grp_areas.mode().iloc[0]),
                category=",".join(sorted(grp["category"].unique())), window_start=_local_day(times.min(), tz),
                window_end=_local_day(times.max(), tz, 1), observed=float(size), severity=sev,
                method="rule", rule=rule.name, incident_ids=_ids(grp), timezone=tz,
                scores={"x": float(pts[idx, 0].mean()), "y": float(pts[idx, 1].mean()),
                        "radius_m": rule.radius_m, "days": float(rule.days),
                        "hours": rule.window.total_seconds() / 3600,
                        "span_m": float(np.ptp(pts[idx], axis=0).max())},
            ))
    if must_include:
        alerts = [a for a in alerts if must_include.intersection(a.incident_ids)]
    return alerts


def evaluate_rules(book: RuleBook, incidents: pd.DataFrame, now: Any, *,
                   must_include: set[str] | None = None, tz: str = "UTC") -> list[Alert]:
    """Alerts of every enabled rule of ``book``."""
    out: list[Alert] = []
    for rule in book.rules:
        out.extend(evaluate_rule(rule, incidents, now, must_include=must_include, tz=tz))
    return out
