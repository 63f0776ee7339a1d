"""The synthetic city's street grid: block points, snapping, and Chicago-style block addresses.

The city is a square of ``size_m`` metres in the local UTM zone, its lower-left corner on a
multiple of 1 km (so square grids of 50-1000 m cells built on the data share cell edges with the
truth grid). North-south and east-west streets run every ``block_m`` metres, offset by
0.3 blocks from the corner so that no block point lies on a cell edge of common grid sizes. A
*block point* is the mid-point of one street segment between two cross streets; like Chicago,
which publishes locations shifted to the block, realistic incidents are located at block points.

Block addresses follow Chicago's address grid: 800 numbers per mile counted from the city centre,
written as the hundred block (``"081XX S OAK AVE"``; the first block is ``"0000X"``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crimelens.geo.crs import FloatArray, local_utm, to_local
from crimelens.synth.codes import STREET_NAMES, STREET_SUFFIXES

IntArray = npt.NDArray[np.int64]
ObjArray = npt.NDArray[np.object_]

_NUMBERS_PER_M = 800.0 / 1609.344  # Chicago: 800 address numbers per mile


@dataclass(frozen=True, slots=True)
class Layout:
    """The street lattice of a city of ``n`` streets each way in ``crs``.

    Block ``i < n (n - 1)`` lies on north-south street ``i // (n - 1)`` (segment ``i % (n - 1)``);
    the others on east-west street ``j`` (segment ``k``) with ``i - n (n - 1) = j (n - 1) + k``.
    """

    crs: str
    x0: float
    y0: float
    size: float
    block: float
    n: int
    bx: FloatArray
    by: FloatArray

    @property
    def offset(self) -> float:
        """Distance of the first street from the city's lower-left corner."""
        return 0.3 * self.block

    @property
    def n_blocks(self) -> int:
        """Number of block points."""
        return 2 * self.n * (self.n - 1)

    @property
    def centre(self) -> tuple[float, float]:
        """Centre of the city square (the address origin), metres in ``crs``."""
        return self.x0 + self.size / 2, self.y0 + self.size / 2

    def inside(self, x: FloatArray, y: FloatArray) -> npt.NDArray[np.bool_]:
        """Which points fall inside the city square."""
        return (x >= self.x0) & (x < self.x0 + self.size) & (y >= self.y0) & (y < self.y0 + self.size)

    def snap(self, x: FloatArray, y: FloatArray) -> IntArray:
        """Index of the nearest block point of each point (points should be inside the city)."""
        n, b, off = self.n, self.block, self.offset
        u = (np.asarray(x, float) - self.x0 - off) / b
        v = (np.asarray(y, float) - self.y0 - off) / b
        # candidate on a north-south street: nearest street, segment containing v
        k_ns = np.clip(np.rint(u), 0, n - 1)
        j_ns = np.clip(np.floor(v), 0, n - 2)
        d_ns = (u - k_ns) ** 2 + (v - j_ns - 0.5) ** 2
        # candidate on an east-west street
        j_ew = np.clip(np.rint(v), 0, n - 1)
        k_ew = np.clip(np.floor(u), 0, n - 2)
        d_ew = (v - j_ew) ** 2 + (u - k_ew - 0.5) ** 2
        ns = k_ns.astype(np.int64) * (n - 1) + j_ns.astype(np.int64)
        ew = n * (n - 1) + j_ew.astype(np.int64) * (n - 1) + k_ew.astype(np.int64)
        return np.where(d_ns <= d_ew, ns, ew)

    def addresses(self, idx: IntArray) -> ObjArray:
        """Chicago-style hundred-block address of each block index."""
        idx = np.asarray(idx, np.int64)
        n = self.n
        half = self.size / 2
        is_ns = idx < n * (n - 1)
        rel = np.where(is_ns, idx, idx - n * (n - 1))
        street = rel // (n - 1)
        seg = rel % (n - 1)
        along = self.offset + (seg + 0.5) * self.block - half  # position along the street from the centre
        number = np.floor(np.abs(along) * _NUMBERS_PER_M).astype(np.int64)
        hundred = number // 100
        direction = np.where(is_ns, np.where(along >= 0, "N", "S"), np.where(along >= 0, "E", "W"))
        names = self._street_names()
        street_name = np.where(is_ns, names[0][street], names[1][street])
        out = np.empty(len(idx), dtype=object)
        for i, (h, d, s) in enumerate(zip(hundred.tolist(), direction.tolist(), street_name.tolist(),
                                          strict=True)):
            out[i] = f"{'0000X' if h == 0 else f'{h:03d}XX'} {d} {s}"
        return out

    def _street_names(self) -> tuple[ObjArray, ObjArray]:
        """Names of the north-south and east-west streets (numbered streets on the south side)."""
        n, half = self.n, self.size / 2
        pos = self.offset + np.arange(n) * self.block - half
        spacing = self.block * _NUMBERS_PER_M
        ns = np.array([_pool_name(k) for k in range(n)], dtype=object)
        ew = np.empty(n, dtype=object)
        for j, p in enumerate(pos.tolist()):
            num = abs(p) * _NUMBERS_PER_M
            hundreds = round(num / 100)
            if p < 0 and hundreds >= 1 and abs(num - 100 * hundreds) < 0.49 * spacing:
                ew[j] = f"{_ordinal(hundreds)} ST"
            else:
                ew[j] = _pool_name(n + j)
        return ns, ew


def build_layout(center: tuple[float, float], size_m: float, block_m: float) -> Layout:
    """The street lattice of a city of ``size_m`` metres centred near ``center`` (lon, lat)."""
    lon, lat = center
    crs = local_utm(lon, lat)
    cx, cy = to_local(np.array([lon]), np.array([lat]), crs)
    x0 = float(np.round((cx[0] - size_m / 2) / 1000.0) * 1000.0)
    y0 = float(np.round((cy[0] - size_m / 2) / 1000.0) * 1000.0)
    n = int(size_m // block_m)
    off = 0.3 * block_m
    lines = off + np.arange(n) * block_m
    mids = off + (np.arange(n - 1) + 0.5) * block_m
    ns_x = np.repeat(lines, n - 1)
    ns_y = np.tile(mids, n)
    ew_y = np.repeat(lines, n - 1)
    ew_x = np.tile(mids, n)
    bx = x0 + np.concatenate([ns_x, ew_x])
    by = y0 + np.concatenate([ns_y, ew_y])
    return Layout(crs, x0, y0, float(size_m), float(block_m), n, bx, by)


def _pool_name(i: int) -> str:
    nb = len(STREET_NAMES)
    return f"{STREET_NAMES[i % nb]} {STREET_SUFFIXES[(i // nb) % len(STREET_SUFFIXES)]}"


def _ordinal(k: int) -> str:
    suffix = "TH" if 10 <= k % 100 <= 20 else {1: "ST", 2: "ND", 3: "RD"}.get(k % 10, "TH")
    return f"{k}{suffix}"
