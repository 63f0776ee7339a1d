"""Rolling-origin backtests of spatial forecasters on one grid and one study area.

Every model is cloned, fitted on the incidents before each origin and scored on the window
after it with :mod:`crimelens.forecast.evaluation.metrics`, so all models are measured the same
way. The study area is the jurisdiction's cells when given, else the footprint: every cell
that held an incident anywhere in the data passed in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone

from crimelens.exceptions import InputError
from crimelens.forecast import memo
from crimelens.forecast.base import Forecaster, _crs_of
from crimelens.forecast.calibration import fold_parts
from crimelens.forecast.evaluation.metrics import poisson_log_score, score_coverage
from crimelens.forecast.evaluation.report import BacktestReport
from crimelens.forecast.evaluation.splitter import RollingOrigin
from crimelens.forecast.history import IntArray, Timeline, parse_horizon
from crimelens.geo.grid import SquareGrid

COLUMNS = ("occurred_at", "x", "y", "category")
Progress = Callable[[int, int, str], None]


def study_grid(incidents: pd.DataFrame, cell_size: float, crs: str | None = None) -> SquareGrid:
    """The grid aligned to multiples of ``cell_size`` that covers every located incident."""
    return SquareGrid.covering(incidents["x"].to_numpy(float), incidents["y"].to_numpy(float),
                               float(cell_size), crs or _crs_of(incidents))


def footprint(incidents: pd.DataFrame, grid: SquareGrid) -> IntArray:
    """Cells holding at least one incident: the default study area."""
    cell = grid.cell_of(incidents["x"].to_numpy(float), incidents["y"].to_numpy(float))
    return np.unique(cell[cell >= 0])


def backtest(
    models: Mapping[str, Forecaster],
    incidents: pd.DataFrame,
    splitter: RollingOrigin,
    *,
    cell_size: float = 200.0,
    grid: SquareGrid | None = None,
    area: IntArray | None = None,
    coverages: Sequence[float] = (0.01, 0.05),
    baseline: str = "retro_count",
    label: str = "",
    progress: Progress | None = None,
) -> BacktestReport:
    """Score ``models`` on every fold of ``splitter``.

    Parameters
    ----------
    models : mapping of str to Forecaster
        Models by display name; each is cloned per fold (the originals are not fitted).
    incidents : DataFrame
        Canonical incidents (``occurred_at``, ``x``, ``y``, ``category``), already filtered
        (category, source). Not modified.
    splitter : RollingOrigin
        The forecast origins and horizon.
    cell_size : float
        Cell size in metres of the study grid (when ``grid`` is not given).
    grid : SquareGrid, optional
        The study grid; default: the aligned grid covering the incidents.
    area : ndarray of int, optional
        Study-area cells (e.g. inside the jurisdiction boundary); default: the footprint.
    coverages : sequence of float
        Shares of the study area flagged, e.g. ``(0.01, 0.05)``.
    baseline : str
        Name of the model the others are compared with.
    label : str
        A name for the evaluation (data set and filter), carried into the report.
    progress : callable, optional
        Called as ``progress(done, total, message)``.

    Returns
    -------
    BacktestReport
    """
    missing = [c for c in COLUMNS if c not in incidents.columns]
    if missing:
        raise InputError(f"incidents lack columns: {', '.join(missing)}")
    data = incidents.loc[np.isfinite(incidents["x"].to_numpy(float)) & np.isfinite(incidents["y"].to_numpy(float))]
    crs = _crs_of(data)
    data = data[list(COLUMNS)]
    if len(data) == 0:
        raise InputError("no located incidents to evaluate on")
    g = grid or study_grid(data, cell_size, crs)
    cells = np.asarray(area, dtype=np.int64) if area is not None else footprint(data, g)
    if len(cells) == 0:
        raise InputError("the study area has no cells")
    in_area = np.zeros(g.n_cells, dtype=bool)
    in_area[cells] = True
    all_cell = g.cell_of(data["x"].to_numpy(float), data["y"].to_numpy(float))
    when = data["occurred_at"]
    horizon_days = parse_horizon(splitter.horizon)
    folds = splitter.folds()
    rows: list[dict[str, Any]] = []
    calib: list[dict[str, Any]] = []
    total = len(folds) * len(models)
    done = 0
    timeline = Timeline.build(data, g)
    for fold in folds:
        max_days = None if fold.train_start is None else (fold.origin - fold.train_start).total_seconds() / 86400
        history = timeline.before(fold.origin, max_days)
        test_mask = ((when >= fold.origin) & (when < fold.end)).to_numpy()
        observed = np.bincount(all_cell[test_mask & (all_cell >= 0)], minlength=g.n_cells).astype(float)[cells]
        for name, model in models.items():
            done += 1
            if progress is not None:
                progress(done, total, f"{fold.origin.date()} {name}")
            if len(history) == 0:
                continue
            est = clone(model)
            est.set_params(**({"grid": g, "horizon": horizon_days} if "horizon" in est.get_params() else {"grid": g}))
            t0 = time.perf_counter()
            est._fit_history(history)  # same as est.fit(train, until=origin), sharing the conversion
            t1 = time.perf_counter()
            surface = est.predict(horizon=horizon_days)
            t2 = time.perf_counter()
            memo.remember(est, history, horizon_days, surface.score)  # auto reuses what it would refit
            score = surface.score[cells]
            expected = surface.expected()[cells]
            log_score = poisson_log_score(expected, observed)
            calib.append({"model": name, "fold": fold.index, **fold_parts(expected, observed)})
            for cov in coverages:
                cs = score_coverage(score, observed, cov)
                rows.append({
                    "model": name, "fold": fold.index, "origin": fold.origin, **cs.to_dict(),
                    "log_score": log_score, "fit_s": t1 - t0, "predict_s": t2 - t1,
                })
    frame = pd.DataFrame(rows)
    return BacktestReport(
        folds=frame,
        coverages=tuple(float(c) for c in coverages),
        baseline=baseline,
        area_cells=len(cells),
        n_folds=len(folds),
        calibration=pd.DataFrame(calib),
        settings={
            "label": label,
            "cell_size_m": g.cell_size,
            "crs": g.crs,
            "horizon_days": horizon_days,
            "first_origin": folds[0].origin.isoformat() if folds else None,
            "last_origin": folds[-1].origin.isoformat() if folds else None,
            "step": str(splitter.step or splitter.horizon),
            "study_area": "given" if area is not None else "footprint",
            "models": {n: {k: v for k, v in m.get_params().items() if k != "grid"} for n, m in models.items()},
        },
    )
