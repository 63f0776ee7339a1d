"""H3 cell ids at the stored resolutions, computed once per distinct point.

Many incidents share a block-level point, so cells are computed for unique coordinates only;
coarser resolutions are derived from the finest by resetting the index's resolution digits
(the H3 bit layout), which is exact and vectorised.
"""

from __future__ import annotations

import h3.api.basic_int as h3i
import numpy as np
import pandas as pd

from crimelens.schema import H3_RESOLUTIONS


def parent_cells(cells: np.ndarray, res: int) -> np.ndarray:
    """Parents at ``res`` of uint64 H3 cells of a finer resolution (0 stays 0)."""
    c = cells.astype(np.uint64)
    out = (c & ~(np.uint64(0xF) << np.uint64(52))) | (np.uint64(res) << np.uint64(52))
    for r in range(res + 1, 16):
        out |= np.uint64(7) << np.uint64((15 - r) * 3)
    return np.where(c == 0, np.uint64(0), out)


def h3_columns(lat: np.ndarray, lon: np.ndarray) -> dict[int, pd.Series]:
    """H3 cells (int64; null where there is no point) at each of :data:`H3_RESOLUTIONS`."""
    n = len(lat)
    ok = np.isfinite(lat) & np.isfinite(lon)
    finest = max(H3_RESOLUTIONS)
    cells = np.zeros(n, dtype=np.uint64)
    if ok.any():
        # one key per point at ~1 cm: (lat, lon) in 1e-7 degrees packed into an int64
        la = np.round(lat[ok] * 1e7).astype(np.int64)
        lo = np.round(lon[ok] * 1e7).astype(np.int64)
        codes, uniq = pd.factorize(la * 4_000_000_000 + lo)
        first = np.zeros(len(uniq), dtype=np.int64)
        first[codes[::-1]] = np.arange(len(codes))[::-1]
        ulat, ulon = lat[ok][first], lon[ok][first]
        f = h3i.latlng_to_cell
        ucells = np.fromiter(
            (f(a, b, finest) for a, b in zip(ulat.tolist(), ulon.tolist(), strict=True)),
            dtype=np.uint64, count=len(uniq),
        )
        cells[ok] = ucells[codes]
    out = {}
    for res in H3_RESOLUTIONS:
        c = cells if res == finest else parent_cells(cells, res)
        out[res] = pd.Series(c.view(np.int64), dtype="Int64").mask(~ok)
    return out
