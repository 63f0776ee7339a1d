"""Counts and rates per area: raw rates per 1,000 residents (or any exposure) and empirical-Bayes
smoothed rates.

Raw rates of small areas are unstable: one extra burglary in a tract of 200 residents moves its
rate by 5 per 1,000. Empirical-Bayes smoothing shrinks each area's rate towards a reference rate, the
more so the smaller its population (Marshall 1991; Clayton & Kaldor 1987):

- **global EB** shrinks towards the rate of the whole study region (``esda.smoothing.Empirical_Bayes``);
- **spatial EB** shrinks towards the rate of each area's neighbourhood under the weights
  (``esda.smoothing.Spatial_Empirical_Bayes``), as in GeoDa.

The excess risk (observed / expected under the region's rate) is also given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from esda import smoothing

from crimelens.drivers.weights import SpatialWeights
from crimelens.exceptions import InputError


def area_rates(
    events: pd.Series, exposure: pd.Series, *, weights: SpatialWeights | None = None, per: float = 1000.0
) -> pd.DataFrame:
    """Counts, raw and empirical-Bayes rates per ``per`` units of exposure, one row per area.

    Parameters
    ----------
    events
        Incident counts per area (index: ``area_id``).
    exposure
        Population (or other exposure) per area, same index; must be positive.
    weights
        Spatial weights for spatial EB (omitted: no ``rate_spatial_eb`` column).
    per
        Rates are per this many units of exposure (1,000 residents by default).
    """
    if len(events) != len(exposure) or not events.index.equals(exposure.index):
        raise InputError("counts and population must cover the same areas in the same order")
    e = events.to_numpy(dtype=float)
    b = exposure.to_numpy(dtype=float)
    if np.isnan(b).any() or (b <= 0).any():
        raise InputError(f"population must be positive in every area ({int((~(b > 0)).sum())} are not)")
    if (e < 0).any():
        raise InputError("counts cannot be negative")
    out = pd.DataFrame({"count": e.astype("int64") if np.allclose(e, np.round(e)) else e, "population": b},
                       index=events.index)
    out["rate"] = e / b * per
    if e.sum() == 0:
        out["rate_global_eb"] = 0.0
        out["excess_risk"] = np.nan
        if weights is not None:
            out["rate_spatial_eb"] = 0.0
        return out
    out["rate_global_eb"] = np.asarray(smoothing.Empirical_Bayes(e, b).r).ravel() * per
    out["excess_risk"] = np.asarray(smoothing.Excess_Risk(e, b).r).ravel()
    if weights is not None:
        out["rate_spatial_eb"] = np.asarray(smoothing.Spatial_Empirical_Bayes(e, b, weights.w).r).ravel() * per
    return out
