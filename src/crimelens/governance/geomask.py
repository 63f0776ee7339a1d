"""Geomasking of incident points for public maps (SECURITY.md PRV-02): the donut and the checks.

All in the dataset's metric ``x``/``y`` (metres); WGS84 comes back through pyproj.

* :func:`donut_mask` — adaptive donut masking (Hampton et al. 2010; Allshouse et al. 2010).
  Every location moves in a random direction by a distance drawn uniformly over the area of an
  annulus. The inner radius is the distance to the ``k``-th nearest other reference location
  (never less than ``min_radius``), so the circle around the true point whose radius is the
  displacement always holds at least ``k`` other reference locations (Allshouse's spatial
  k-anonymity); the outer radius is the distance to the ``k_max``-th one, which bounds the
  distortion adaptively to density. A point is redrawn until at least ``k`` reference locations'
  annuli contain it (:func:`donut_candidates`), so an attacker who knows the reference layer
  and the parameters cannot narrow it below ``k`` either. The draw is keyed by the seed *and the
  location*: all incidents at one address get the same masked point (no averaging attack within
  a release), and an address keeps its masked point across releases made with the same secret
  seed and reference layer.
* :func:`verify_mask` — measures a masked release against the true points: spatial k-anonymity
  of each point, the nearest-neighbour re-identification rank, displacement distribution,
  published points equal to an input point, and the smallest catchment.
* Snapping to anonymous points is :func:`crimelens.governance.anchors.snap_to_anchors`.

Reference points are counted as distinct *locations* (coordinates within :data:`SAME_LOCATION_M`
are one location) and a point's own location never counts towards its anonymity: ten incidents
at one address hide nobody. The seed acts as a key: publishing it together with this (open)
code lets anyone recompute each location's displacement, so keep it with the pseudonym key.
"""

from __future__ import annotations

import hashlib
import secrets
import struct
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree

from crimelens.exceptions import InputError
from crimelens.geo.crs import FloatArray, to_wgs84

IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Two points closer than this (metres) are the same location.
SAME_LOCATION_M = 0.01
#: The donut's outer radius is at least this factor times its inner radius.
MIN_SPREAD = 1.25
_MAX_REDRAWS = 64


@dataclass(frozen=True, slots=True)
class MaskedPoints:
    """The result of a geomask, one row per input point.

    Attributes
    ----------
    x, y : ndarray
        Masked coordinates in the input's metric CRS.
    lon, lat : ndarray or None
        Masked WGS84 coordinates (``None`` when no CRS was given).
    displacement : ndarray
        Distance in metres between each true and masked point.
    protected : ndarray of bool
        The point meets the method's guarantee within its distance limits; a release drops the
        others.
    method : str
        ``"donut"`` or ``"snap"``.
    params : dict
        The parameters that produced the mask (without the seed).
    anchor : ndarray or None
        Snap only: index of each point's anchor in :attr:`anchors`.
    anchors : DataFrame or None
        Snap only: ``x``, ``y``, ``cell_size`` and ``catchment`` (reference locations covered).
    crs : str or None
        The metric CRS of ``x``/``y``.
    """

    x: FloatArray
    y: FloatArray
    lon: FloatArray | None
    lat: FloatArray | None
    displacement: FloatArray
    protected: BoolArray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    anchor: IntArray | None = None
    anchors: pd.DataFrame | None = None
    crs: str | None = None

    def to_frame(self) -> pd.DataFrame:
        """Masked points as a frame (``x``, ``y``, ``lon``, ``lat``, ``displacement``, ``protected``)."""
        out = pd.DataFrame({"x": self.x, "y": self.y})
        if self.lon is not None and self.lat is not None:
            out["lon"], out["lat"] = self.lon, self.lat
        out["displacement"] = self.displacement
        out["protected"] = self.protected
        if self.anchor is not None:
            out["anchor"] = self.anchor
        return out


def as_points(x: FloatArray, y: FloatArray, what: str = "points") -> npt.NDArray[np.float64]:
    """``x``/``y`` as an ``n × 2`` array; :class:`InputError` unless every value is finite."""
    pts = np.column_stack([np.asarray(x, float).ravel(), np.asarray(y, float).ravel()])
    if len(pts) and not np.isfinite(pts).all():
        raise InputError(f"{what} must have finite x/y (drop unlocated incidents first)")
    return pts


def unique_locations(pts: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float64], IntArray]:
    """Distinct locations of ``pts`` (``n × 2``, metres) and the index of each point's location.

    Coordinates are rounded to :data:`SAME_LOCATION_M`; each location keeps the coordinates of
    its first point.
    """
    if len(pts) == 0:
        return pts.reshape(0, 2), np.zeros(0, dtype=np.int64)
    keys = np.round(pts / SAME_LOCATION_M).astype(np.int64)
    _, first, inverse = np.unique(keys, axis=0, return_index=True, return_inverse=True)
    return pts[first], np.asarray(inverse, dtype=np.int64).ravel()


def reference_locations(pts: npt.NDArray[np.float64], reference: npt.ArrayLike | None) -> npt.NDArray[np.float64]:
    """Distinct reference locations: ``reference`` (``n × 2``) or, when absent, those of ``pts``."""
    if reference is None:
        return unique_locations(pts)[0]
    ref = np.asarray(reference, dtype=float)
    if ref.ndim != 2 or ref.shape[1] != 2:
        raise InputError("reference points must be an (n, 2) array of x/y metres")
    return unique_locations(as_points(ref[:, 0], ref[:, 1], "reference points"))[0]


def kth_other_distance(tree: cKDTree, locs: npt.NDArray[np.float64], k: int) -> FloatArray:
    """Distance from each location to its ``k``-th nearest *other* reference location.

    A reference location within :data:`SAME_LOCATION_M` of the point is the point itself and is
    skipped; ``k = 0`` gives zeros.
    """
    if k <= 0 or len(locs) == 0:
        return np.zeros(len(locs))
    if tree.n < k + 1:
        raise InputError(f"k = {k} needs more than {k} distinct reference locations; there are {tree.n}")
    d, _ = tree.query(locs, k=k + 1)
    d = np.asarray(d, float).reshape(len(locs), k + 1)
    return np.where(d[:, 0] <= SAME_LOCATION_M, d[:, k], d[:, k - 1])


def _uniforms(locs: npt.NDArray[np.float64], seed: int, attempt: IntArray) -> npt.NDArray[np.float64]:
    """Two uniforms in [0, 1) per location, keyed by ``seed`` and the location itself."""
    key = hashlib.blake2b(str(seed).encode(), digest_size=32).digest()
    keys = np.round(locs / SAME_LOCATION_M).astype(np.int64)
    out = np.empty((len(locs), 2))
    for i, (kx, ky) in enumerate(keys.tolist()):
        h = hashlib.blake2b(struct.pack("<qqq", kx, ky, int(attempt[i])), key=key, digest_size=16).digest()
        a, b = struct.unpack("<QQ", h)
        out[i] = ((a >> 11) * 2.0**-53, (b >> 11) * 2.0**-53)
    return out


def wgs84_or_none(x: FloatArray, y: FloatArray, crs: str | None) -> tuple[FloatArray | None, FloatArray | None]:
    """WGS84 ``(lon, lat)`` of metric points, or ``(None, None)`` without a CRS."""
    if crs is None:
        return None, None
    return to_wgs84(x, y, crs)


def donut_radii(locs: npt.NDArray[np.float64], tree: cKDTree | None, *, k: int, k_max: int | None,
                min_radius: float, max_radius: float | None) -> tuple[FloatArray, FloatArray]:
    """Inner and outer donut radii of each location (see :func:`donut_mask` for the parameters)."""
    n = len(locs)
    if tree is None or n == 0:
        inner = np.full(n, float(min_radius))
        outer = inner.copy()
    else:
        kmax = min(2 * k if k_max is None else k_max, tree.n - 1)
        inner = np.maximum(float(min_radius), kth_other_distance(tree, locs, k) + SAME_LOCATION_M)
        outer = np.maximum(kth_other_distance(tree, locs, kmax) if kmax > 0 else 0.0, MIN_SPREAD * inner)
    if k == 0 and max_radius is not None:  # a plain donut between the two radii
        outer = np.full(n, float(max_radius))
    if max_radius is not None:
        outer = np.minimum(outer, float(max_radius))
    return inner, outer


def donut_mask(
    x: FloatArray,
    y: FloatArray,
    *,
    k: int = 10,
    k_max: int | None = None,
    min_radius: float = 0.0,
    max_radius: float | None = None,
    reference: npt.ArrayLike | None = None,
    seed: int | None = None,
    crs: str | None = None,
    min_candidates: int | None = None,
) -> MaskedPoints:
    """Adaptive donut geomask: displace every location so that ≥ ``k`` others lie closer.

    Parameters
    ----------
    x, y : array_like
        True coordinates in metres (finite).
    k : int
        Minimum spatial k-anonymity: other distinct reference locations inside the circle
        centred on the true point with the displacement as radius. ``0`` gives a plain donut
        between ``min_radius`` and ``max_radius``.
    k_max : int, optional
        The outer radius is the distance to the ``k_max``-th other reference location (default
        ``2 k``), and at least :data:`MIN_SPREAD` times the inner radius (``max_radius`` when
        ``k = 0``).
    min_radius, max_radius : float
        Bounds on the displacement in metres. A location whose inner radius exceeds
        ``max_radius`` cannot be protected within it and is flagged ``protected = False``.
    reference : array_like, optional
        ``(n, 2)`` reference locations (e.g. address points) to count; default the distinct
        input locations.
    seed : int, optional
        Key of the random displacement; the same seed and inputs give the same output. Keep it
        secret. Default: a fresh random seed (not reproducible).
    crs : str, optional
        The metric CRS of ``x``/``y``; when given, WGS84 ``lon``/``lat`` are returned too.
    min_candidates : int, optional
        Redraw a point until at least this many reference locations' donuts contain it
        (:func:`donut_candidates`; default ``k``, ``0`` to skip). Points still short after
        the redraws are flagged ``protected = False``.

    Returns
    -------
    MaskedPoints
        Masked points in input order.
    """
    if k < 0 or (k_max is not None and k_max < k):
        raise InputError("donut mask needs 0 <= k <= k_max")
    if min_radius < 0 or (max_radius is not None and max_radius < min_radius):
        raise InputError("donut mask needs 0 <= min_radius <= max_radius")
    if k == 0 and min_radius == 0 and max_radius is None:
        raise InputError("donut mask needs k > 0 or a min_radius/max_radius")
    pts = as_points(x, y)
    locs, inverse = unique_locations(pts)
    ref = reference_locations(pts, reference)
    tree = cKDTree(ref) if len(ref) else None
    key = secrets.randbits(128) if seed is None else int(seed)
    n = len(locs)
    inner, outer = donut_radii(locs, tree, k=k, k_max=k_max, min_radius=min_radius, max_radius=max_radius)
    protected = inner <= outer
    outer = np.maximum(outer, inner)
    need = k if min_candidates is None else min_candidates
    annuli = AnnulusIndex(ref, *donut_radii(ref, tree, k=k, k_max=k_max, min_radius=min_radius,
                                            max_radius=max_radius)) if need > 0 and n else None
    # redraw (keyed by the attempt) points that land on an input or reference location, or whose
    # published point fewer than `need` reference locations' donuts could have produced
    taken = cKDTree(np.vstack([locs, ref])) if n else None
    attempt = np.zeros(n, dtype=np.int64)
    masked = locs.copy()
    todo = np.arange(n)
    for _ in range(_MAX_REDRAWS):
        if todo.size == 0 or taken is None:
            break
        u = _uniforms(locs[todo], key, attempt[todo])
        theta = 2 * np.pi * u[:, 0]
        r = np.sqrt(inner[todo] ** 2 + u[:, 1] * (outer[todo] ** 2 - inner[todo] ** 2))
        masked[todo] = locs[todo] + np.column_stack([r * np.cos(theta), r * np.sin(theta)])
        bad = np.asarray(taken.query(masked[todo])[0]) <= SAME_LOCATION_M
        if annuli is not None:
            bad |= annuli.count(masked[todo]) < need
        todo = todo[bad]
        attempt[todo] += 1
    protected[todo] = False
    mx, my = masked[inverse, 0], masked[inverse, 1]
    lon, lat = wgs84_or_none(mx, my, crs)
    params = {"k": k, "k_max": None if k == 0 and k_max is None else (2 * k if k_max is None else k_max),
              "min_radius_m": min_radius, "max_radius_m": max_radius,
              "reference": "incident locations" if reference is None else "reference layer",
              "reference_locations": len(ref), "keyed_per_location": True}
    return MaskedPoints(
        x=mx, y=my, lon=lon, lat=lat, displacement=np.hypot(mx - pts[:, 0], my - pts[:, 1]),
        protected=protected[inverse], method="donut", params=params, crs=crs,
    )


@dataclass(frozen=True, slots=True)
class MaskVerification:
    """How well a masked release protects its points (see :func:`verify_mask`).

    Attributes
    ----------
    k_anonymity : ndarray of int
        Allshouse et al.'s spatial k-anonymity of each point: distinct reference locations other
        than the point's own that are closer to the true location than the masked point is.
    nn_rank : ndarray of int
        Reference locations closer to the *masked* point than the true location is: the true
        location's rank for an attacker who guesses the nearest address (0 = re-identified).
    displacement : ndarray
        Metres between each true and masked point.
    equal_input : int
        Published points within :data:`SAME_LOCATION_M` of an input or reference location.
    catchment : ndarray of int
        For each distinct published point, the distinct true locations published there.
    k : int or None
        The target the summary checks against.
    """

    k_anonymity: IntArray
    nn_rank: IntArray
    displacement: FloatArray
    equal_input: int
    catchment: IntArray
    k: int | None = None

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: k-anonymity, re-identification, displacement, catchment."""
        n = len(self.displacement)
        q = np.quantile(self.displacement, [0.0, 0.25, 0.5, 0.75, 0.95, 1.0]) if n else np.zeros(6)
        out: dict[str, Any] = {
            "points": n,
            "min_k_anonymity": int(self.k_anonymity.min()) if n else None,
            "median_k_anonymity": float(np.median(self.k_anonymity)) if n else None,
            "nearest_reference_is_true_share": float(np.mean(self.nn_rank == 0)) if n else 0.0,
            "displacement_m": dict(zip(("min", "p25", "median", "p75", "p95", "max"),
                                       (round(float(v), 1) for v in q), strict=True)),
            "published_equal_to_input": self.equal_input,
            "min_catchment": int(self.catchment.min()) if len(self.catchment) else None,
        }
        if self.k is not None:
            out["k"] = self.k
            out["share_below_k"] = float(np.mean(self.k_anonymity < self.k)) if n else 0.0
        return out


def verify_mask(
    x: FloatArray,
    y: FloatArray,
    masked_x: FloatArray,
    masked_y: FloatArray,
    *,
    reference: npt.ArrayLike | None = None,
    k: int | None = None,
) -> MaskVerification:
    """Measure a masked release against the true points it came from.

    Parameters
    ----------
    x, y : array_like
        True coordinates in metres.
    masked_x, masked_y : array_like
        Published coordinates in the same CRS, in the same order.
    reference : array_like, optional
        ``(n, 2)`` reference locations; default the distinct true locations.
    k : int, optional
        Target k-anonymity, reported as ``share_below_k``.

    Returns
    -------
    MaskVerification
        Per-point k-anonymity and nearest-neighbour rank, displacements, the number of published
        points equal to an input location, and catchments of published points.
    """
    pts, pub = as_points(x, y), as_points(masked_x, masked_y, "masked points")
    if pts.shape != pub.shape:
        raise InputError("true and masked points differ in number")
    ref = reference_locations(pts, reference)
    disp = np.hypot(pub[:, 0] - pts[:, 0], pub[:, 1] - pts[:, 1])
    if len(pts) == 0:
        empty = np.zeros(0, dtype=np.int64)
        return MaskVerification(empty, empty, disp, 0, empty, k)
    tree = cKDTree(ref)
    within = np.asarray(tree.query_ball_point(pts, r=disp, return_length=True), dtype=np.int64)
    itself = np.asarray(tree.query_ball_point(pts, r=SAME_LOCATION_M, return_length=True), dtype=np.int64)
    k_anon = np.maximum(within - itself, 0)
    closer = np.maximum(disp - SAME_LOCATION_M, 0.0)
    nn_rank = np.asarray(tree.query_ball_point(pub, r=closer, return_length=True), dtype=np.int64)
    nn_rank[disp <= SAME_LOCATION_M] = 0
    taken = cKDTree(np.vstack([pts, ref]))
    equal = int((np.asarray(taken.query(pub)[0]) <= SAME_LOCATION_M).sum())
    true_loc = unique_locations(pts)[1]
    pub_loc = unique_locations(pub)[1]
    pairs = np.unique(np.column_stack([pub_loc, true_loc]), axis=0)
    catchment = np.bincount(pairs[:, 0]).astype(np.int64)
    return MaskVerification(k_anon, nn_rank, disp, equal, catchment[catchment > 0], k)


class AnnulusIndex:
    """Reference locations with their donuts, to count the donuts that contain given points.

    References are bucketed by outer radius, one k-d tree each, so a few far-reaching donuts
    (isolated addresses) do not widen every query.
    """

    def __init__(self, ref: npt.NDArray[np.float64], inner: FloatArray, outer: FloatArray) -> None:
        self.ref, self.inner, self.outer = ref, inner, np.maximum(outer, inner)
        self.buckets: list[tuple[float, IntArray, cKDTree]] = []
        lower = -np.inf
        for edge in np.unique(np.quantile(self.outer, [0.5, 0.8, 0.95, 0.99, 1.0])) if len(ref) else []:
            sel = np.flatnonzero((self.outer > lower) & (self.outer <= edge))
            lower = edge
            if sel.size:
                self.buckets.append((float(edge), sel, cKDTree(ref[sel])))

    def count(self, pub: npt.NDArray[np.float64]) -> IntArray:
        """For each point of ``pub``, the reference locations whose annulus holds it."""
        out = np.zeros(len(pub), dtype=np.int64)
        for edge, sel, tree in self.buckets if len(pub) else []:
            near = tree.query_ball_point(pub, r=edge + 1e-6, return_sorted=False)
            lengths = np.fromiter((len(a) for a in near), dtype=np.int64, count=len(pub))
            if lengths.sum() == 0:
                continue
            which = np.repeat(np.arange(len(pub)), lengths)
            idx = sel[np.concatenate([np.asarray(a, dtype=np.int64) for a in near if len(a)])]
            d = np.hypot(self.ref[idx, 0] - pub[which, 0], self.ref[idx, 1] - pub[which, 1])
            hit = (d >= self.inner[idx] - 1e-6) & (d <= self.outer[idx] + 1e-6)
            out += np.bincount(which[hit], minlength=len(pub))
        return out


def donut_candidates(
    masked_x: FloatArray,
    masked_y: FloatArray,
    reference: npt.ArrayLike,
    *,
    k: int = 10,
    k_max: int | None = None,
    min_radius: float = 0.0,
    max_radius: float | None = None,
) -> IntArray:
    """Reference locations whose donut could have produced each masked point.

    An attacker who holds the reference layer (a public address list) and the mask's parameters,
    but not the seed, can rule out every address whose annulus does not contain the published
    point. This counts the addresses left, the attacker's real anonymity set for that point;
    only meaningful when the mask used the same ``reference``.

    Parameters
    ----------
    masked_x, masked_y : array_like
        Published coordinates in metres.
    reference : array_like
        ``(n, 2)`` reference locations the mask used.
    k, k_max, min_radius, max_radius
        The mask's parameters.

    Returns
    -------
    ndarray of int
        Consistent reference locations per published point (the true one included).
    """
    pub = as_points(masked_x, masked_y, "masked points")
    ref = reference_locations(pub, reference)
    tree = cKDTree(ref)
    inner, outer = donut_radii(ref, tree, k=k, k_max=k_max, min_radius=min_radius, max_radius=max_radius)
    return AnnulusIndex(ref, inner, outer).count(pub)
