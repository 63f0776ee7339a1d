"""Geographically weighted regression (GWR) and multiscale GWR (MGWR) via ``mgwr``.

GWR (Brunsdon, Fotheringham & Charlton 1996) fits one weighted least-squares regression per area,
weighting the others by an adaptive bisquare kernel over the nearest ``bw`` centroids; the bandwidth
is chosen by golden-section search on AICc. MGWR (Fotheringham, Yang & Kang 2017) lets each covariate
have its own bandwidth (back-fitting); its variables are standardised first, so its coefficients are
in standard deviations.

Local t values are judged against the **corrected critical value** of da Silva & Fotheringham (2016),
which controls the family-wise error rate over the effective number of parameters
(``results.critical_tval()``); the share of areas where each local coefficient passes it is
reported, with the local estimates per area for maps.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import numpy as np
import pandas as pd
from mgwr.gwr import GWR, MGWR
from mgwr.sel_bw import Sel_BW
from scipy import stats

from crimelens.drivers.design import DriverData, ModelResult
from crimelens.drivers.regression import CONSTANT, _Fitted, residual_moran
from crimelens.exceptions import InputError


class GWRModel(_Fitted):
    """GWR (``multiscale=False``) or MGWR (``multiscale=True``) with AICc bandwidth selection.

    Parameters
    ----------
    multiscale
        Fit MGWR (one bandwidth per covariate) instead of GWR.
    kernel
        ``bisquare`` (default), ``gaussian`` or ``exponential``.
    fixed
        Fixed-distance kernel instead of adaptive nearest-neighbour.
    alpha
        Significance level before the multiple-testing correction.
    bandwidth
        GWR only: use this bandwidth (neighbours, or distance when ``fixed``) instead of searching.
    max_iter
        MGWR only: most back-fitting iterations.
    """

    def __init__(self, *, multiscale: bool = False, kernel: str = "bisquare", fixed: bool = False,
                 alpha: float = 0.05, bandwidth: float | None = None, max_iter: int = 50) -> None:
        self.multiscale = multiscale
        self.kernel = kernel
        self.fixed = fixed
        self.alpha = alpha
        self.bandwidth = bandwidth
        self.max_iter = max_iter

    def fit(self, data: DriverData) -> GWRModel:
        """Select bandwidth(s) and fit on ``data`` (``coords`` required)."""
        if data.coords is None:
            raise InputError("GWR needs area centroids")
        n, k = data.X.shape
        if n < 4 * (k + 1):
            raise InputError(f"GWR needs at least {4 * (k + 1)} areas for {k} covariate(s); the layer has {n}")
        y = data.y.reshape(-1, 1)
        X = data.X
        notes: list[str] = []
        if self.multiscale:
            y = (y - y.mean()) / y.std()
            X = (X - X.mean(axis=0)) / X.std(axis=0)
            notes.append("MGWR variables are standardised (z-scores): coefficients are in standard deviations")
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")  # and mgwr's progress bars kept off the terminal
            selector = Sel_BW(data.coords, y, X, kernel=self.kernel, fixed=self.fixed, multi=self.multiscale,
                              n_jobs=1)
            if self.multiscale:
                bws = np.atleast_1d(selector.search(multi_bw_min=[2], max_iter_multi=self.max_iter))
                res: Any = MGWR(data.coords, y, X, selector, kernel=self.kernel, fixed=self.fixed, n_jobs=1).fit()
            else:
                bw = float(self.bandwidth) if self.bandwidth is not None else float(selector.search())
                bws = np.full(k + 1, bw)
                res = GWR(data.coords, y, X, bw, kernel=self.kernel, fixed=self.fixed, n_jobs=1).fit()
        # da Silva & Fotheringham (2016): alpha / (ENP / p) for GWR, alpha / ENP_j per covariate for MGWR.
        # (mgwr's critical_tval(alpha) skips the correction when alpha is given, so it is computed here.)
        enp = np.asarray(res.ENP_j, dtype=float) if self.multiscale else np.full(k + 1, float(res.ENP) / (k + 1))
        adj_alpha = self.alpha / enp
        crit = stats.t.ppf(1 - adj_alpha / 2, n - 1)
        names = [CONSTANT, *data.x_names]
        params, tvals = np.asarray(res.params), np.asarray(res.tvalues)
        significant = np.abs(tvals) > crit[None, :]
        table = pd.DataFrame({
            "name": names, "bandwidth": bws, "mean": params.mean(axis=0), "std": params.std(axis=0),
            "min": params.min(axis=0), "median": np.median(params, axis=0), "max": params.max(axis=0),
            "adjusted_alpha": adj_alpha, "critical_t": crit, "share_significant": significant.mean(axis=0),
            "share_positive_significant": (significant & (params > 0)).mean(axis=0),
            "share_negative_significant": (significant & (params < 0)).mean(axis=0),
        })
        local = pd.DataFrame({"area_id": data.ids})
        for j, name in enumerate(names):
            local[f"b_{name}"] = params[:, j]
            local[f"t_{name}"] = tvals[:, j]
            local[f"sig_{name}"] = significant[:, j]
        if not self.multiscale:
            local["local_r2"] = np.asarray(res.localR2).ravel()
        resid = np.asarray(res.resid_response).ravel()
        fit: dict[str, float | None] = {
            "n": float(n), "log_likelihood": float(res.llf), "aic": float(res.aic), "aicc": float(res.aicc),
            "r2": float(res.R2), "adj_r2": float(res.adj_R2), "pseudo_r2": float(res.R2),
            "effective_parameters": float(res.tr_S), "sigma2": float(res.sigma2),
        }
        self.result_ = ModelResult(
            model="mgwr" if self.multiscale else "gwr", coefficients=table, fit=fit,
            diagnostics={"moran_residuals": residual_moran(resid, data)}, residuals=resid, local=local,
            params={"kernel": self.kernel, "fixed": self.fixed, "criterion": "AICc", "alpha": self.alpha,
                    "bandwidths": dict(zip(names, map(float, bws), strict=True))},
            notes=notes,
        )
        return self
