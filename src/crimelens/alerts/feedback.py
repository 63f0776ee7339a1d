"""Analyst feedback on alerts (true or false alarm) and the precision it implies over time.

Each resolved alert may carry a label: ``true`` (a real problem worth the alert) or ``false``
(a false alarm). Precision is the share of labelled alerts that were true; it is reported per
period with a Wilson score interval (Wilson 1927), overall and per detector or rule, so a
detector that cries wolf shows it.

References
----------
Wilson, E. B. (1927). Probable inference, the law of succession, and statistical inference.
*JASA* 22(158), 209-212.
"""

from __future__ import annotations

from typing import Final

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError

LABELS: Final = ("true", "false")
#: Period names and the pandas period each uses (weeks run Monday to Sunday).
PERIODS: Final = {"week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}


def wilson(successes: np.ndarray, n: np.ndarray, z: float = 1.96) -> tuple[np.ndarray, np.ndarray]:
    """Wilson score interval of a proportion (``nan`` where ``n`` is zero)."""
    s = np.asarray(successes, float)
    m = np.asarray(n, float)
    with np.errstate(invalid="ignore", divide="ignore"):
        p = s / m
        centre = (p + z * z / (2 * m)) / (1 + z * z / m)
        half = z * np.sqrt(p * (1 - p) / m + z * z / (4 * m * m)) / (1 + z * z / m)
    return np.where(m > 0, centre - half, np.nan), np.where(m > 0, centre + half, np.nan)


def precision_over_time(feedback: pd.DataFrame, *, period: str = "month", by: str | None = None) -> pd.DataFrame:
    """Precision of labelled alerts per ``period`` (week, month, quarter, year), optionally per ``by``.

    ``feedback`` needs ``created_at`` (when the alert was raised) and ``label`` (``true`` /
    ``false``); unlabelled rows are ignored. Returns ``period``, (``by``), ``labelled``, ``true``,
    ``false``, ``precision``, ``lower``, ``upper`` (95 % Wilson) and ``cumulative_precision``.
    """
    if period not in PERIODS:
        raise InputError(f"period must be one of {', '.join(PERIODS)}, got {period!r}")
    for col in ("created_at", "label") + ((by,) if by else ()):
        if col not in feedback.columns:
            raise InputError(f"feedback lacks column {col!r}")
    fb = feedback[feedback["label"].isin(LABELS)].copy()
    cols = ["period", *([by] if by else []), "labelled", "true", "false", "precision", "lower", "upper",
            "cumulative_precision"]
    if fb.empty:
        return pd.DataFrame(columns=cols)
    t = pd.to_datetime(fb["created_at"], utc=True).dt.tz_localize(None)
    fb["period"] = t.dt.to_period(PERIODS[period]).dt.start_time
    fb["is_true"] = fb["label"] == "true"
    keys = ["period", *([by] if by else [])]
    g = fb.groupby(keys, sort=True)["is_true"].agg(["size", "sum"]).reset_index()
    g = g.rename(columns={"size": "labelled", "sum": "true"})
    g["false"] = g["labelled"] - g["true"]
    g["precision"] = g["true"] / g["labelled"]
    g["lower"], g["upper"] = wilson(g["true"].to_numpy(), g["labelled"].to_numpy())
    grp = g.groupby(by, sort=False) if by else None
    cum_true = grp["true"].cumsum() if grp is not None else g["true"].cumsum()
    cum_n = grp["labelled"].cumsum() if grp is not None else g["labelled"].cumsum()
    g["cumulative_precision"] = cum_true / cum_n
    return g[cols]
