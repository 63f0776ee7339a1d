"""Control of multiple testing across all the comparisons of a scan.

A scan of 300 beats × 20 categories makes 6,000 comparisons; testing each at 5 % would raise 300
false alerts a week. The Benjamini–Hochberg step-up procedure controls the false discovery rate
-- the expected share of raised alerts that are false -- at ``q`` for independent or positively
dependent p-values; under the complete null (no real spike anywhere) it also bounds the chance of
raising *any* alert by ``q``. Benjamini–Yekutieli is valid under any dependence at a cost in
power, and Bonferroni controls the family-wise error rate.

References
----------
Benjamini, Y. & Hochberg, Y. (1995). Controlling the false discovery rate: a practical and powerful
approach to multiple testing. *JRSS B* 57(1), 289-300.
Benjamini, Y. & Yekutieli, D. (2001). The control of the false discovery rate in multiple testing
under dependency. *Annals of Statistics* 29(4), 1165-1188.
"""

from __future__ import annotations

from typing import Final, Literal

import numpy as np
import numpy.typing as npt

from crimelens.exceptions import InputError

Correction = Literal["bh", "by", "bonferroni"]
CORRECTIONS: Final = ("bh", "by", "bonferroni")


def adjust(p_values: npt.ArrayLike, method: Correction = "bh") -> npt.NDArray[np.float64]:
    """Adjusted p-values (q-values for BH/BY), same order as the input; NaNs stay NaN and are not counted."""
    if method not in CORRECTIONS:
        raise InputError(f"correction must be one of {', '.join(CORRECTIONS)}, got {method!r}")
    p = np.asarray(p_values, dtype=np.float64)
    out = np.full(p.shape, np.nan)
    ok = ~np.isnan(p)
    m = int(ok.sum())
    if m == 0:
        return out
    pv = p[ok]
    if method == "bonferroni":
        out[ok] = np.minimum(pv * m, 1.0)
        return out
    order = np.argsort(pv, kind="stable")
    ranked = pv[order] * m / np.arange(1, m + 1)
    if method == "by":
        ranked *= float(np.sum(1.0 / np.arange(1, m + 1)))
    q = np.minimum.accumulate(ranked[::-1])[::-1]
    adj = np.empty(m)
    adj[order] = np.minimum(q, 1.0)
    out[ok] = adj
    return out


def reject(p_values: npt.ArrayLike, alpha: float, method: Correction = "bh") -> npt.NDArray[np.bool_]:
    """Which hypotheses are rejected at level ``alpha`` (FDR for BH/BY, FWER for Bonferroni)."""
    if not 0 < alpha < 1:
        raise InputError(f"alpha must be in (0, 1), got {alpha}")
    q = adjust(p_values, method)
    return np.asarray(np.nan_to_num(q, nan=1.0) <= alpha, dtype=np.bool_)
