"""Square grids in a metric CRS: the common unit of hot spot maps and risk surfaces.

A :class:`SquareGrid` is anchored at an origin (its lower-left corner) and covers ``nx × ny``
cells of ``cell_size`` metres. Cell ids are row-major integers ``row * nx + col``; every
analysis and forecaster that works on a grid uses these ids, so their outputs line up.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from crimelens.exceptions import InputError
from crimelens.geo.crs import FloatArray, to_wgs84

IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True)
class SquareGrid:
    """A square grid of ``cell_size``-metre cells in ``crs``."""

    x0: float
    y0: float
    cell_size: float
    nx: int
    ny: int
    crs: str

    @classmethod
    def covering(cls, x: FloatArray, y: FloatArray, cell_size: float, crs: str) -> SquareGrid:
        """The smallest grid aligned to multiples of ``cell_size`` that covers the finite points."""
        if cell_size <= 0:
            raise InputError("cell size must be positive")
        xs, ys = np.asarray(x, float), np.asarray(y, float)
        ok = np.isfinite(xs) & np.isfinite(ys)
        if not ok.any():
            raise InputError("no located incidents to build a grid from")
        x0 = np.floor(xs[ok].min() / cell_size) * cell_size
        y0 = np.floor(ys[ok].min() / cell_size) * cell_size
        nx = int(np.floor((xs[ok].max() - x0) / cell_size)) + 1
        ny = int(np.floor((ys[ok].max() - y0) / cell_size)) + 1
        return cls(float(x0), float(y0), float(cell_size), nx, ny, crs)

    @property
    def n_cells(self) -> int:
        """Number of cells."""
        return self.nx * self.ny

    @property
    def cell_area(self) -> float:
        """Area of one cell in square metres."""
        return self.cell_size**2

    def cell_of(self, x: FloatArray, y: FloatArray) -> IntArray:
        """Cell id of each point; -1 for points outside the grid or without coordinates."""
        xs, ys = np.asarray(x, float), np.asarray(y, float)
        with np.errstate(invalid="ignore"):
            col = np.floor((xs - self.x0) / self.cell_size)
            row = np.floor((ys - self.y0) / self.cell_size)
        ok = np.isfinite(col) & np.isfinite(row) & (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
        out = np.full(xs.shape, -1, dtype=np.int64)
        out[ok] = row[ok].astype(np.int64) * self.nx + col[ok].astype(np.int64)
        return out

    def rowcol(self, cell: IntArray) -> tuple[IntArray, IntArray]:
        """Row and column of each cell id."""
        c = np.asarray(cell, dtype=np.int64)
        return c // self.nx, c % self.nx

    def centres(self, cell: IntArray | None = None) -> tuple[FloatArray, FloatArray]:
        """Centre coordinates (metres) of the given cells, or of every cell."""
        c = np.arange(self.n_cells, dtype=np.int64) if cell is None else np.asarray(cell, np.int64)
        row, col = self.rowcol(c)
        xs = np.asarray(self.x0 + (col + 0.5) * self.cell_size, dtype=np.float64)
        ys = np.asarray(self.y0 + (row + 0.5) * self.cell_size, dtype=np.float64)
        return xs, ys

    def polygons_wgs84(self, cell: IntArray) -> list[list[list[float]]]:
        """Each cell's outline as a closed WGS84 ring ``[[lon, lat], ...]`` (GeoJSON order)."""
        row, col = self.rowcol(np.asarray(cell, np.int64))
        xa = self.x0 + col * self.cell_size
        ya = self.y0 + row * self.cell_size
        s = self.cell_size
        xs = np.stack([xa, xa + s, xa + s, xa, xa], axis=1)
        ys = np.stack([ya, ya, ya + s, ya + s, ya], axis=1)
        lon, lat = to_wgs84(xs.ravel(), ys.ravel(), self.crs)
        lon, lat = lon.reshape(xs.shape), lat.reshape(ys.shape)
        rings: list[list[list[float]]] = np.stack((lon, lat), axis=-1).tolist()  # C-level, not a loop per point
        return rings
