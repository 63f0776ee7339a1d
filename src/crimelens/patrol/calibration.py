"""Calibrating the patrol simulator: per-shift rates from a forecast, groups from areas or blocks.

A forecast (:class:`~crimelens.forecast.surface.RiskSurface`) gives the expected *recorded*
incidents per cell over its window. The simulator needs true crimes per cell per shift:

    estimate[s, i] = expected_i / days · share_i(s)        (recorded incidents per shift)
    rates[s, i]    = estimate[s, i] / report_prob           (true crimes per shift)

where ``share_i(s)`` is the share of cell ``i``'s past incidents that fell in shift ``s`` (local
hours), shrunk toward the whole city's shift shares with ``prior`` pseudo-incidents, so a cell
with few incidents takes the city's daily rhythm.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.forecast.surface import RiskSurface
from crimelens.geo.grid import SquareGrid
from crimelens.patrol.simulator import FloatArray, IntArray, Shift, ShiftCity


def shift_index(occurred_at: pd.Series, shifts: Sequence[Shift], tz: str = "UTC") -> IntArray:
    """Shift of each timestamp (UTC) in local time ``tz``; -1 for missing times."""
    try:
        local = pd.to_datetime(occurred_at, utc=True).dt.tz_convert(tz)
    except (KeyError, ValueError) as exc:  # unknown zone names raise from zoneinfo
        raise InputError(f"unknown time zone {tz!r}") from exc
    hour: IntArray = np.asarray(local.dt.hour.fillna(-1).to_numpy(np.int64), dtype=np.int64)
    out = np.full(len(hour), -1, dtype=np.int64)
    for k, s in enumerate(shifts):
        out[(hour >= 0) & s.contains(hour)] = k
    return out


def spatial_groups(grid: SquareGrid, cells: IntArray, block_m: float) -> tuple[IntArray, tuple[str, ...]]:
    """Group cells into square blocks of ``block_m`` metres (named ``r<row>c<col>``)."""
    if block_m <= 0:
        raise InputError("group block size must be positive")
    k = max(1, round(block_m / grid.cell_size))
    row, col = grid.rowcol(cells)
    label = np.char.add(np.char.add("r", (row // k).astype(str)), np.char.add("c", (col // k).astype(str)))
    names, idx = np.unique(label, return_inverse=True)
    return idx.astype(np.int64), tuple(str(n) for n in names)


def label_groups(cell_of_incident: IntArray, labels: pd.Series, cells: IntArray) -> tuple[IntArray, tuple[str, ...]]:
    """Each cell's most common label among its incidents; cells without one join ``(none)``."""
    frame = pd.DataFrame({"cell": cell_of_incident, "label": labels.astype("string").to_numpy()}).dropna()
    frame = frame[np.isin(frame["cell"], cells)]
    if frame.empty:
        raise InputError("no incident in the study area has a value in the group column")
    top = (frame.groupby(["cell", "label"]).size().reset_index(name="n")
           .sort_values(["cell", "n", "label"], ascending=[True, False, True]).drop_duplicates("cell"))
    by_cell = dict(zip(top["cell"].astype(np.int64), top["label"].astype(str), strict=True))
    label = np.array([by_cell.get(int(c), "(none)") for c in cells], dtype=object)
    names, idx = np.unique(label.astype(str), return_inverse=True)
    return idx.astype(np.int64), tuple(str(n) for n in names)


@dataclass(frozen=True, eq=False)
class Calibrated:
    """A city for the simulator and what the schedulers may know about it.

    ``city`` holds the true rates (per shift) the simulator plays; ``estimate`` the expected
    recorded incidents per shift the schedulers plan from (``city.rates · report_prob`` when the
    city was calibrated from the forecast itself).
    """

    city: ShiftCity
    estimate: FloatArray


def shift_shares(cell_of_incident: IntArray, shift_of_incident: IntArray, cells: IntArray, n_shifts: int,
                 prior: float = 5.0) -> FloatArray:
    """``(n_shifts, n)``: share of each cell's incidents in each shift, shrunk to the city's shares."""
    ok = (shift_of_incident >= 0) & np.isin(cell_of_incident, cells)
    pos = np.searchsorted(cells, cell_of_incident[ok])
    counts = np.zeros((n_shifts, len(cells)))
    np.add.at(counts, (shift_of_incident[ok], pos), 1.0)
    city = counts.sum(axis=1)
    city = city / city.sum() if city.sum() > 0 else np.full(n_shifts, 1.0 / n_shifts)
    return np.asarray((counts + prior * city[:, None]) / (counts.sum(axis=0)[None, :] + prior), dtype=np.float64)


def calibrate(surface: RiskSurface, history: pd.DataFrame, shifts: Sequence[Shift], *, tz: str = "UTC",
              report_prob: float = 0.5, group_column: str | None = None, group_block_m: float = 4000.0,
              prior: float = 5.0) -> Calibrated:
    """A :class:`ShiftCity` whose rates follow ``surface``, split into shifts by ``history``.

    Parameters
    ----------
    surface : RiskSurface
        Forecast for a window of whole days; its study area are the city's cells.
    history : DataFrame
        Past incidents (``occurred_at``, ``x``, ``y`` and ``group_column`` when given).
    shifts : sequence of Shift
        The shift structure.
    tz : str
        Local time zone of the shifts.
    report_prob : float
        Share of true crime the public reports (the simulator's ``report_prob``).
    group_column : str, optional
        Area column whose majority label per cell forms the fairness groups; otherwise square blocks.
    group_block_m : float
        Block size of spatial groups.
    prior : float
        Pseudo-incidents of the city's shift shares in every cell.
    """
    if not 0.0 < report_prob <= 1.0:
        raise InputError(f"report_prob must be in (0, 1], got {report_prob}")
    cells = np.sort(surface.cells())
    if len(cells) == 0:
        raise InputError("the forecast has no study-area cells")
    days = (surface.end - surface.start) / pd.Timedelta(days=1)
    if days <= 0:
        raise InputError("the forecast window is empty")
    cell = surface.grid.cell_of(history["x"].to_numpy(float), history["y"].to_numpy(float))
    shares = shift_shares(cell, shift_index(history["occurred_at"], shifts, tz), cells, len(shifts), prior)
    estimate = surface.expected()[cells][None, :] / days * shares
    if group_column:
        if group_column not in history.columns:
            raise InputError(f"incidents have no column {group_column!r} to group cells by")
        groups, names = label_groups(cell, history[group_column], cells)
    else:
        groups, names = spatial_groups(surface.grid, cells, group_block_m)
    city = ShiftCity(surface.grid, cells, estimate / report_prob, tuple(shifts), groups, names)
    return Calibrated(city, np.asarray(estimate, np.float64))
