"""Small planted-truth cities for the patrol scheduling tests."""

from __future__ import annotations

import numpy as np

from crimelens.geo.grid import SquareGrid
from crimelens.patrol.simulator import THREE_SHIFTS, ShiftCity

GRID = SquareGrid(0.0, 0.0, 100.0, 16, 16, "EPSG:32616")


def quadrants() -> tuple[np.ndarray, tuple[str, ...]]:
    """Four groups: the grid's quadrants."""
    cells = np.arange(GRID.n_cells)
    row, col = cells // GRID.nx, cells % GRID.nx
    return ((row >= 8) * 2 + (col >= 8)).astype(np.int64), ("sw", "se", "nw", "ne")


def flat_city(rate: float = 0.2) -> ShiftCity:
    """Equal true rates everywhere (the Ensign et al. setting), four quadrant groups."""
    groups, names = quadrants()
    return ShiftCity(GRID, np.arange(GRID.n_cells), np.full((3, GRID.n_cells), rate), THREE_SHIFTS, groups, names)


def planted_city(seed: int = 1) -> tuple[ShiftCity, np.ndarray]:
    """A low background with a few planted hot cells (returned), busier in the evening."""
    rng = np.random.default_rng(seed)
    groups, names = quadrants()
    base = np.full(GRID.n_cells, 0.02)
    hot = rng.choice(GRID.n_cells, size=6, replace=False)
    base[hot] = 1.0
    rates = np.stack([base * f for f in (1.0, 1.5, 0.6)])
    return ShiftCity(GRID, np.arange(GRID.n_cells), rates, THREE_SHIFTS, groups, names), hot
