"""Snapping incident points to anonymous anchors for public maps (SECURITY.md PRV-02).

In the spirit of police.uk's anonymous map points and Kounadi & Leitner's adaptive areal
elimination (2016): reference locations (the distinct incident locations, or an address layer)
are grouped in nested square cells — ``cell_size``, twice that, four times ... A cell whose
not-yet-covered locations number at least ``k`` becomes an anchor at their centroid; every
incident moves to the anchor of the first (finest) anchored cell that contains it, and locations
no cell covers join the nearest anchor. Dense areas get fine anchors, sparse areas coarse ones,
and every anchor stands for at least ``k`` distinct locations. An anchor that would sit on an
input location is nudged off it. Check the result with
:func:`crimelens.governance.geomask.verify_mask` (``catchment``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial import cKDTree

from crimelens.exceptions import InputError
from crimelens.geo.crs import FloatArray
from crimelens.governance.geomask import (
    SAME_LOCATION_M,
    IntArray,
    MaskedPoints,
    as_points,
    reference_locations,
    unique_locations,
    wgs84_or_none,
)

_MAX_NUDGES = 16


def _cell_keys(pts: npt.NDArray[np.float64], size: float) -> IntArray:
    return np.floor(pts / size).astype(np.int64)


def _nudge(anchors: npt.NDArray[np.float64], sizes: FloatArray, taken: cKDTree) -> npt.NDArray[np.float64]:
    """Move anchors that sit on an input location by a small, growing offset until they do not."""
    out = anchors.copy()
    for step in range(1, _MAX_NUDGES + 1):
        d, _ = taken.query(out)
        bad = np.asarray(d) <= SAME_LOCATION_M
        if not bad.any():
            break
        angle = step * 2.399963  # golden angle: successive offsets point in new directions
        out[bad] += np.column_stack([np.cos(angle) * np.ones(bad.sum()), np.sin(angle) * np.ones(bad.sum())]) * (
            sizes[bad, None] * 0.02 * step
        )
    return out


def snap_to_anchors(
    x: FloatArray,
    y: FloatArray,
    *,
    k: int = 10,
    cell_size: float = 100.0,
    levels: int = 8,
    reference: npt.ArrayLike | None = None,
    max_distance: float | None = None,
    crs: str | None = None,
) -> MaskedPoints:
    """Snap points to anonymous anchors, each covering ≥ ``k`` distinct reference locations.

    Parameters
    ----------
    x, y : array_like
        True coordinates in metres (finite).
    k : int
        Minimum catchment of an anchor, in distinct reference locations.
    cell_size : float
        Side of the finest cells in metres; coarser levels double it (``levels`` times).
    levels : int
        Number of coarser levels tried before the last locations join the nearest anchor.
    reference : array_like, optional
        ``(n, 2)`` reference locations (e.g. address points); default the distinct input
        locations, so every anchor then stands for at least ``k`` incident locations.
    max_distance : float, optional
        Points snapped farther than this are flagged ``protected = False``.
    crs : str, optional
        The metric CRS of ``x``/``y``; when given, WGS84 ``lon``/``lat`` are returned too.

    Returns
    -------
    MaskedPoints
        With ``anchor`` (per point) and ``anchors`` (``x``, ``y``, ``cell_size``, ``catchment``).
    """
    if k < 1 or cell_size <= 0 or levels < 0:
        raise InputError("snapping needs k >= 1, cell_size > 0 and levels >= 0")
    pts = as_points(x, y)
    locs, inverse = unique_locations(pts)
    ref = reference_locations(pts, reference)
    if len(ref) < k:
        raise InputError(f"k = {k} needs at least {k} distinct reference locations; there are {len(ref)}")
    remaining = np.ones(len(ref), dtype=bool)
    ref_anchor = np.full(len(ref), -1, dtype=np.int64)
    cells: list[dict[tuple[int, int], int]] = []
    centres: list[npt.NDArray[np.float64]] = []
    sizes: list[float] = []
    for level in range(levels + 1):
        size = cell_size * 2.0**level
        keys = _cell_keys(ref, size)
        level_cells: dict[tuple[int, int], int] = {}
        idx = np.flatnonzero(remaining)
        if idx.size:
            uniq, inv, cnt = np.unique(keys[idx], axis=0, return_inverse=True, return_counts=True)
            order = np.argsort(np.asarray(inv).ravel(), kind="stable")
            starts = np.concatenate([[0], np.cumsum(cnt)])
            for g in np.flatnonzero(cnt >= k):
                members = idx[order[starts[g]:starts[g + 1]]]
                level_cells[(int(uniq[g, 0]), int(uniq[g, 1]))] = len(centres)
                ref_anchor[members] = len(centres)
                centres.append(ref[members].mean(axis=0))
                sizes.append(size)
                remaining[members] = False
        cells.append(level_cells)
    if not centres:
        raise InputError(f"no group of {k} reference locations within {cell_size * 2**levels:g} m cells")
    anchors = np.vstack(centres)
    size_arr = np.asarray(sizes)
    taken = cKDTree(np.vstack([locs, ref]))
    anchors = _nudge(anchors, size_arr, taken)
    # leftovers join the nearest anchor, growing its catchment
    if remaining.any():
        ref_anchor[remaining] = np.asarray(cKDTree(anchors).query(ref[remaining])[1], dtype=np.int64)
    catchment = np.bincount(ref_anchor, minlength=len(anchors))
    # incident locations: the first (finest) anchored cell containing them, else the nearest anchor
    loc_anchor = np.full(len(locs), -1, dtype=np.int64)
    for level, level_cells in enumerate(cells):
        todo = np.flatnonzero(loc_anchor < 0)
        if todo.size == 0 or not level_cells:
            continue
        keys = _cell_keys(locs[todo], cell_size * 2.0**level)
        loc_anchor[todo] = [level_cells.get((int(a), int(b)), -1) for a, b in keys.tolist()]
    left = loc_anchor < 0
    if left.any():
        loc_anchor[left] = np.asarray(cKDTree(anchors).query(locs[left])[1], dtype=np.int64)
    anchor = loc_anchor[inverse]
    mx, my = anchors[anchor, 0], anchors[anchor, 1]
    disp = np.hypot(mx - pts[:, 0], my - pts[:, 1])
    protected = np.ones(len(pts), dtype=bool) if max_distance is None else disp <= max_distance
    lon, lat = wgs84_or_none(mx, my, crs)
    table = pd.DataFrame({"x": anchors[:, 0], "y": anchors[:, 1], "cell_size": size_arr, "catchment": catchment})
    params = {"k": k, "cell_size_m": cell_size, "levels": levels, "max_distance_m": max_distance,
              "reference": "incident locations" if reference is None else "reference layer",
              "reference_locations": len(ref), "anchors": len(anchors)}
    return MaskedPoints(x=mx, y=my, lon=lon, lat=lat, displacement=disp, protected=protected, method="snap",
                        params=params, anchor=anchor, anchors=table, crs=crs)
