"""H3 cell ids at the stored resolutions, computed once per distinct point.

Many incidents share a block-level point, so cells are computed for unique coordinates only;
coarser resolutions are derived from the finest by resetting the index's resolution digits
(the H3 bit layout), which is exact and vectorised. A :class:`PointCells` cache carries the
cells of points already seen across the chunks of one file, so a point repeated in every chunk
is indexed once.
"""

from __future__ import annotations

from typing import Final

import h3.api.basic_int as h3i
import numpy as np
import pandas as pd

from crimelens.schema import H3_RESOLUTIONS

_LON_SPAN: Final = 4_000_000_000  # > 360 degrees in 1e-7 degree units


def parent_cells(cells: np.ndarray, res: int) -> np.ndarray:
    """Parents at ``res`` of uint64 H3 cells of a finer resolution (0 stays 0)."""
    c = cells.astype(np.uint64)
    out = (c & ~(np.uint64(0xF) << np.uint64(52))) | (np.uint64(res) << np.uint64(52))
    for r in range(res + 1, 16):
        out |= np.uint64(7) << np.uint64((15 - r) * 3)
    return np.where(c == 0, np.uint64(0), out)


class PointCells:
    """Finest-resolution cells of points already indexed, keyed by the point at ~1 cm.

    Bounded: once it holds ``max_points`` points it starts afresh (a cache miss only costs
    recomputing a cell, never a wrong one).
    """

    def __init__(self, max_points: int = 2_000_000) -> None:
        self.max_points = max_points
        self._keys = pd.Index(np.empty(0, dtype=np.int64))
        self._cells = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._keys)

    def lookup(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Cells of ``keys`` (distinct int64 point keys) and a mask of those found."""
        pos = self._keys.get_indexer(pd.Index(keys))
        found = pos >= 0
        cells = np.zeros(len(keys), dtype=np.uint64)
        cells[found] = self._cells[pos[found]]
        return cells, found

    def add(self, keys: np.ndarray, cells: np.ndarray) -> None:
        """Remember the cells of new (distinct, not yet held) point keys."""
        if not len(keys):
            return
        if len(self._keys) + len(keys) > self.max_points:
            self._keys, self._cells = pd.Index(np.empty(0, dtype=np.int64)), np.empty(0, dtype=np.uint64)
        self._keys = self._keys.append(pd.Index(keys))
        self._cells = np.concatenate([self._cells, cells])


def h3_columns(lat: np.ndarray, lon: np.ndarray, cache: PointCells | None = None) -> dict[int, pd.Series]:
    """H3 cells (int64; null where there is no point) at each of :data:`H3_RESOLUTIONS`.

    ``cache`` reuses (and extends) the cells of points indexed by earlier calls.
    """
    n = len(lat)
    ok = np.isfinite(lat) & np.isfinite(lon)
    finest = max(H3_RESOLUTIONS)
    cells = np.zeros(n, dtype=np.uint64)
    if ok.any():
        # one key per point at ~1 cm: (lat, lon) in 1e-7 degrees packed into an int64
        la = np.round(lat[ok] * 1e7).astype(np.int64)
        lo = np.round(lon[ok] * 1e7).astype(np.int64)
        codes, uniq = pd.factorize(la * _LON_SPAN + lo)
        ukeys = np.asarray(uniq, dtype=np.int64)
        first = np.zeros(len(ukeys), dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes))[::-1]
        ucells, found = cache.lookup(ukeys) if cache is not None else (
            np.zeros(len(ukeys), dtype=np.uint64), np.zeros(len(ukeys), dtype=bool))
        todo = np.flatnonzero(~found)
        ulat, ulon = lat[ok][first[todo]], lon[ok][first[todo]]
        f = h3i.latlng_to_cell
        ucells[todo] = np.fromiter(
            (f(a, b, finest) for a, b in zip(ulat.tolist(), ulon.tolist(), strict=True)),
            dtype=np.uint64, count=len(todo),
        )
        if cache is not None:
            cache.add(ukeys[todo], ucells[todo])
        cells[ok] = ucells[codes]
    out = {}
    for res in H3_RESOLUTIONS:
        c = cells if res == finest else parent_cells(cells, res)
        out[res] = pd.Series(c.view(np.int64), dtype="Int64").mask(~ok)
    return out
