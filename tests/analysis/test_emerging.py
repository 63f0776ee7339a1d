"""Emerging hot spots: one constructed space-time cube per ArcGIS category yields that category."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis import EmergingHotSpots, SpaceTimeCube, mann_kendall, space_time_cube
from crimelens.analysis.units import grid_counts
from crimelens.exceptions import InputError

from .conftest import CRS

N, T = 15, 12
HOT, COLD = 30.0, 0.0


def _cube(target: list[float | None]) -> tuple[SpaceTimeCube, int]:
    """A 15 x 15 grid of 100 m cells, checkerboard background 4/6, a 3 x 3 block set per step."""
    cells = pd.DataFrame({"cell_x": np.repeat(np.arange(N), N), "cell_y": np.tile(np.arange(N), N)})
    units = grid_counts(cells.assign(count=1), 100.0, CRS)
    assert units.grid is not None
    row, col = units.grid.rowcol(units.ids)
    base = np.where((row + col) % 2 == 0, 4.0, 6.0)
    block = (np.abs(row - 7) <= 1) & (np.abs(col - 7) <= 1)
    values = np.tile(base, (T, 1))
    for t, v in enumerate(target):
        if v is not None:
            values[t, block] = v
    centre = int(np.flatnonzero((row == 7) & (col == 7))[0])
    periods = pd.date_range("2023-01-01", periods=T, freq="MS")
    return SpaceTimeCube(units.with_counts(values.sum(axis=0)), periods, values, "month"), centre


def _steps(on: set[int], value: float) -> list[float | None]:
    return [value if t in on else None for t in range(T)]


def _mixed(hot: set[int], cold: set[int]) -> list[float | None]:
    return [HOT if t in hot else COLD if t in cold else None for t in range(T)]


RISING = [20.0 + 2 * t for t in range(T)]
FADING = RISING[::-1]
CASES: dict[str, list[float | None]] = {
    "new_hot_spot": _steps({11}, HOT),
    "consecutive_hot_spot": _steps({9, 10, 11}, HOT),
    "intensifying_hot_spot": list(RISING),
    "persistent_hot_spot": [HOT] * T,
    "diminishing_hot_spot": list(FADING),
    "sporadic_hot_spot": _steps({2, 5, 8, 11}, HOT),
    "oscillating_hot_spot": _mixed({7, 11}, {1, 4}),
    "historical_hot_spot": _steps(set(range(11)), HOT),
    "new_cold_spot": _steps({11}, COLD),
    "consecutive_cold_spot": _steps({9, 10, 11}, COLD),
    "intensifying_cold_spot": [2.0 - 2.0 * t / (T - 1) for t in range(T)],
    "persistent_cold_spot": [1.0] * T,
    "diminishing_cold_spot": [2.0 * t / (T - 1) for t in range(T)],
    "sporadic_cold_spot": _steps({2, 5, 8, 11}, COLD),
    "oscillating_cold_spot": _mixed({1, 4}, {7, 11}),
    "historical_cold_spot": _steps(set(range(11)), COLD),
    "no_pattern": [None] * T,
}


@pytest.mark.parametrize("category", list(CASES))
def test_each_constructed_cube_yields_its_category(category: str) -> None:
    cube, centre = _cube(CASES[category])
    est = EmergingHotSpots(distance_band=150.0).fit(cube)
    assert est.labels_[centre] == category
    assert est.result_.values["class"][centre] == category


def test_background_of_constructed_cubes_has_no_pattern() -> None:
    cube, _ = _cube(CASES["persistent_hot_spot"])
    est = EmergingHotSpots(distance_band=150.0).fit(cube)
    units = cube.units
    row, col = units.grid.rowcol(units.ids)  # type: ignore[union-attr]
    far = (np.abs(row - 7) > 3) | (np.abs(col - 7) > 3)
    assert (est.labels_[far] == "no_pattern").all()


def test_mann_kendall() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(5, 20))
    s, _z, _p = mann_kendall(x)
    brute = [sum(np.sign(r[j] - r[i]) for i in range(20) for j in range(i + 1, 20)) for r in x]
    np.testing.assert_allclose(s, brute)
    s2, z2, p2 = mann_kendall(np.vstack([np.arange(10.0), -np.arange(10.0), np.ones(10)]))
    assert s2[0] == 45 and z2[0] > 3 and p2[0] < 0.001
    assert s2[1] == -45 and z2[1] < -3
    assert z2[2] == 0 and p2[2] == 1
    # tie correction shrinks the variance: ties give a larger |z| than the uncorrected formula
    tied = np.array([[0, 0, 0, 1, 1, 1, 2, 2, 2, 3.0]])
    st, zt, _ = mann_kendall(tied)
    assert st[0] == 45 - 9  # 45 pairs, 9 of them tied, none discordant
    assert zt[0] > (st[0] - 1) / np.sqrt(10 * 9 * 25 / 18)


def test_space_time_cube_zero_fills_cells_and_periods() -> None:
    frame = pd.DataFrame(
        {
            "cell_x": [0, 2, 2],
            "cell_y": [0, 1, 1],
            "month": pd.to_datetime(["2023-01-01", "2023-03-01", "2023-04-01"]),
            "count": [2, 3, 4],
        }
    )
    cube = space_time_cube(frame, 500.0, CRS, period="month")
    assert cube.values.shape == (4, 6)  # Jan-Apr x (3 x 2 cells)
    assert cube.values.sum() == 9
    assert (cube.values.sum(axis=0) == cube.units.counts).all()
    assert list(cube.periods.month) == [1, 2, 3, 4]
    with pytest.raises(InputError):
        space_time_cube(frame.drop(columns="month"), 500.0, CRS)
