"""The result every spatial forecaster returns: a :class:`RiskSurface`.

A risk surface is a score per cell of a :class:`~crimelens.geo.grid.SquareGrid` for one forecast
window ``[start, end)``. Higher scores mean more expected crime. Ranks run from 1 (the riskiest
cell) downwards, ties broken by the lower cell id so that every export ranks the same way. The
hit rate, PAI and PEI of a surface are computed in :mod:`crimelens.forecast.evaluation.metrics`,
one place for every model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True, slots=True, eq=False)
class RiskSurface:
    """Scores per grid cell for one forecast window.

    Attributes
    ----------
    grid : SquareGrid
        The grid the scores refer to.
    score : ndarray of float, shape (grid.n_cells,)
        Relative risk of each cell; only the order matters for ranking metrics.
    start, end : Timestamp
        The forecast window ``[start, end)`` in UTC.
    model : str
        Registry name of the forecaster that produced the surface.
    params : dict
        The forecaster's hyperparameters (reported with every product).
    expected_total : float
        The expected number of incidents in the window over the whole grid, used to turn
        scores into expected counts for the Poisson log score.
    area : ndarray of int
        The cells the surface reports on (the study area known to the forecaster: by default
        every cell that held an incident in its training data).
    """

    grid: SquareGrid
    score: FloatArray
    start: pd.Timestamp
    end: pd.Timestamp
    model: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    expected_total: float = float("nan")
    area: IntArray | None = None

    def __post_init__(self) -> None:
        if self.score.shape != (self.grid.n_cells,):
            raise InputError(f"score has shape {self.score.shape}, grid has {self.grid.n_cells} cells")

    def cells(self) -> IntArray:
        """The reported cells: :attr:`area`, or every grid cell."""
        if self.area is None:
            return np.arange(self.grid.n_cells, dtype=np.int64)
        return np.asarray(self.area, dtype=np.int64)

    def order(self, cells: IntArray | None = None) -> IntArray:
        """``cells`` (default :meth:`cells`) sorted from riskiest to safest, ties by cell id."""
        c = self.cells() if cells is None else np.asarray(cells, dtype=np.int64)
        s = np.nan_to_num(self.score[c], nan=-np.inf)
        return c[np.lexsort((c, -s))]

    def expected(self) -> FloatArray:
        """Expected incidents per cell in the window: scores scaled to :attr:`expected_total`."""
        s = np.clip(np.nan_to_num(self.score, nan=0.0), 0.0, None)
        total = s.sum()
        if total <= 0 or not np.isfinite(self.expected_total):
            return s
        return np.asarray(s * (self.expected_total / total), dtype=np.float64)

    def to_frame(self, cells: IntArray | None = None) -> pd.DataFrame:
        """One row per cell, riskiest first: ``cell_id``, ``score``, ``expected``, ``rank``,
        ``x``, ``y`` (cell centre, metres), ``lon``, ``lat`` (centre, WGS84)."""
        from crimelens.geo.crs import to_wgs84

        o = self.order(cells)
        x, y = self.grid.centres(o)
        lon, lat = to_wgs84(x, y, self.grid.crs) if len(o) else (x, y)
        return pd.DataFrame(
            {
                "cell_id": o,
                "score": self.score[o],
                "expected": self.expected()[o],
                "rank": np.arange(1, len(o) + 1, dtype=np.int64),
                "x": x,
                "y": y,
                "lon": lon,
                "lat": lat,
            }
        )

    def metadata(self) -> dict[str, Any]:
        """What shaped the surface: model, parameters, window, cell size and CRS."""
        return {
            "model": self.model,
            "params": {k: _jsonable(v) for k, v in self.params.items()},
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "cell_size_m": self.grid.cell_size,
            "crs": self.grid.crs,
            "expected_total": None if not np.isfinite(self.expected_total) else self.expected_total,
            "rank": "1 = riskiest; ties broken by lower cell_id",
        }

    def to_geojson(self, cells: IntArray | None = None, top: int | None = None) -> dict[str, Any]:
        """A GeoJSON FeatureCollection of WGS84 cell polygons with ``cell_id``, ``score``,
        ``expected`` and ``rank``, riskiest first (only the ``top`` cells when given)."""
        frame = self.to_frame(cells)
        if top is not None:
            frame = frame.head(top)
        rings = self.grid.polygons_wgs84(frame["cell_id"].to_numpy())
        features = [
            {
                "type": "Feature",
                "geometry": {"type": "Polygon", "coordinates": [ring]},
                "properties": {
                    "cell_id": int(cid),
                    "score": float(sc),
                    "expected": float(ex),
                    "rank": int(rk),
                },
            }
            for ring, cid, sc, ex, rk in zip(
                rings, frame["cell_id"], frame["score"], frame["expected"], frame["rank"], strict=True
            )
        ]
        return {"type": "FeatureCollection", "metadata": self.metadata(), "features": features}

    def write(self, path: str | Path, top: int | None = None) -> Path:
        """Write the surface as ``.geojson``/``.json`` (WGS84 polygons) or ``.csv`` (cell centres
        with longitude/latitude), riskiest first."""
        p = Path(path)
        suffix = p.suffix.lower()
        if suffix in (".geojson", ".json"):
            p.write_text(json.dumps(self.to_geojson(top=top)), encoding="utf-8")
        elif suffix == ".csv":
            frame = self.to_frame()
            (frame.head(top) if top is not None else frame).to_csv(p, index=False)
        else:
            raise InputError(f"unsupported surface format {suffix!r}: use .geojson or .csv")
        return p


def _jsonable(value: Any) -> Any:
    """A JSON-friendly rendering of a hyperparameter value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)
