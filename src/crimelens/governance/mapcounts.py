"""Grid counts for public maps with no small cells (SECURITY.md PRV-03).

A map of counts per square cell is a one-way table whose total is usually shown too. Two ways to
publish it without small counts:

* ``"suppress"`` — cells of ``cell_size`` metres; cells with ``0 < count < k`` are hidden and
  complementary suppression keeps them from being derived from the total
  (:func:`~crimelens.governance.suppression.suppress_counts`).
* ``"merge"`` — an adaptive quadtree: start from cells ``2**levels`` times the finest size and
  split a cell into its four quarters only while every quarter holds either no incident or at
  least ``k``. Dense areas keep fine cells, sparse ones coarse cells, and nothing is hidden
  except coarsest cells that are still small, which are suppressed as above.

Cells without incidents are not listed (their count, zero, is not sensitive). Cell ids are the
lower-left corner and size in the dataset's metric CRS.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.geo.crs import to_wgs84
from crimelens.governance.suppression import TOTAL, SuppressedTable, suppress_counts

GridMethod = Literal["suppress", "merge"]


@dataclass(frozen=True, slots=True)
class GridCounts:
    """Protected grid counts.

    Attributes
    ----------
    cells : DataFrame
        ``x0``, ``y0`` (lower-left corner, metres), ``size`` (metres), ``count`` (``<NA>`` when
        hidden) and ``suppressed``, one row per published cell with incidents.
    total : int or None
        The published total (``None`` when it is hidden or not published).
    table : SuppressedTable
        The suppression audit behind it.
    crs : str
        The metric CRS of the cells.
    """

    cells: pd.DataFrame
    total: int | None
    table: SuppressedTable
    crs: str

    def polygons_wgs84(self) -> list[list[list[float]]]:
        """Each cell's outline as a closed WGS84 ring ``[[lon, lat], ...]``."""
        c = self.cells
        x0, y0, s = c["x0"].to_numpy(float), c["y0"].to_numpy(float), c["size"].to_numpy(float)
        xs = np.stack([x0, x0 + s, x0 + s, x0, x0], axis=1)
        ys = np.stack([y0, y0, y0 + s, y0 + s, y0], axis=1)
        lon, lat = to_wgs84(xs.ravel(), ys.ravel(), self.crs)
        lon, lat = lon.reshape(xs.shape), lat.reshape(ys.shape)
        return [[[round(float(a), 7), round(float(b), 7)] for a, b in zip(lo, la, strict=True)]
                for lo, la in zip(lon, lat, strict=True)]

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures: cells by size, suppression counts."""
        sizes = self.cells["size"].value_counts().sort_index()
        return {**self.table.summary(), "published_cells": len(self.cells),
                "cells_by_size_m": {f"{s:g}": int(n) for s, n in sizes.items()}}


def _split(key: tuple[int, int], level: int, counts: list[dict[tuple[int, int], int]], k: int,
           out: list[tuple[int, int, int, int]]) -> None:
    """Publish the cell ``key`` at ``level``, or its quarters when each has 0 or ≥ k incidents."""
    n = counts[level].get(key, 0)
    if n == 0:
        return
    if level > 0:
        quarters = [(2 * key[0] + dx, 2 * key[1] + dy) for dx in (0, 1) for dy in (0, 1)]
        sizes = [counts[level - 1].get(q, 0) for q in quarters]
        if all(s == 0 or s >= k for s in sizes):
            for q in quarters:
                _split(q, level - 1, counts, k, out)
            return
    out.append((key[0], key[1], level, n))


def protect_grid(cells: pd.DataFrame, *, cell_size: float, crs: str, k: int = 10, levels: int = 3,
                 method: GridMethod = "merge", total: bool = True) -> GridCounts:
    """Protect per-cell counts for a public map.

    Parameters
    ----------
    cells : DataFrame
        ``cell_x``, ``cell_y`` (integer indices ``floor(x / cell_size)``, as
        ``Store.counts(["cell:<size>"])`` returns them) and ``count``.
    cell_size : float
        Side of the finest cells in metres.
    crs : str
        The metric CRS of the cell indices.
    k : int
        Threshold: no published cell holds ``0 < count < k``.
    levels : int
        ``"merge"``: coarsest cells are ``2**levels`` times ``cell_size``.
    method : {"merge", "suppress"}
        Merge small cells into coarser ones, or suppress them.
    total : bool
        Publish the total, protected together with the cells.

    Returns
    -------
    GridCounts
    """
    if method not in ("merge", "suppress"):
        raise InputError(f"grid method must be merge or suppress, got {method!r}")
    if cell_size <= 0 or levels < 0:
        raise InputError("grid needs cell_size > 0 and levels >= 0")
    missing = {"cell_x", "cell_y", "count"} - set(cells.columns)
    if missing:
        raise InputError(f"grid counts need columns {', '.join(sorted(missing))}")
    fine = cells.groupby(["cell_x", "cell_y"], as_index=False)["count"].sum()
    fine = fine[fine["count"] > 0]
    top = levels if method == "merge" else 0
    counts: list[dict[tuple[int, int], int]] = []
    for level in range(top + 1):
        gx = np.floor_divide(fine["cell_x"].to_numpy(np.int64), 2**level)
        gy = np.floor_divide(fine["cell_y"].to_numpy(np.int64), 2**level)
        agg = pd.DataFrame({"x": gx, "y": gy, "n": fine["count"].to_numpy(np.int64)}).groupby(
            ["x", "y"], as_index=False)["n"].sum()
        counts.append({(int(a), int(b)): int(n) for a, b, n in agg[["x", "y", "n"]].itertuples(index=False)})
    out: list[tuple[int, int, int, int]] = []
    for key in sorted(counts[top]):
        _split(key, top, counts, k, out)
    frame = pd.DataFrame(out, columns=["ix", "iy", "level", "n"])
    size = cell_size * 2.0 ** frame["level"].to_numpy(float)
    labels = [f"{lv}:{a}:{b}" for a, b, lv in zip(frame["ix"], frame["iy"], frame["level"], strict=True)]
    table = suppress_counts(pd.Series(frame["n"].to_numpy(np.int64), index=labels), k=k, total=total)
    pub = table.published().iloc[0]
    result = pd.DataFrame({
        "x0": frame["ix"].to_numpy(float) * size, "y0": frame["iy"].to_numpy(float) * size, "size": size,
        "count": pub[labels].to_numpy(), "suppressed": table.suppressed.iloc[0][labels].to_numpy(bool),
    })
    result["count"] = result["count"].astype("Int64")
    grand = pub.get(TOTAL) if total else None
    return GridCounts(result, None if grand is None or pd.isna(grand) else int(grand), table, crs)
