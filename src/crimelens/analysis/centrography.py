"""Centrography: mean centre, standard deviational ellipse and the Clark-Evans nearest-neighbour index.

**Mean centre and standard deviational ellipse** (Lefever 1926; Yuill 1971) summarise where a
category of crime sits and in which direction it spreads. The ellipse axes are the principal axes
of the weighted coordinate covariance; following ArcGIS's *Directional Distribution*, each semi-axis
is ``k × √2 × σ`` along its axis, so a one-standard-deviation ellipse holds about 63% of the points
of a bivariate normal distribution (two: 98%, three: 99.9%). ``rotation`` is measured clockwise
from north (ArcGIS's convention) in degrees ``[0, 180)``.

**Clark-Evans nearest-neighbour index** (Clark & Evans 1954) compares the mean distance from each
incident to its nearest neighbour, ``r̄_o``, with its expectation under complete spatial randomness
in an area ``A``, ``r̄_e = 0.5 / √(n / A)``: ``R = r̄_o / r̄_e`` is below one for clustering and
above one for dispersion. ``z = (r̄_o - r̄_e) / SE`` with ``SE = 0.26136 / √(n² / A)``. Because
points near the boundary have their neighbours cut off, the optional Donnelly (1978) correction
adjusts expectation and error for the perimeter ``P``. Block-level geocoding puts many incidents at
the same point (distance zero), which reads as strong clustering: interpret with the location
precision in mind.

References
----------
Clark, P. J. & Evans, F. C. (1954). Distance to nearest neighbor as a measure of spatial
relationships in populations. *Ecology* 35(4), 445-453.
Donnelly, K. P. (1978). Simulations to determine the variance and edge effect of total nearest
neighbour distance. In Hodder (ed.), *Simulation Methods in Archaeology*, 91-95.
Yuill, R. S. (1971). The standard deviational ellipse: an updated tool for spatial description.
*Geografiska Annaler B* 53(1), 28-39.
Wang, B., Shi, W. & Miao, Z. (2015). Confidence analysis of standard deviational ellipse and its
extension into higher dimensional Euclidean space. *PLoS ONE* 10(3), e0118537.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import ConvexHull, QhullError, cKDTree

from crimelens.exceptions import InputError
from crimelens.geo.crs import to_wgs84
from crimelens.geo.weights import FloatArray


@dataclass(frozen=True)
class NearestNeighbourIndex:
    """Clark-Evans test result: ``R`` < 1 clustered, > 1 dispersed."""

    n: int
    area_m2: float
    observed_mean_m: float
    expected_mean_m: float
    R: float
    z: float
    p: float
    area_rule: str
    edge_correction: bool

    @property
    def pattern(self) -> str:
        """``clustered``, ``dispersed`` or ``random`` at the 5% level."""
        if self.p > 0.05:
            return "random"
        return "clustered" if self.R < 1 else "dispersed"


def clark_evans(
    x: FloatArray,
    y: FloatArray,
    *,
    area: float | Literal["hull", "bbox"] = "hull",
    edge_correction: bool = False,
) -> NearestNeighbourIndex:
    """The Clark-Evans nearest-neighbour index with a two-sided normal test.

    Parameters
    ----------
    x, y : array
        Incident coordinates in metres.
    area : float or {"hull", "bbox"}
        Study area in m², or the convex hull / bounding box of the points.
    edge_correction : bool
        Apply Donnelly's (1978) perimeter correction (needs the area's perimeter: hull or bbox).
    """
    pts = np.column_stack([np.asarray(x, float), np.asarray(y, float)])
    pts = pts[np.isfinite(pts).all(axis=1)]
    n = len(pts)
    if n < 3:
        raise InputError("the nearest-neighbour index needs at least three incidents")
    perimeter = float("nan")
    if isinstance(area, int | float):
        a, rule = float(area), "given"
    elif area == "bbox":
        w, h = np.ptp(pts[:, 0]), np.ptp(pts[:, 1])
        a, perimeter, rule = float(w * h), float(2 * (w + h)), "bounding box"
    elif area == "hull":
        try:
            hull = ConvexHull(pts)
        except QhullError as exc:
            raise InputError("the incidents are collinear: give the study area in m²") from exc
        a, perimeter, rule = float(hull.volume), float(hull.area), "convex hull"
    else:
        raise InputError("area must be square metres, 'hull' or 'bbox'")
    if a <= 0:
        raise InputError("the study area must be positive")
    d, _ = cKDTree(pts).query(pts, k=2)
    ro = float(d[:, 1].mean())
    if edge_correction:
        if not np.isfinite(perimeter):
            raise InputError("the edge correction needs area='hull' or 'bbox'")
        re = 0.5 * np.sqrt(a / n) + (0.0514 + 0.041 / np.sqrt(n)) * perimeter / n
        se = np.sqrt(0.0703 * a / n**2 + 0.037 * perimeter * np.sqrt(a / n**5))
    else:
        re = 0.5 / np.sqrt(n / a)
        se = 0.26136 / np.sqrt(n * n / a)
    z = (ro - re) / se
    return NearestNeighbourIndex(
        n, a, ro, float(re), ro / float(re), float(z), float(2 * stats.norm.sf(abs(z))), rule, edge_correction
    )


@dataclass(frozen=True)
class Ellipse:
    """A mean centre and standard deviational ellipse (metres, rotation clockwise from north)."""

    n: float
    x: float
    y: float
    sigma_major: float
    sigma_minor: float
    rotation_deg: float
    standard_distance: float
    n_std: float = 1.0

    def outline(self, points: int = 64) -> FloatArray:
        """``(points + 1, 2)`` closed ring of the ellipse in metres."""
        t = np.linspace(0, 2 * np.pi, points + 1)
        a = self.n_std * np.sqrt(2.0) * self.sigma_major
        b = self.n_std * np.sqrt(2.0) * self.sigma_minor
        theta = np.deg2rad(self.rotation_deg)  # clockwise from north = direction of the major axis
        ux, uy = np.sin(theta), np.cos(theta)  # major-axis unit vector
        vx, vy = np.cos(theta), -np.sin(theta)
        px = self.x + a * np.cos(t) * ux + b * np.sin(t) * vx
        py = self.y + a * np.cos(t) * uy + b * np.sin(t) * vy
        return np.column_stack([px, py])


def standard_ellipse(x: FloatArray, y: FloatArray, weights: FloatArray | None = None, *, n_std: float = 1.0) -> Ellipse:
    """Weighted mean centre and standard deviational ellipse of points (Yuill 1971)."""
    xs, ys = np.asarray(x, float), np.asarray(y, float)
    w = np.ones(xs.size) if weights is None else np.asarray(weights, float)
    if xs.size == 0 or w.sum() <= 0:
        raise InputError("an ellipse needs at least one incident")
    mx, my = float(np.average(xs, weights=w)), float(np.average(ys, weights=w))
    dx, dy = xs - mx, ys - my
    cov = np.array(
        [
            [np.average(dx * dx, weights=w), np.average(dx * dy, weights=w)],
            [np.average(dx * dy, weights=w), np.average(dy * dy, weights=w)],
        ]
    )
    vals, vecs = np.linalg.eigh(cov)
    major = vecs[:, 1]
    rotation = float(np.degrees(np.arctan2(major[0], major[1])) % 180.0)
    sd = float(np.sqrt(max(vals.sum(), 0.0)))
    return Ellipse(
        float(w.sum()),
        mx,
        my,
        float(np.sqrt(max(vals[1], 0.0))),
        float(np.sqrt(max(vals[0], 0.0))),
        rotation,
        sd,
        n_std,
    )


@dataclass(frozen=True)
class DirectionalDistribution:
    """Mean centre and standard deviational ellipse per group (e.g. per category)."""

    ellipses: dict[str, Ellipse]
    crs: str
    parameters: dict[str, Any] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        """One row per group: centre (metres and lon/lat), axes (metres), rotation, standard distance."""
        rows = []
        for key, e in self.ellipses.items():
            lon, lat = to_wgs84(np.array([e.x]), np.array([e.y]), self.crs)
            rows.append(
                {
                    "group": key,
                    "n": e.n,
                    "x": e.x,
                    "y": e.y,
                    "longitude": float(lon[0]),
                    "latitude": float(lat[0]),
                    "semi_major_m": e.n_std * np.sqrt(2) * e.sigma_major,
                    "semi_minor_m": e.n_std * np.sqrt(2) * e.sigma_minor,
                    "rotation_deg": e.rotation_deg,
                    "standard_distance_m": e.standard_distance,
                }
            )
        return pd.DataFrame(rows)

    def summary(self) -> dict[str, Any]:
        """The table as records with the parameters."""
        return {
            "method": "directional_distribution",
            "groups": self.to_frame().to_dict("records"),
            "parameters": self.parameters,
        }

    def to_geojson(self) -> dict[str, Any]:
        """Ellipses as WGS84 polygons with their attributes."""
        feats = []
        for rec, e in zip(self.to_frame().to_dict("records"), self.ellipses.values(), strict=True):
            ring = e.outline()
            lon, lat = to_wgs84(ring[:, 0], ring[:, 1], self.crs)
            coords = [[float(a), float(b)] for a, b in zip(lon, lat, strict=True)]
            feats.append(
                {
                    "type": "Feature",
                    "geometry": {"type": "Polygon", "coordinates": [coords]},
                    "properties": {k: (float(v) if isinstance(v, np.floating) else v) for k, v in rec.items()},
                }
            )
        return {"type": "FeatureCollection", "features": feats, "parameters": self.parameters}


def directional_distribution(
    frame: pd.DataFrame,
    *,
    by: str | None = "category",
    n_std: float = 1.0,
    crs: str | None = None,
) -> DirectionalDistribution:
    """Mean centre and ellipse of located incidents (``x``, ``y``, optional ``count``) per ``by`` group."""
    if not {"x", "y"} <= set(frame.columns):
        raise InputError("directional distribution needs x/y coordinates in metres")
    f = frame[frame["x"].notna() & frame["y"].notna()]
    the_crs = crs or (str(f["crs"].dropna().iloc[0]) if "crs" in f and f["crs"].notna().any() else None)
    if the_crs is None:
        raise InputError("the CRS of x/y is unknown: pass crs=")
    groups = f.groupby(by, sort=True) if by else [("all", f)]
    out: dict[str, Ellipse] = {}
    for key, g in groups:
        w = g["count"].to_numpy(float) if "count" in g else None
        out[str(key if not isinstance(key, tuple) else key[0])] = standard_ellipse(
            g["x"].to_numpy(float), g["y"].to_numpy(float), w, n_std=n_std
        )
    return DirectionalDistribution(
        out, the_crs, {"n_std": n_std, "by": by or "all", "axes": "sqrt(2) x standard deviation (ArcGIS)"}
    )
