"""Area regression models: OLS with spatial diagnostics, spatial lag and error (ML or GMM), count GLMs.

- :class:`OLSModel` — least squares via ``spreg.OLS`` with the diagnostics an analyst reads before
  choosing a spatial model (Anselin 1988; Anselin, Bera, Florax & Yoon 1996): Moran's I of the
  residuals, LM-lag, LM-error and their robust forms, LM-SARMA, Jarque-Bera, Breusch-Pagan,
  Koenker-Bassett and the multicollinearity condition number.
- :class:`SpatialLagModel` — ``y = rho W y + X b + e`` by maximum likelihood (``spreg.ML_Lag``) or
  spatial two-stage least squares (``spreg.GM_Lag``, Kelejian & Prucha 1998).
- :class:`SpatialErrorModel` — ``y = X b + u, u = lambda W u + e`` by ML (``spreg.ML_Error``) or
  heteroskedasticity-robust GMM (``spreg.GM_Error_Het``, Arraiz et al. 2010).
- :class:`CountModel` — Poisson or negative-binomial regression of counts with ``log(population)``
  as offset (statsmodels), since crime counts are counts and areas differ in size.

Every model is scikit-learn style: hyperparameters in ``__init__``, ``fit(data)`` returns ``self``,
and ``result_`` is a :class:`~crimelens.drivers.design.ModelResult`. Coefficients describe
*associations* across areas, not causes.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import Any

import esda
import numpy as np
import spreg
import statsmodels.api as sm
from scipy import stats
from sklearn.base import BaseEstimator

from crimelens.drivers.design import DriverData, ModelResult, coef_table, pair
from crimelens.exceptions import InputError, NotFittedError

CONSTANT = "CONSTANT"


def _need_weights(data: DriverData, model: str) -> Any:
    if data.weights is None:
        raise InputError(f"the {model} model needs spatial weights")
    return data.weights.w


def residual_moran(resid: np.ndarray, data: DriverData, permutations: int = 0) -> dict[str, float] | None:
    """Moran's I of model residuals under the weights (normal approximation), ``None`` without weights."""
    if data.weights is None:
        return None
    mi = esda.Moran(np.asarray(resid, dtype=float).ravel(), data.weights.w, permutations=permutations)
    return {"I": float(mi.I), "expected": float(mi.EI), "z": float(mi.z_norm), "p_value": float(mi.p_norm)}


class _Fitted(BaseEstimator):  # type: ignore[misc]  # sklearn ships no type hints
    """scikit-learn base (``get_params``/``clone``) plus the fitted check shared by driver models."""

    result_: ModelResult

    def _check(self) -> ModelResult:
        if not hasattr(self, "result_"):
            raise NotFittedError(f"{type(self).__name__} is not fitted; call fit() first")
        return self.result_

    @property
    def coefficients_(self) -> Any:
        """The coefficient table of the fitted model."""
        return self._check().coefficients


class OLSModel(_Fitted):
    """Ordinary least squares with spatial diagnostics (see the module docstring)."""

    def __init__(self, *, alpha: float = 0.05) -> None:
        self.alpha = alpha

    def fit(self, data: DriverData) -> OLSModel:
        """Fit on ``data``; spatial diagnostics need ``data.weights``."""
        y = data.y.reshape(-1, 1)
        w = data.weights.w if data.weights is not None else None
        ols = spreg.OLS(y, data.X, w=w, spat_diag=w is not None, moran=w is not None,
                        name_y=data.y_name, name_x=data.x_names)
        n, k = data.X.shape[0], data.X.shape[1] + 1
        names = [CONSTANT, *data.x_names]
        diag: dict[str, Any] = {
            "jarque_bera": {"statistic": float(ols.jarque_bera["jb"]), "p_value": float(ols.jarque_bera["pvalue"])},
            "breusch_pagan": {"statistic": float(ols.breusch_pagan["bp"]),
                              "p_value": float(ols.breusch_pagan["pvalue"])},
            "koenker_bassett": {"statistic": float(ols.koenker_bassett["kb"]),
                                "p_value": float(ols.koenker_bassett["pvalue"])},
            "condition_number": float(ols.mulColli),
        }
        if w is not None:
            mi, z, p = ols.moran_res
            diag["moran_residuals"] = {"I": float(mi), "z": float(z), "p_value": float(p)}
            for key in ("lm_lag", "lm_error", "rlm_lag", "rlm_error", "lm_sarma"):
                diag[key] = pair(getattr(ols, key))
            diag["suggested_model"] = _suggest(diag)
        self.result_ = ModelResult(
            model="ols",
            coefficients=coef_table(names, ols.betas, ols.std_err, df=n - k, alpha=self.alpha),
            fit={"n": float(n), "log_likelihood": float(ols.logll), "aic": float(ols.aic),
                 "schwarz": float(ols.schwarz), "r2": float(ols.r2), "adj_r2": float(ols.ar2),
                 "pseudo_r2": float(ols.r2), "sigma2": float(ols.sig2)},
            diagnostics=diag, residuals=np.asarray(ols.u).ravel(),
        )
        return self


def _suggest(diag: dict[str, Any], level: float = 0.05) -> str:
    """Anselin's decision rule: LM tests, then their robust forms when both are significant."""
    lag, err = diag["lm_lag"]["p_value"] < level, diag["lm_error"]["p_value"] < level
    if lag and err:
        rlag, rerr = diag["rlm_lag"]["p_value"] < level, diag["rlm_error"]["p_value"] < level
        if rlag and not rerr:
            return "lag"
        if rerr and not rlag:
            return "error"
        return "lag" if diag["rlm_lag"]["statistic"] >= diag["rlm_error"]["statistic"] else "error"
    if lag:
        return "lag"
    if err:
        return "error"
    return "ols"


class _SpatialModel(_Fitted):
    kind = ""

    def __init__(self, *, method: str = "ml", alpha: float = 0.05) -> None:
        self.method = method
        self.alpha = alpha

    def _spreg(self, y: np.ndarray, data: DriverData, w: Any) -> Any:
        raise NotImplementedError

    def fit(self, data: DriverData) -> _SpatialModel:
        """Fit on ``data`` (weights required)."""
        if self.method not in ("ml", "gmm"):
            raise InputError(f"method must be ml or gmm, not {self.method!r}")
        w = _need_weights(data, self.kind)
        y = data.y.reshape(-1, 1)
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore", RuntimeWarning)  # scipy tolerance notice inside spreg
            reg = self._spreg(y, data, w)  # spreg prints the estimator name: kept off stdout (--json)
        param = "rho" if self.kind == "lag" else "lambda"
        names = [CONSTANT, *data.x_names, param]
        se = np.sqrt(np.diag(reg.vm))
        table = coef_table(names, reg.betas, se, alpha=self.alpha)
        spatial_value = float(np.asarray(reg.betas).ravel()[-1])
        fit: dict[str, float | None] = {"n": float(data.X.shape[0]), "pseudo_r2": float(reg.pr2)}
        if hasattr(reg, "pr2_e"):
            fit["pseudo_r2_reduced_form"] = float(reg.pr2_e)
        for key, attr in (("log_likelihood", "logll"), ("aic", "aic"), ("schwarz", "schwarz"),
                          ("sigma2", "sig2")):
            value = getattr(reg, attr, None)
            fit[key] = float(np.asarray(value).reshape(-1)[0]) if value is not None else None
        resid = np.asarray(reg.e_filtered if self.kind == "error" and hasattr(reg, "e_filtered") else reg.u).ravel()
        diag: dict[str, Any] = {"moran_residuals": residual_moran(resid, data)}
        if self.method == "ml":
            ols = spreg.OLS(y, data.X)
            lr = 2 * (float(reg.logll) - float(ols.logll))
            diag["likelihood_ratio"] = {"statistic": lr, "p_value": float(stats.chi2.sf(lr, 1))}
        row = table[table["name"] == param].iloc[0]
        self.result_ = ModelResult(
            model=f"{self.kind}_{self.method}", coefficients=table, fit=fit, diagnostics=diag,
            spatial={param: spatial_value, f"{param}_std_error": float(row["std_error"]),
                     f"{param}_p_value": float(row["p_value"])},
            residuals=resid, params={"method": self.method},
        )
        return self


class SpatialLagModel(_SpatialModel):
    """Spatial lag (SAR) model, ML or GMM (see the module docstring)."""

    kind = "lag"

    def _spreg(self, y: np.ndarray, data: DriverData, w: Any) -> Any:
        if self.method == "ml":
            return spreg.ML_Lag(y, data.X, w=w, name_y=data.y_name, name_x=data.x_names)
        return spreg.GM_Lag(y, data.X, w=w, name_y=data.y_name, name_x=data.x_names)


class SpatialErrorModel(_SpatialModel):
    """Spatial error (SEM) model, ML or heteroskedasticity-robust GMM (see the module docstring)."""

    kind = "error"

    def _spreg(self, y: np.ndarray, data: DriverData, w: Any) -> Any:
        if self.method == "ml":
            return spreg.ML_Error(y, data.X, w=w, name_y=data.y_name, name_x=data.x_names)
        return spreg.GM_Error_Het(y, data.X, w=w, name_y=data.y_name, name_x=data.x_names)


class CountModel(_Fitted):
    """Poisson or negative-binomial GLM of counts with a ``log(exposure)`` offset.

    ``family="auto"`` fits Poisson and switches to negative binomial when the Pearson dispersion
    exceeds ``dispersion_limit`` (reported in the notes). Coefficients are on the log scale; the
    table adds ``rate_ratio = exp(estimate)`` with its interval.
    """

    def __init__(self, *, family: str = "auto", alpha: float = 0.05, dispersion_limit: float = 1.5) -> None:
        self.family = family
        self.alpha = alpha
        self.dispersion_limit = dispersion_limit

    def fit(self, data: DriverData) -> CountModel:
        """Fit on ``data`` (``y`` must be non-negative integers)."""
        if self.family not in ("auto", "poisson", "negbin"):
            raise InputError(f"family must be auto, poisson or negbin, not {self.family!r}")
        y = data.y
        if (y < 0).any() or not np.allclose(y, np.round(y)):
            raise InputError(f"a count model needs non-negative whole numbers; {data.y_name!r} is not a count")
        X = sm.add_constant(data.X, has_constant="add")
        offset = np.log(data.offset) if data.offset is not None else None
        notes: list[str] = []
        pois = sm.GLM(y, X, family=sm.families.Poisson(), offset=offset).fit()
        dispersion = float(pois.pearson_chi2 / pois.df_resid)
        family = self.family
        if family == "auto":
            family = "negbin" if dispersion > self.dispersion_limit else "poisson"
            notes.append(f"Pearson dispersion {dispersion:.2f} under Poisson: used {family}")
        names = [CONSTANT, *data.x_names]
        alpha_nb: float | None = None
        if family == "poisson":
            res: Any = pois
            params, bse = np.asarray(pois.params), np.asarray(pois.bse)
            llnull = float(pois.llnull)
        else:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # convergence chatter; checked below
                res = sm.NegativeBinomial(y, X, offset=offset).fit(disp=0, maxiter=500)
            if not res.mle_retvals.get("converged", True):
                notes.append("negative binomial fit did not fully converge")
            params, bse = np.asarray(res.params)[:-1], np.asarray(res.bse)[:-1]
            alpha_nb = float(np.asarray(res.params)[-1])
            llnull = float(res.llnull)
        table = coef_table(names, params, bse, alpha=self.alpha)
        table["rate_ratio"] = np.exp(table["estimate"])
        table["rr_ci_low"], table["rr_ci_high"] = np.exp(table["ci_low"]), np.exp(table["ci_high"])
        mu = np.asarray(res.predict(X, offset=offset) if family == "negbin" else pois.mu)
        pearson = (y - mu) / np.sqrt(mu if family == "poisson" else mu + (alpha_nb or 0) * mu**2)
        llf = float(res.llf)
        fit: dict[str, float | None] = {
            "n": float(len(y)), "log_likelihood": llf, "aic": float(res.aic), "bic": float(res.bic),
            "pseudo_r2": 1 - llf / llnull if llnull else None, "dispersion_poisson": dispersion,
            "nb_alpha": alpha_nb,
        }
        self.result_ = ModelResult(
            model=f"glm_{family}", coefficients=table, fit=fit,
            diagnostics={"moran_residuals": residual_moran(pearson, data)}, residuals=pearson,
            params={"family": family, "offset": data.offset_name}, notes=notes,
        )
        return self
