"""STL residual scores: how far a window sits above a series' own trend and weekly pattern.

The daily series *before* the window is decomposed by robust STL (Cleveland et al. 1990; reused
from :func:`crimelens.analysis.temporal.stl_decompose`, period 7) and carried into the window:
the last trend level plus the weekly seasonal component of the same weekdays. The score is the
window's observed minus that expectation, divided by its expected spread, ``√W`` times a robust
scale of the in-sample residuals (1.4826 × MAD, floored at the Poisson standard deviation of a
day so that sparse series with a zero MAD do not explode). Decomposing only the history keeps a
rise in the window from bending the trend it is measured against. Under no change the score is
meant to be roughly standard normal, but the trend at the end of a series is itself uncertain,
so on series with no change its spread is 1.5-2 times larger: it is evidence to read beside the
calibrated negative binomial p-value, not a decision statistic. It needs a level of about one
incident a day to be meaningful; sparser series get no score (``nan``).

References
----------
Cleveland, R. B., Cleveland, W. S., McRae, J. E. & Terpenning, I. (1990). STL: a seasonal-trend
decomposition procedure based on loess. *Journal of Official Statistics* 6(1), 3-73.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.alerts.panel import CountPanel
from crimelens.exceptions import require_extra

FloatArray = npt.NDArray[np.float64]


def stl_scores(panel: CountPanel, rows: npt.ArrayLike, end: int, window_days: int, *,
               history_days: int = 112, min_daily_mean: float = 1.0) -> FloatArray:
    """STL residual z-score of the window ``[end - window_days, end)`` for each series in ``rows``."""
    require_extra("statsmodels", "analysis")
    from crimelens.analysis.temporal import stl_decompose

    idx = np.atleast_1d(np.asarray(rows, dtype=np.int64))
    lo = max(end - history_days, 0)
    out = np.full(idx.size, np.nan)
    if end - lo < window_days + 15:
        return out
    days = panel.days[lo:end - window_days]
    for j, row in enumerate(idx):
        values = panel.counts[row, lo:end].astype(np.float64)
        history, current = values[:-window_days], values[-window_days:]
        level = history.mean()
        if level < min_daily_mean:
            continue
        parts = stl_decompose(pd.Series(history, index=days), "day")
        seasonal = parts["seasonal"].to_numpy()[-7:]
        expected = parts["trend"].to_numpy()[-1] * window_days + np.resize(seasonal, window_days).sum()
        resid = parts["resid"].to_numpy()
        mad = 1.4826 * float(np.median(np.abs(resid - np.median(resid))))
        scale = max(mad, float(np.sqrt(level)))
        out[j] = float(current.sum() - expected) / (scale * np.sqrt(window_days))
    return out
