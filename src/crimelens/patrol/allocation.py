"""Where to send a limited number of patrol units: maximal covering on a risk surface.

A forecast ranks cells; a commander has ``units`` patrols, each able to cover the cells within
``radius_m`` of the spot it is sent to. Choosing the spots that cover the most expected crime is
the maximal covering location problem (Church & ReVelle 1974)::

    maximise   Σ_i w_i · y_i                    (w_i: expected incidents in cell i)
    subject to y_i ≤ Σ_{j ∈ N(i)} x_j            (a cell counts once, if some chosen site reaches it)
               Σ_j x_j = units                   (x_j = 1: a unit is sent to cell j)
               Σ_{j ∈ area a} x_j ≥ min_a        (optional: at least min_a units in every area)
               Σ_{j ∈ area a} x_j ≤ max_a        (optional: at most max_a units in area a, e.g. a fairness cap)
               x_j + x_k ≤ 1 when |j − k| < d    (optional: sites at least d metres apart)
               x binary, 0 ≤ y ≤ 1

solved exactly with HiGHS (``scipy.optimize.milp``) on the candidate sites that can matter (the
cells with the most expected crime within reach), or greedily (each step takes the site that adds
the most uncovered expected crime, within ``1 − 1/e`` of the optimum; Nemhauser et al. 1978) when
the problem is large or the solver runs out of time. The plan reports what it covers, so it can
be scored against what happened (:func:`score_plan`) like any forecast: hit rate and PAI.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp
from scipy.spatial import cKDTree

from crimelens.exceptions import InputError
from crimelens.forecast.surface import RiskSurface

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]
Method = Literal["auto", "milp", "greedy"]


@dataclass(frozen=True)
class PatrolPlan:
    """Patrol sites chosen on a risk surface and the cells they cover.

    Attributes
    ----------
    surface : RiskSurface
        The forecast the plan was made from.
    sites : ndarray of int
        Cell ids the units are sent to, in order of the expected crime each adds.
    covered : ndarray of int
        Study-area cells within ``radius_m`` of a site.
    radius_m : float
        Reach of one unit (0: its own cell only).
    expected_covered, expected_total : float
        Expected incidents in the covered cells and in the whole study area.
    method : str
        ``milp`` (optimal within ``gap``) or ``greedy``.
    gap : float
        Relative optimality gap reported by the solver (0 for a proven optimum; NaN for greedy).
    site_area : dict
        Area of each site, when areas were given.
    site_gain : ndarray of float
        Expected incidents each site adds to those before it (same order as ``sites``).
    """

    surface: RiskSurface
    sites: IntArray
    covered: IntArray
    radius_m: float
    expected_covered: float
    expected_total: float
    method: str
    gap: float
    site_area: dict[int, str] = field(default_factory=dict)
    site_gain: FloatArray = field(default_factory=lambda: np.zeros(0))

    @property
    def coverage_share(self) -> float:
        """Covered cells as a share of the study area's cells."""
        return len(self.covered) / max(1, len(self.surface.cells()))

    @property
    def expected_share(self) -> float:
        """Expected incidents covered as a share of the study area's total."""
        return self.expected_covered / self.expected_total if self.expected_total > 0 else 0.0

    def summary(self) -> dict[str, Any]:
        """JSON-friendly description of the plan."""
        return {
            "units": len(self.sites),
            "radius_m": self.radius_m,
            "method": self.method,
            "gap": None if not np.isfinite(self.gap) else round(float(self.gap), 6),
            "covered_cells": len(self.covered),
            "coverage_share": round(self.coverage_share, 6),
            "expected_covered": round(self.expected_covered, 3),
            "expected_total": round(self.expected_total, 3),
            "expected_share": round(self.expected_share, 6),
            "forecast": self.surface.metadata(),
        }

    def to_frame(self) -> pd.DataFrame:
        """One row per site: ``unit`` (1 = adds the most), ``cell_id``, centre x/y and lon/lat,
        ``expected_added`` (uncovered expected incidents it adds) and ``area`` when known."""
        from crimelens.geo.crs import to_wgs84

        x, y = self.surface.grid.centres(self.sites)
        lon, lat = to_wgs84(x, y, self.surface.grid.crs) if len(self.sites) else (x, y)
        frame = pd.DataFrame({"unit": np.arange(1, len(self.sites) + 1), "cell_id": self.sites,
                              "x": x, "y": y, "lon": lon, "lat": lat,
                              "expected_added": self.site_gain})
        if self.site_area:
            frame["area"] = [self.site_area.get(int(c)) for c in self.sites]
        return frame

    def to_geojson(self) -> dict[str, Any]:
        """Sites as WGS84 points and covered cells as polygons, in one FeatureCollection."""
        feats: list[dict[str, Any]] = []
        for row in self.to_frame().to_dict("records"):
            props = {"kind": "site", "unit": int(row["unit"]), "cell_id": int(row["cell_id"]),
                     "expected_added": round(float(row["expected_added"]), 4)}
            if self.site_area:
                props["area"] = row["area"]
            feats.append({"type": "Feature", "properties": props,
                          "geometry": {"type": "Point", "coordinates": [float(row["lon"]), float(row["lat"])]}})
        expected = self.surface.expected()
        rings = self.surface.grid.polygons_wgs84(self.covered)
        for cell, ring in zip(self.covered, rings, strict=True):
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                          "properties": {"kind": "covered", "cell_id": int(cell),
                                         "expected": round(float(expected[cell]), 4)}})
        return {"type": "FeatureCollection", "features": feats, "plan": self.summary()}


def allocate(
    surface: RiskSurface,
    units: int,
    *,
    radius_m: float = 0.0,
    min_separation_m: float = 0.0,
    areas: Mapping[int, str] | None = None,
    min_per_area: int = 0,
    max_per_area: Mapping[str, int] | None = None,
    method: Method = "auto",
    time_limit_s: float = 20.0,
    candidates: int | None = None,
) -> PatrolPlan:
    """Choose ``units`` patrol sites that cover the most expected crime.

    Parameters
    ----------
    surface : RiskSurface
        Forecast for the patrol window; :meth:`RiskSurface.expected` gives each cell's weight.
    units : int
        Number of patrol units (sites) to place.
    radius_m : float
        A unit covers the study-area cells whose centres lie within this distance of its cell's
        centre (0: only its own cell — the plan is then the top ``units`` cells).
    min_separation_m : float
        Sites must be at least this far apart (centre to centre); 0 allows neighbours.
    areas : mapping of cell id to area name, optional
        Area of each cell (beat, district...), for ``min_per_area``.
    min_per_area : int
        At least this many units in every area that appears in ``areas`` (needs
        ``units >= min_per_area × areas``).
    max_per_area : mapping of area name to int, optional
        At most this many units in each named area (cells of ``areas``; e.g. the fairness caps of
        :func:`crimelens.patrol.schedulers.group_caps`). Areas not named are not capped.
    method : {"auto", "milp", "greedy"}
        ``auto`` solves the integer programme and falls back to greedy when it has no
        solution within ``time_limit_s``.
    time_limit_s : float
        Solver time limit.
    candidates : int, optional
        Candidate sites considered by the solver (the cells with the most expected crime within
        reach); default ``max(50 × units, 400)``.

    Returns
    -------
    PatrolPlan
    """
    cells = surface.cells()
    if units < 1:
        raise InputError("units must be at least 1")
    if units > len(cells):
        raise InputError(f"{units} units but only {len(cells)} cells in the study area")
    if radius_m < 0 or min_separation_m < 0:
        raise InputError("radius and separation must not be negative")
    if method not in ("auto", "milp", "greedy"):
        raise InputError(f"unknown method {method!r}: use auto, milp or greedy")
    weight = surface.expected()[cells]
    x, y = surface.grid.centres(cells)
    tree = cKDTree(np.column_stack([x, y]))
    reach = _neighbours(tree, radius_m, len(cells))  # reach[j] = cells (positions) site j covers
    gain = np.asarray(reach @ weight, dtype=np.float64)  # expected crime a site reaches alone
    cell_area = _area_of(cells, areas)
    if min_per_area:
        needed = min_per_area * len(set(cell_area.values()))
        if needed > units:
            raise InputError(f"min_per_area={min_per_area} over {needed // min_per_area} areas needs "
                             f"{needed} units, got {units}")
    caps = _checked_caps(max_per_area, cell_area, len(cells), units, min_per_area)
    n_cand = candidates or max(50 * units, 400)
    cand = _candidates(gain, n_cand, cell_area, min_per_area, caps)
    chosen: IntArray | None = None
    gap = float("nan")
    used = "greedy"
    if method in ("auto", "milp"):
        solved = _solve_milp(reach, weight, cand, units, tree, min_separation_m, cell_area, min_per_area,
                             time_limit_s, caps)
        if solved is not None:
            chosen, gap = solved
            used = "milp"
        elif method == "milp":
            raise InputError("the solver found no feasible plan within the time limit; relax the "
                             "constraints, raise --time-limit or use --method greedy")
    if chosen is None:
        chosen = _greedy(reach, weight, units, tree, min_separation_m, cell_area, min_per_area, caps)
    covered_pos = np.flatnonzero(np.asarray(reach[chosen].sum(axis=0)).ravel() > 0)
    order, gains = _by_gain(reach, weight, chosen)
    sites = cells[order]
    site_area = {int(cells[j]): cell_area[j] for j in order if j in cell_area}
    return PatrolPlan(surface=surface, sites=sites, covered=cells[covered_pos], radius_m=radius_m,
                      expected_covered=float(weight[covered_pos].sum()), expected_total=float(weight.sum()),
                      method=used, gap=gap, site_area=site_area, site_gain=gains)


def score_plan(plan: PatrolPlan, x: FloatArray, y: FloatArray) -> dict[str, float]:
    """How the plan did against incidents that happened (metric ``x``/``y`` in the grid's CRS).

    Returns ``incidents`` (in the study area), ``captured`` (in covered cells), ``hit_rate``
    (captured / incidents) and ``pai`` (hit rate / covered share of the study area).
    """
    cell = plan.surface.grid.cell_of(np.asarray(x, float), np.asarray(y, float))
    in_area = np.isin(cell, plan.surface.cells())
    n = int(in_area.sum())
    caught = int(np.isin(cell[in_area], plan.covered).sum())
    hit = caught / n if n else float("nan")
    share = plan.coverage_share
    return {"incidents": n, "captured": caught, "hit_rate": hit,
            "pai": hit / share if n and share > 0 else float("nan")}


# -- internals -----------------------------------------------------------------------------------
def _neighbours(tree: cKDTree, radius: float, n: int) -> sparse.csr_matrix:
    """Sparse 0/1 matrix: row j marks the cells within ``radius`` of cell j (itself included)."""
    if radius <= 0:
        return sparse.identity(n, dtype=np.float64, format="csr")
    pairs = tree.query_pairs(radius + 1e-6, output_type="ndarray")
    rows = np.concatenate([np.arange(n), pairs[:, 0], pairs[:, 1]])
    cols = np.concatenate([np.arange(n), pairs[:, 1], pairs[:, 0]])
    return sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))


def _area_of(cells: IntArray, areas: Mapping[int, str] | None) -> dict[int, str]:
    """Position → area name for the cells that have one."""
    if not areas:
        return {}
    return {i: str(areas[int(c)]) for i, c in enumerate(cells) if int(c) in areas}


def _checked_caps(max_per_area: Mapping[str, int] | None, cell_area: dict[int, str], n_cells: int, units: int,
                  min_per_area: int) -> dict[str, int]:
    """The per-area maximums, refused when they cannot hold ``units`` units."""
    if not max_per_area:
        return {}
    caps = {str(a): int(k) for a, k in max_per_area.items()}
    if any(k < 0 for k in caps.values()):
        raise InputError("max_per_area must not be negative")
    if min_per_area and any(k < min_per_area for a, k in caps.items() if a in set(cell_area.values())):
        raise InputError("max_per_area is below min_per_area in some area")
    counts: dict[str, int] = {}
    for a in cell_area.values():
        counts[a] = counts.get(a, 0) + 1
    room = n_cells - len(cell_area) + sum(min(caps.get(a, n), n) for a, n in counts.items())
    if room < units:
        raise InputError(f"the per-area maximums allow {room} units, fewer than the {units} asked for")
    return caps


def _candidates(gain: FloatArray, n: int, cell_area: dict[int, str], min_per_area: int,
                caps: Mapping[str, int] | None = None) -> IntArray:
    """Positions of the ``n`` sites reaching the most expected crime, plus each area's best sites
    (enough of them for its minimum, or to fill its maximum, when areas are constrained)."""
    order = np.lexsort((np.arange(len(gain)), -gain))
    keep = set(order[:n].tolist())
    if (min_per_area or caps) and cell_area:
        by_area: dict[str, list[int]] = {}
        room = caps or {}
        for j in order:
            a = cell_area.get(int(j))
            if a is not None and len(by_area.setdefault(a, [])) < max(5, 3 * min_per_area, 3 * room.get(a, 0)):
                by_area[a].append(int(j))
        for js in by_area.values():
            keep.update(js)
    return np.array(sorted(keep), dtype=np.int64)


def _conflicts(tree: cKDTree, sep: float, cand: IntArray) -> npt.NDArray[np.int64]:
    """Pairs (positions in ``cand``) of candidate sites closer than ``sep``."""
    if sep <= 0 or len(cand) < 2:
        return np.empty((0, 2), dtype=np.int64)
    sub = cKDTree(tree.data[cand])
    return np.asarray(sub.query_pairs(sep - 1e-6, output_type="ndarray"), dtype=np.int64)


def _solve_milp(reach: sparse.csr_matrix, weight: FloatArray, cand: IntArray, units: int, tree: cKDTree,
                sep: float, cell_area: dict[int, str], min_per_area: int,
                time_limit: float, caps: Mapping[str, int] | None = None) -> tuple[IntArray, float] | None:
    """The MCLP on the candidate sites with HiGHS; None when no solution was found in time."""
    sub = reach[cand]  # candidate × cell
    reachable = np.flatnonzero(np.asarray(sub.sum(axis=0)).ravel() > 0)
    a = sub[:, reachable].T.tocsr()  # cell × candidate
    nc, ny = len(cand), len(reachable)
    # variables: x (nc, binary), y (ny, continuous in [0, 1]); milp minimises, so negate weights
    c = np.concatenate([np.zeros(nc), -weight[reachable]])
    blocks = [LinearConstraint(sparse.hstack([-a, sparse.identity(ny)]).tocsr(), -np.inf, 0.0),
              LinearConstraint(sparse.hstack([sparse.csr_matrix(np.ones((1, nc))),
                                              sparse.csr_matrix((1, ny))]).tocsr(), units, units)]
    pairs = _conflicts(tree, sep, cand)
    if len(pairs):
        m = sparse.csr_matrix((np.ones(2 * len(pairs)), (np.repeat(np.arange(len(pairs)), 2), pairs.ravel())),
                              shape=(len(pairs), nc))
        blocks.append(LinearConstraint(sparse.hstack([m, sparse.csr_matrix((len(pairs), ny))]).tocsr(),
                                       -np.inf, 1.0))
    if min_per_area and cell_area:
        names = sorted(set(cell_area.values()))
        rows, cols = [], []
        for k, j in enumerate(cand):
            area = cell_area.get(int(j))
            if area is not None:
                rows.append(names.index(area))
                cols.append(k)
        m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(names), nc))
        blocks.append(LinearConstraint(sparse.hstack([m, sparse.csr_matrix((len(names), ny))]).tocsr(),
                                       min_per_area, np.inf))
    if caps and cell_area:
        capped = sorted(caps)
        rows, cols = [], []
        for k, j in enumerate(cand):
            area = cell_area.get(int(j))
            if area in caps:
                rows.append(capped.index(str(area)))
                cols.append(k)
        m = sparse.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(capped), nc))
        blocks.append(LinearConstraint(sparse.hstack([m, sparse.csr_matrix((len(capped), ny))]).tocsr(),
                                       -np.inf, np.array([caps[a] for a in capped], dtype=np.float64)))
    integrality = np.concatenate([np.ones(nc), np.zeros(ny)])
    res = milp(c, constraints=blocks, integrality=integrality, bounds=Bounds(0, 1),
               options={"time_limit": time_limit, "disp": False, "mip_rel_gap": 1e-6})
    if res.x is None:
        return None
    xs = res.x[:nc]
    chosen = cand[np.flatnonzero(xs > 0.5)]
    if len(chosen) != units:
        return None
    gap = float(getattr(res, "mip_gap", 0.0) or 0.0)
    return chosen.astype(np.int64), gap


def _greedy(reach: sparse.csr_matrix, weight: FloatArray, units: int, tree: cKDTree, sep: float,
            cell_area: dict[int, str], min_per_area: int, caps: Mapping[str, int] | None = None) -> IntArray:
    """Greedy maximal covering: areas short of their minimum first, then the best marginal gain,
    never past an area's maximum."""
    n = reach.shape[0]
    uncovered = weight.copy()
    allowed = np.ones(n, dtype=bool)
    chosen: list[int] = []
    need = {a: min_per_area for a in set(cell_area.values())} if min_per_area else {}
    room = dict(caps or {})
    area_arr = np.array([cell_area.get(j, "") for j in range(n)], dtype=object) if need or room else None
    for _ in range(units):
        gains = np.asarray(reach @ uncovered, dtype=np.float64)
        mask = allowed.copy()
        short = [a for a, k in need.items() if k > 0]
        if short and area_arr is not None:
            mask &= np.isin(area_arr, short)
        full = [a for a, k in room.items() if k <= 0]
        if full and area_arr is not None:
            mask &= ~np.isin(area_arr, full)
        if not mask.any():
            raise InputError("no site satisfies the separation and area constraints; relax them")
        cand = np.flatnonzero(mask)
        j = int(cand[np.lexsort((cand, -gains[cand]))[0]])
        chosen.append(j)
        uncovered[reach[j].indices] = 0.0
        allowed[j] = False
        if sep > 0:
            allowed[tree.query_ball_point(tree.data[j], sep - 1e-6)] = False
        if area_arr is not None and area_arr[j] in need:
            need[str(area_arr[j])] -= 1
        if area_arr is not None and area_arr[j] in room:
            room[str(area_arr[j])] -= 1
    return np.array(chosen, dtype=np.int64)


def _by_gain(reach: sparse.csr_matrix, weight: FloatArray, chosen: IntArray) -> tuple[IntArray, FloatArray]:
    """``chosen`` reordered so each site adds the most not yet covered by the ones before it, with
    what each adds."""
    left = list(int(j) for j in chosen)
    uncovered = weight.copy()
    out: list[int] = []
    gains: list[float] = []
    while left:
        adds = [float(uncovered[reach[j].indices].sum()) for j in left]
        k = int(np.argmax(adds))
        j = left.pop(k)
        out.append(j)
        gains.append(adds[k])
        uncovered[reach[j].indices] = 0.0
    return np.array(out, dtype=np.int64), np.array(gains, dtype=np.float64)
