"""Risk terrain modelling (Caplan & Kennedy): which features of the environment go with crime.

Risk terrain modelling (RTM; Caplan, Kennedy & Miller 2011, *Justice Quarterly* 28; Caplan &
Kennedy 2016, *Risk Terrain Modeling: Crime Prediction and Risk Reduction*) describes each cell
of a grid over the study area by the environmental features around it and asks which of them go
with more crime. The steps, as in the RTMDx software:

1. **Risk factors.** Each environmental layer (points or lines: bars, transit stops, main roads)
   is *operationalised* in two ways at several spatial influence bands ``b`` (multiples of the cell
   size): **proximity** -- the cell centre lies within ``b`` metres of a feature -- and
   **density** -- the quartic kernel density of the features with bandwidth ``b`` is above its
   mean plus two standard deviations over the study cells. Every candidate is a 0/1 indicator.
2. **Selection.** An L1-penalised (lasso) Poisson regression of the cell counts on all candidates,
   with the penalty chosen by K-fold cross-validated deviance (``glum``; the folds are contiguous
   blocks of row-major cells, i.e. spatial strips), keeps the informative candidates; of each layer
   only the operationalisation with the largest penalised effect survives.
3. **Refit.** An unpenalised count model on the kept factors (negative binomial when the
   likelihood-ratio test of its dispersion against Poisson rejects at 5 %, Poisson otherwise),
   reduced by backward elimination on BIC. Each factor's **relative risk value** is
   ``RRV = exp(beta)`` with its Wald 95 % interval: cells where the factor is present have RRV
   times the expected count of cells where it is not, the others held equal.
4. **Risk terrain.** The **relative risk score** of a cell is the product of the RRVs of the
   factors present there, ``exp(sum beta_j x_j)``; 1 is a cell with none of them.

These are associations between places and counts, not causes: a factor with RRV > 1 is a place
where crime concentrates, possibly because of things that come with that kind of place.
Held-out evaluation (:func:`evaluate_terrain`) ranks cells by the score and reports the hit rate
and PAI of later incidents in the top cells against a retrospective-count baseline, with the
metrics of :mod:`crimelens.forecast.evaluation.metrics`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import BaseEstimator
from threadpoolctl import threadpool_limits

from crimelens.analysis.units import UnitCounts
from crimelens.exceptions import InputError, NotFittedError
from crimelens.forecast.evaluation.metrics import score_coverage

FloatArray = npt.NDArray[np.float64]
FactorKind = Literal["proximity", "density"]
Family = Literal["auto", "poisson", "negative_binomial"]

#: A refitted log-effect with a larger standard error is not estimable (quasi-separation).
_MAX_SE = 10.0
_POINT_LINE = ("Point", "MultiPoint", "LineString", "MultiLineString", "LinearRing")


# --------------------------------------------------------------------------- layers


@dataclass(frozen=True, eq=False)
class RiskLayer:
    """An environmental layer of points or lines in the analysis CRS (metres).

    Build it with :func:`layer_from_frame` or :func:`read_layer`, which validate the geometry.
    """

    name: str
    geometry: Any  # geopandas.GeoSeries of Point/LineString parts in ``crs``
    crs: str

    @property
    def n_features(self) -> int:
        """Number of point or line parts."""
        return len(self.geometry)

    @property
    def geom_kind(self) -> str:
        """``points``, ``lines`` or ``points+lines``."""
        kinds = {"lines" if "Line" in t else "points" for t in self.geometry.geom_type.unique()}
        return "+".join(sorted(kinds))


def layer_from_frame(name: str, frame: Any, crs: str) -> RiskLayer:
    """Validate a GeoDataFrame/GeoSeries of points or lines and project it to ``crs``.

    Raises :class:`InputError` for an empty layer, a layer without a CRS, or any polygon or
    collection geometry (RTM layers are point or line features; give polygons as centroids or
    boundaries).
    """
    import geopandas as gpd

    geom = frame.geometry if isinstance(frame, gpd.GeoDataFrame) else gpd.GeoSeries(frame)
    geom = geom[geom.notna() & ~geom.is_empty]
    if len(geom) == 0:
        raise InputError(f"layer {name!r} has no features")
    bad = sorted(set(geom.geom_type) - set(_POINT_LINE))
    if bad:
        raise InputError(f"layer {name!r} has {', '.join(bad)} geometries: RTM layers must be points or lines")
    if geom.crs is None:
        raise InputError(f"layer {name!r} has no CRS")
    parts = geom.to_crs(crs).explode(index_parts=False).reset_index(drop=True)
    return RiskLayer(name=name, geometry=parts, crs=crs)


def read_layer(path: str | Path, crs: str, *, name: str | None = None) -> RiskLayer:
    """Read a point or line layer (GeoJSON, GeoPackage, shapefile...) and project it to ``crs``."""
    import geopandas as gpd

    p = Path(path)
    if not p.exists():
        raise InputError(f"{p}: no such layer file")
    try:
        frame = gpd.read_file(p)
    except Exception as exc:  # pyogrio raises many driver-specific types; report one line
        raise InputError(f"{p}: cannot read as a vector layer ({str(exc).splitlines()[0]})") from exc
    return layer_from_frame(name or p.stem, frame, crs)


# --------------------------------------------------------------------------- risk factors


@dataclass(frozen=True, slots=True)
class Candidate:
    """One operationalisation of a layer: ``kind`` at spatial influence ``band`` metres."""

    layer: str
    kind: FactorKind
    band: float

    @property
    def name(self) -> str:
        """Column name, e.g. ``bars:proximity:200m``."""
        return f"{self.layer}:{self.kind}:{self.band:g}m"


def _sample_points(layer: RiskLayer, step: float) -> tuple[FloatArray, FloatArray]:
    """Feature mass as points: each point weight 1, each line sampled every ``step`` m (weight = m)."""
    import shapely

    geoms = np.asarray(layer.geometry.values, dtype=object)
    kinds = shapely.get_type_id(geoms)
    pts = geoms[kinds == 0]
    xy = [shapely.get_coordinates(pts)] if len(pts) else []
    w = [np.ones(len(pts))]
    for line in geoms[kinds != 0]:
        n = max(1, int(np.ceil(line.length / step)))
        at = (np.arange(n) + 0.5) * (line.length / n)
        xy.append(shapely.get_coordinates(shapely.line_interpolate_point(line, at)))
        w.append(np.full(n, line.length / n))
    return np.vstack(xy) if xy else np.empty((0, 2)), np.concatenate(w)


def _distances(layer: RiskLayer, x: FloatArray, y: FloatArray, max_distance: float) -> FloatArray:
    """Distance from each point to the nearest feature (``inf`` beyond ``max_distance``)."""
    import shapely

    tree = shapely.STRtree(np.asarray(layer.geometry.values, dtype=object))
    pts = shapely.points(x, y)
    (src, _), dist = tree.query_nearest(pts, max_distance=max_distance, return_distance=True, all_matches=False)
    out = np.full(len(x), np.inf)
    out[src] = dist
    return out


def _density(layer: RiskLayer, x: FloatArray, y: FloatArray, bandwidth: float, step: float) -> FloatArray:
    """Quartic kernel density of the layer's features at the points (features per unit area, unscaled)."""
    from scipy.spatial import cKDTree

    xy, w = _sample_points(layer, step)
    cells = cKDTree(np.column_stack([x, y]))
    d = cKDTree(xy).sparse_distance_matrix(cells, bandwidth, output_type="coo_matrix")
    k = (1.0 - (d.data / bandwidth) ** 2) ** 2 * w[d.row]
    return np.bincount(d.col, weights=k, minlength=len(x)).astype(float)


def risk_factors(
    units: UnitCounts, layers: Sequence[RiskLayer], *, bands: Sequence[float] = (1.0, 2.0, 3.0),
    kinds: Sequence[FactorKind] = ("proximity", "density"),
) -> tuple[pd.DataFrame, list[Candidate], list[str]]:
    """Candidate 0/1 risk factors of every layer for every unit.

    Parameters
    ----------
    units : UnitCounts
        Grid cells of the study area (``kind == "grid"``).
    layers : sequence of RiskLayer
        Environmental layers in the units' CRS.
    bands : sequence of float
        Spatial influence bands as multiples of the cell size.
    kinds : sequence of {"proximity", "density"}
        Operationalisations to build.

    Returns
    -------
    factors : DataFrame
        One 0/1 column per kept candidate, one row per unit.
    candidates : list of Candidate
        The kept candidates, in column order.
    dropped : list of str
        Candidates dropped, with the reason (present everywhere or nowhere, or a duplicate).
    """
    if units.kind != "grid" or units.grid is None:
        raise InputError("risk terrain modelling needs square grid cells")
    if not layers:
        raise InputError("give at least one environmental layer")
    if not bands or min(bands) <= 0:
        raise InputError("spatial influence bands must be positive multiples of the cell size")
    names = [lay.name for lay in layers]
    if len(set(names)) != len(names):
        raise InputError(f"layer names must be unique, got {', '.join(names)}")
    cell = units.grid.cell_size
    metres = sorted({float(b) * cell for b in bands})
    g = units.grid
    ext = (g.x0 - metres[-1], g.y0 - metres[-1], g.x0 + g.nx * cell + metres[-1], g.y0 + g.ny * cell + metres[-1])
    cols: dict[str, npt.NDArray[np.int8]] = {}
    kept: list[Candidate] = []
    dropped: list[str] = []
    for lay in layers:
        if lay.crs != units.crs:
            raise InputError(f"layer {lay.name!r} is in {lay.crs}, the cells in {units.crs}")
        minx, miny, maxx, maxy = lay.geometry.total_bounds
        if maxx < ext[0] or minx > ext[2] or maxy < ext[1] or miny > ext[3]:
            raise InputError(f"layer {lay.name!r} lies entirely outside the study area")
        dist = _distances(lay, units.x, units.y, metres[-1]) if "proximity" in kinds else None
        for b in metres:
            for kind in kinds:
                cand = Candidate(lay.name, kind, b)
                if kind == "proximity" and dist is not None:
                    col = (dist <= b).astype(np.int8)
                else:
                    dens = _density(lay, units.x, units.y, b, cell / 4.0)
                    col = (dens > dens.mean() + 2.0 * dens.std()).astype(np.int8)
                share = col.mean()
                if share in (0.0, 1.0):
                    dropped.append(f"{cand.name}: {'no' if share == 0 else 'every'} cell has it")
                    continue
                same = next((k for k, v in cols.items() if np.array_equal(v, col)), None)
                if same is not None:
                    dropped.append(f"{cand.name}: same cells as {same}")
                    continue
                cols[cand.name] = col
                kept.append(cand)
    if not kept:
        raise InputError("no layer gives a risk factor that varies over the study area")
    return pd.DataFrame(cols, index=pd.Index(units.ids, name="cell_id")), kept, dropped


# --------------------------------------------------------------------------- the model


def _count_fit(y: FloatArray, x: pd.DataFrame, family: str) -> Any:
    """Unpenalised Poisson or NB2 fit (statsmodels) with an intercept."""
    import warnings

    import statsmodels.api as sm

    design = sm.add_constant(x.astype(float), has_constant="add")
    with warnings.catch_warnings(), threadpool_limits(1):
        warnings.simplefilter("ignore")
        if family == "poisson":
            fit = sm.Poisson(y, design).fit(disp=0, maxiter=200)
        else:
            fit = sm.NegativeBinomial(y, design, loglike_method="nb2").fit(disp=0, maxiter=500)
        _ = (fit.llf, fit.bic, fit.aic, fit.bse, fit.pvalues, fit.prsquared)  # cached while warnings are off
    return fit


class RiskTerrainModel(BaseEstimator):  # type: ignore[misc]
    """Caplan & Kennedy risk terrain model over grid cells (see the module docstring).

    A scikit-learn estimator: ``clone`` and ``get_params`` work; learned state ends in ``_``.

    Parameters
    ----------
    bands : sequence of float
        Spatial influence bands, in multiples of the cell size (default 1, 2, 3 cells).
    kinds : sequence of {"proximity", "density"}
        Operationalisations tried for every layer.
    family : {"auto", "poisson", "negative_binomial"}
        Count model of the refit; ``auto`` chooses negative binomial when overdispersed.
    cv : int
        Folds of the cross-validation of the lasso penalty.
    n_alphas : int
        Penalties on the lasso path.
    """

    def __init__(self, *, bands: Sequence[float] = (1.0, 2.0, 3.0),
                 kinds: Sequence[FactorKind] = ("proximity", "density"), family: Family = "auto",
                 cv: int = 5, n_alphas: int = 20) -> None:
        self.bands = bands
        self.kinds = kinds
        self.family = family
        self.cv = cv
        self.n_alphas = n_alphas

    def fit(self, units: UnitCounts, layers: Sequence[RiskLayer]) -> RiskTerrainModel:
        """Build the candidate factors, select them and refit on ``units.counts``."""
        if self.family not in ("auto", "poisson", "negative_binomial"):
            raise InputError(f"unknown family {self.family!r}: use auto, poisson or negative_binomial")
        y = np.asarray(units.counts, dtype=float)
        if y.sum() <= 0:
            raise InputError("no incidents in the study area to model")
        x, cands, dropped = risk_factors(units, layers, bands=self.bands, kinds=self.kinds)
        coef, alpha = self._lasso(x, y)
        table = pd.DataFrame({
            "factor": [c.name for c in cands], "layer": [c.layer for c in cands],
            "type": [c.kind for c in cands], "band_m": [c.band for c in cands],
            "share_of_cells": x.mean().to_numpy(), "lasso_coef": coef,
        })
        table["lasso_selected"] = np.abs(coef) > 1e-8
        best = table[table["lasso_selected"]].assign(mag=lambda t: t["lasso_coef"].abs())
        keep = best.sort_values("mag", ascending=False).drop_duplicates("layer")["factor"].tolist()
        family = self._family(y, x[keep])
        keep, fit = self._eliminate(y, x, keep, family, dropped)
        table["in_model"] = table["factor"].isin(keep)
        self.candidates_ = table
        self.dropped_ = dropped
        self.alpha_ = alpha
        self.family_ = family
        self.design_ = x
        self.selected_ = keep
        self.result_ = fit
        self.factors_ = self._factor_table(fit, keep, cands)
        return self

    def _lasso(self, x: pd.DataFrame, y: FloatArray) -> tuple[FloatArray, float]:
        import warnings

        from glum import GeneralizedLinearRegressorCV
        from sklearn.model_selection import KFold

        folds = max(2, min(self.cv, int((y > 0).sum())))
        model = GeneralizedLinearRegressorCV(family="poisson", l1_ratio=1.0, n_alphas=self.n_alphas,
                                             cv=KFold(folds), scale_predictors=True, min_alpha_ratio=1e-3)
        # one thread: the small dense problem gains nothing from OpenMP, and spin-waiting threads
        # make it ten times slower on a loaded machine
        with warnings.catch_warnings(), threadpool_limits(1):
            warnings.simplefilter("ignore")
            model.fit(x.to_numpy(float), y)
        return np.asarray(model.coef_, dtype=float), float(model.alpha_)

    def _family(self, y: FloatArray, x: pd.DataFrame) -> str:
        if self.family != "auto":
            return self.family
        from scipy.stats import chi2

        try:
            llf_nb = float(_count_fit(y, x, "negative_binomial").llf)
        except (np.linalg.LinAlgError, ValueError):
            return "poisson"
        lr = 2.0 * (llf_nb - float(_count_fit(y, x, "poisson").llf))
        p = 0.5 * float(chi2.sf(max(lr, 0.0), 1))  # the dispersion sits on the boundary (Self & Liang 1987)
        return "negative_binomial" if np.isfinite(lr) and p < 0.05 else "poisson"

    @staticmethod
    def _eliminate(y: FloatArray, x: pd.DataFrame, keep: list[str], family: str,
                   notes: list[str]) -> tuple[list[str], Any]:
        """Backward elimination on BIC, after dropping factors whose effect cannot be estimated."""
        fit = _count_fit(y, x[keep], family)
        while True:
            se = np.asarray(fit.bse, dtype=float)[1:1 + len(keep)]
            bad = [k for k, s in zip(keep, se, strict=True) if not np.isfinite(s) or s > _MAX_SE]
            if not bad:
                break
            notes.extend(f"{k}: not estimable (its cells hold almost no incidents: separation)" for k in bad)
            keep = [k for k in keep if k not in bad]
            fit = _count_fit(y, x[keep], family)
        while keep:
            trials = [(float(_count_fit(y, x[[k for k in keep if k != f]], family).bic), f) for f in keep]
            bic, worst = min(trials)
            if not bic < float(fit.bic):
                break
            keep = [k for k in keep if k != worst]
            fit = _count_fit(y, x[keep], family)
        return keep, fit

    @staticmethod
    def _factor_table(fit: Any, keep: list[str], cands: list[Candidate]) -> pd.DataFrame:
        by_name = {c.name: c for c in cands}
        ci = np.asarray(fit.conf_int(0.05))
        params, se, p = (np.asarray(v, dtype=float) for v in (fit.params, fit.bse, fit.pvalues))
        rows = []
        for i, name in enumerate(keep, start=1):
            c = by_name[name]
            rows.append({"factor": name, "layer": c.layer, "type": c.kind, "band_m": c.band,
                         "coefficient": params[i], "se": se[i], "rrv": float(np.exp(params[i])),
                         "rrv_low": float(np.exp(ci[i, 0])), "rrv_high": float(np.exp(ci[i, 1])), "p": p[i]})
        cols = ["factor", "layer", "type", "band_m", "coefficient", "se", "rrv", "rrv_low", "rrv_high", "p"]
        return pd.DataFrame(rows, columns=cols).sort_values("rrv", ascending=False, ignore_index=True)

    def _check(self) -> None:
        if not hasattr(self, "result_"):
            raise NotFittedError("RiskTerrainModel is not fitted: call fit(units, layers) first")

    def risk_score(self) -> FloatArray:
        """Relative risk score of each fitted cell: the product of the RRVs of its factors."""
        self._check()
        beta = np.asarray(self.result_.params, dtype=float)[1:1 + len(self.selected_)]
        x = self.design_[self.selected_].to_numpy(float)
        return np.exp(x @ beta) if self.selected_ else np.ones(len(self.design_))

    def expected(self) -> FloatArray:
        """Expected incidents per fitted cell under the refitted model."""
        self._check()
        return np.asarray(np.exp(float(np.asarray(self.result_.params)[0])) * self.risk_score(), dtype=float)

    def fit_statistics(self) -> dict[str, Any]:
        """Model, penalty, log-likelihood, AIC, BIC, pseudo-R² and the NB dispersion."""
        self._check()
        r = self.result_
        stats: dict[str, Any] = {
            "family": self.family_, "lasso_alpha": self.alpha_, "cells": len(self.design_),
            "incidents": float(r.model.endog.sum()), "candidates": len(self.candidates_),
            "lasso_selected": int(self.candidates_["lasso_selected"].sum()), "in_model": len(self.selected_),
            "log_likelihood": float(r.llf), "aic": float(r.aic), "bic": float(r.bic),
            "pseudo_r2": float(r.prsquared), "intercept": float(np.asarray(r.params)[0]),
        }
        if self.family_ == "negative_binomial":
            stats["nb_alpha"] = float(np.asarray(r.params)[-1])
        return stats


def evaluate_terrain(score: FloatArray, observed: FloatArray, baseline: FloatArray,
                     coverages: Sequence[float] = (0.05, 0.10)) -> pd.DataFrame:
    """Hit rate and PAI of later incidents in the top cells by ``score`` and by ``baseline``.

    ``baseline`` is the retrospective count of the fitting period (the standard comparison); ties
    in either score are resolved by expectation.
    """
    if float(np.sum(observed)) <= 0:
        raise InputError("no held-out incidents in the study area to evaluate on")
    rows = []
    for cov in coverages:
        for name, s in (("rtm", score), ("retro_count", baseline)):
            sc = score_coverage(np.asarray(s, float), np.asarray(observed, float), cov)
            rows.append({"model": name, "coverage": cov, "cells": sc.k, "hit_rate": sc.hit_rate,
                         "pai": sc.pai, "oracle_pai": sc.oracle_pai})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------- reporting


def _cell_text(v: Any) -> str:
    if isinstance(v, float | np.floating):
        f = float(v)
        if not np.isfinite(f):
            return "–"
        return f"{f:.2e}" if f != 0 and abs(f) < 1e-3 else f"{f:.3f}"
    return str(v)


def markdown_table(frame: pd.DataFrame) -> str:
    """A pipe table of ``frame`` (floats to three decimals, small p-values in e-notation)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    rows = ["| " + " | ".join(_cell_text(v) for v in row) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *rows]) if rows else head + "\n" + rule + "\n| (none) |"


def summary_markdown(model: RiskTerrainModel, evaluation: pd.DataFrame | None, meta: dict[str, Any]) -> str:
    """A plain-language summary of a fitted model: what was modelled, what was kept, how it predicts."""
    stats = model.fit_statistics()
    fam = "negative binomial" if stats["family"] == "negative_binomial" else "Poisson"
    lines = [
        f"# Risk terrain model: {meta.get('category', 'incidents')}", "",
        f"{stats['incidents']:.0f} incidents ({meta.get('fit_period', '')}) over {stats['cells']} cells of "
        f"{meta.get('cell_m', 0):g} m in {meta.get('crs', '')}. Layers: "
        + ", ".join(f"{k} ({v['features']} {v['geometry']})" for k, v in meta.get("layers", {}).items()) + ".",
        "",
        f"{stats['candidates']} candidate risk factors (proximity and density at bands of "
        f"{', '.join(f'{b:g}' for b in meta.get('bands_cells', []))} cells); the cross-validated lasso "
        f"(alpha {stats['lasso_alpha']:.3g}) kept {stats['lasso_selected']}, and the {fam} refit reduced by "
        f"BIC kept {stats['in_model']} (pseudo-R² {stats['pseudo_r2']:.3f}, AIC {stats['aic']:.1f}).", "",
    ]
    for r in model.factors_.to_dict("records"):
        where = "within" if r["type"] == "proximity" else "in a high-density area (bandwidth)"
        lines.append(f"- **{r['factor']}**: cells {where} {r['band_m']:g} m of layer {r['layer']} have "
                     f"{r['rrv']:.2f} times (95 % CI {r['rrv_low']:.2f}–{r['rrv_high']:.2f}) the expected incidents "
                     f"of cells without it, the other factors held equal (p = {_cell_text(float(r['p']))}).")
    if model.factors_.empty:
        lines.append("- No layer is associated with the counts beyond chance.")
    if evaluation is not None:
        lines += ["", f"Held-out incidents ({meta.get('test_period', '')}, {meta.get('test_incidents', 0)}) in "
                  "the top cells by relative risk score, against the fitting period's counts (retro_count):", "",
                  markdown_table(evaluation)]
    lines += [
        "", "## Reading this", "",
        "Relative risk values are associations between kinds of place and incident counts, not causes: a "
        "factor with RRV above 1 marks places where crime concentrates, possibly because of what comes with "
        "that kind of place (footfall, guardianship, reporting). Results depend on the cell size, the bands "
        "and the study area (modifiable areal unit problem), and say nothing about individuals. Layers built "
        "from police records themselves carry the biases of those records.",
    ]
    dropped = model.dropped_
    if dropped:
        lines += ["", f"Candidates not tried ({len(dropped)}): " + "; ".join(dropped[:12])
                  + (" …" if len(dropped) > 12 else "")]
    return "\n".join(lines) + "\n"
