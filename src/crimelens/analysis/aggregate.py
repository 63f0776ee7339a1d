"""Counts of an in-memory incident frame, with exactly the keys of ``Store.counts``.

Stores push grouping down to their engine; this is the same contract for a canonical pandas
frame (tests, notebooks, a frame from ``crimelens.synth``), so every analysis can be fed either.
Keys: ``day``, ``week`` (Monday), ``month`` (naive timestamps of the period start), ``hour``
(0-23), ``weekday`` (0 = Monday), ``cell:<metres>`` (``cell_x``/``cell_y`` = ``floor(x / size)``)
and any column name. Derived time keys are computed in UTC unless ``tz`` is given.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from crimelens.exceptions import InputError

_CELL = re.compile(r"^cell:(\d+(?:\.\d+)?)$")


def count_incidents(frame: pd.DataFrame, by: Sequence[str], *, tz: str = "UTC") -> pd.DataFrame:
    """``GROUP BY`` ``by`` with a ``count`` column, like :meth:`crimelens.store.base.Store.counts`."""
    cols: dict[str, pd.Series] = {}
    keep = pd.Series(True, index=frame.index)
    local: pd.Series | None = None
    for item in by:
        if item in ("day", "week", "month", "hour", "weekday"):
            if local is None:
                ts = pd.to_datetime(frame["occurred_at"], utc=True)
                local = ts.dt.tz_convert(tz).dt.tz_localize(None)
            if item == "hour":
                cols[item] = local.dt.hour
            elif item == "weekday":
                cols[item] = local.dt.day_of_week
            else:
                day = local.dt.normalize()
                if item == "day":
                    cols[item] = day
                elif item == "week":
                    cols[item] = day - pd.to_timedelta(day.dt.day_of_week, unit="D")
                else:
                    cols[item] = day - pd.to_timedelta(day.dt.day - 1, unit="D")
        elif (m := _CELL.match(item)) is not None:
            size = float(m.group(1))
            if size <= 0:
                raise InputError("cell size must be positive")
            keep &= frame["x"].notna() & frame["y"].notna()
            cols["cell_x"] = np.floor(frame["x"] / size)
            cols["cell_y"] = np.floor(frame["y"] / size)
        elif item in frame.columns:
            cols[item] = frame[item]
            if item.startswith("h3_"):
                keep &= frame[item].notna()
        else:
            raise InputError(f"cannot group by {item!r}")
    keys = pd.DataFrame(cols, index=frame.index)[keep]
    if "cell_x" in keys:
        keys["cell_x"] = keys["cell_x"].astype(np.int64)
        keys["cell_y"] = keys["cell_y"].astype(np.int64)
    if keys.shape[1] == 0:
        return pd.DataFrame({"count": [int(keep.sum())]})
    out = keys.groupby(list(keys.columns), dropna=False, sort=True).size().rename("count").reset_index()
    out["count"] = out["count"].astype(np.int64)
    return out
