"""Bias audits of risk surfaces and patrol selections (SECURITY.md BIA-03, BIA-04).

A forecast becomes a decision when its riskiest cells are selected for attention (the top
``coverage`` share of the study area). The audit asks, for groups of the population (areas such as
neighbourhoods, or a demographic layer supplied by the user), four questions:

* **Allocation.** Does each group receive a share of the selection in line with its share of the
  population? ``ratio = allocation share / population share`` (equal to the group's selection rate
  over the overall rate) is flagged below 0.8 (the four-fifths rule of the US Uniform Guidelines on
  Employee Selection Procedures, 29 CFR 1607.4D) and above 1.25 (its reciprocal).
* **Calibration.** Are the expected counts right *per group* in a held-out window: observed over
  predicted, and the mean Poisson deviance per cell, by group.
* **Concentration.** How unequal is per-capita exposure: the population-weighted Gini of the
  selection rates across groups, and the share of the selection that goes to the top group.
* **Accuracy per group.** Hit rate and PAI inside each group (as in
  :mod:`crimelens.forecast.evaluation.metrics`, restricted to the group's cells).

Group membership is a matrix ``W`` of cells × groups: ``W[i, g]`` is the population (or, without a
population layer, 1) of group ``g`` in cell ``i``. A cell shared by groups is apportioned by
``W[i, g] / Σ_g W[i, g]`` for counts and areas. Per-group values are computed with fairlearn's
:class:`~fairlearn.metrics.MetricFrame` on the long (cell, group) table.

Ties at the selection threshold are resolved by expectation (a tied cell is selected with the
probability random tie-breaking gives it), as in the forecast metrics, so cell ids never decide
which group is selected.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import mean_poisson_deviance

from crimelens.exceptions import InputError, require_extra
from crimelens.forecast.evaluation.metrics import n_flagged
from crimelens.forecast.surface import RiskSurface
from crimelens.geo.grid import SquareGrid
from crimelens.jsonsafe import json_safe

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Basis = Literal["cells", "population"]


@dataclass(frozen=True, slots=True)
class Thresholds:
    """Flag thresholds of the allocation ratio.

    Parameters
    ----------
    low : float
        Flag a group whose ratio is below this (default 0.8, the four-fifths rule).
    high : float
        Flag a group whose ratio is above this (default 1.25 = 1 / 0.8).
    min_fair_share : float
        Groups whose fair share of the selection (population share × selected cells) is below
        this many cells are reported but flagged ``small``, not ``under``/``over``: with an expected
        one or two cells, getting none is no evidence of anything (the rule of five expected counts
        of the χ² test).
    """

    low: float = 0.8
    high: float = 1.25
    min_fair_share: float = 5.0

    def __post_init__(self) -> None:
        if not 0 < self.low <= 1 <= self.high:
            raise InputError(f"thresholds need 0 < low <= 1 <= high, got {self.low}, {self.high}")
        if self.min_fair_share < 0:
            raise InputError("min_fair_share must not be negative")

    def flag(self, ratio: float, fair_share: float) -> str:
        """``"under"``, ``"over"``, ``"ok"`` or ``"small"`` (too small a group to flag)."""
        if fair_share < self.min_fair_share:
            return "small"
        if not math.isfinite(ratio):
            return "ok"
        if ratio < self.low:
            return "under"
        return "over" if ratio > self.high else "ok"


@dataclass(frozen=True, slots=True, eq=False)
class GroupMembership:
    """Which groups live in which cells.

    Attributes
    ----------
    cells : ndarray of int
        The study-area cells (grid cell ids), one row of :attr:`weights` each.
    groups : tuple of str
        Group names, one column of :attr:`weights` each.
    weights : ndarray of float, shape (len(cells), len(groups))
        Population (or 1 per cell) of each group in each cell.
    basis : {"cells", "population"}
        What the weights count.
    """

    cells: IntArray
    groups: tuple[str, ...]
    weights: FloatArray
    basis: Basis = "cells"

    def __post_init__(self) -> None:
        if self.weights.shape != (len(self.cells), len(self.groups)):
            raise InputError(f"membership weights have shape {self.weights.shape}, expected "
                             f"({len(self.cells)}, {len(self.groups)})")
        if len(self.groups) == 0 or not np.isfinite(self.weights).all() or (self.weights < 0).any():
            raise InputError("membership needs at least one group and finite, non-negative weights")
        if self.weights.sum() <= 0:
            raise InputError("membership weights are all zero: no population to audit")

    @classmethod
    def from_labels(cls, cells: Sequence[int] | IntArray, labels: Sequence[Any] | pd.Series | npt.NDArray[Any],
                    population: Sequence[float] | FloatArray | None = None,
                    missing: str = "(none)") -> GroupMembership:
        """One group per cell (e.g. its neighbourhood), weighted by ``population`` when given."""
        c = np.asarray(cells, dtype=np.int64)
        lab = pd.Series(np.asarray(labels, dtype=object)).where(lambda s: s.notna(), missing).astype(str)
        if len(lab) != len(c):
            raise InputError(f"{len(lab)} labels for {len(c)} cells")
        codes, uniques = pd.factorize(lab, sort=True)
        w = np.zeros((len(c), len(uniques)))
        pop = np.ones(len(c)) if population is None else np.asarray(population, dtype=np.float64)
        w[np.arange(len(c)), codes] = pop
        return cls(c, tuple(str(u) for u in uniques), w, "cells" if population is None else "population")

    @classmethod
    def from_table(cls, cells: Sequence[int] | IntArray, table: pd.DataFrame, *, cell: str = "cell_id",
                   group: str = "group", population: str = "population") -> GroupMembership:
        """From a long table of population per group per cell; study-area cells absent from the
        table get no population (they can still be selected, which then counts for no group)."""
        missing = [col for col in (cell, group, population) if col not in table.columns]
        if missing:
            raise InputError(f"population table lacks columns: {', '.join(missing)}")
        c = np.asarray(cells, dtype=np.int64)
        wide = table.pivot_table(index=cell, columns=group, values=population, aggfunc="sum", fill_value=0.0)
        wide = wide.reindex(pd.Index(c, name=cell), fill_value=0.0)
        return cls(c, tuple(str(g) for g in wide.columns), wide.to_numpy(dtype=np.float64), "population")


@dataclass(frozen=True, slots=True)
class GroupAudit:
    """The audit of one group (see :func:`audit_selection` for the definitions)."""

    group: str
    cells: float
    population: float
    population_share: float
    fair_share: float
    selected_cells: float
    selected_population: float
    allocation_share: float
    selection_rate: float
    ratio: float
    flag: str
    incident_share: float | None = None
    observed: float | None = None
    expected: float | None = None
    calibration_ratio: float | None = None
    poisson_deviance: float | None = None
    hit_rate: float | None = None
    pai: float | None = None


@dataclass(slots=True)
class BiasAudit:
    """A bias audit of one selection; :meth:`to_json` for machines, ``render_html`` for people."""

    coverage: float
    k: int
    area_cells: int
    basis: str
    thresholds: Thresholds
    groups: list[GroupAudit]
    overall: dict[str, float | None]
    concentration: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def flagged(self) -> list[str]:
        """Groups whose allocation ratio is outside the thresholds."""
        return [g.group for g in self.groups if g.flag in ("under", "over")]

    @property
    def small_share(self) -> float:
        """Share of the population in groups too small to flag."""
        return float(sum(g.population_share for g in self.groups if g.flag == "small"))

    @property
    def status(self) -> str:
        """``flagged`` (some group is), ``inconclusive`` (none is, but groups too small to flag
        hold half the population or more: use coarser groups or a larger coverage) or ``ok``."""
        if self.flagged:
            return "flagged"
        return "inconclusive" if self.small_share >= 0.5 else "ok"

    @property
    def passed(self) -> bool:
        """True when the status is ``ok``."""
        return self.status == "ok"

    def to_frame(self) -> pd.DataFrame:
        """One row per group."""
        return pd.DataFrame([asdict(g) for g in self.groups])

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN and infinities become ``None``)."""
        doc = {
            "kind": "crimelens-bias-audit/1",
            "coverage": self.coverage, "k": self.k, "area_cells": self.area_cells, "basis": self.basis,
            "thresholds": asdict(self.thresholds), "status": self.status, "passed": self.passed,
            "flagged": self.flagged, "small_share": self.small_share,
            "overall": self.overall, "concentration": self.concentration,
            "groups": [asdict(g) for g in self.groups], "metadata": self.metadata,
        }
        return dict(json_safe(doc))

    def to_json(self, indent: int | None = 2) -> str:
        """The audit as a JSON document."""
        return json.dumps(self.to_dict(), indent=indent)


def selection_weights(score: FloatArray, k: int) -> FloatArray:
    """Selection of the ``k`` highest scores as weights in [0, 1]: cells above the ``k``-th score
    get 1, the cells tied with it share the remaining places equally."""
    s = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=-np.inf)
    out = np.zeros(len(s))
    if k <= 0:
        return out
    if k >= len(s):
        return np.ones(len(s))
    thr = -np.partition(-s, k - 1)[k - 1]
    above, tied = s > thr, s == thr
    out[above] = 1.0
    out[tied] = (k - above.sum()) / tied.sum()
    return out


def cell_labels(incidents: pd.DataFrame, grid: SquareGrid, column: str,
                cells: IntArray | None = None) -> pd.Series:
    """The most frequent value of ``column`` among each cell's incidents (ties: the first in sort
    order), indexed by cell id; cells without a labelled incident get no entry unless ``cells`` is
    given (then they are NaN)."""
    if column not in incidents.columns:
        raise InputError(f"incidents have no column {column!r} to group cells by")
    cell = grid.cell_of(incidents["x"].to_numpy(float), incidents["y"].to_numpy(float))
    frame = pd.DataFrame({"cell": cell, "label": incidents[column].astype("string").to_numpy()})
    frame = frame[(frame["cell"] >= 0) & frame["label"].notna() & (frame["label"].str.strip() != "")]
    counts = frame.groupby(["cell", "label"]).size().rename("n").reset_index()
    counts = counts.sort_values(["cell", "n", "label"], ascending=[True, False, True], kind="stable")
    modal = counts.drop_duplicates("cell").set_index("cell")["label"].astype(object)
    return modal if cells is None else modal.reindex(pd.Index(np.asarray(cells, np.int64), name="cell"))


def population_by_cell(points: pd.DataFrame, grid: SquareGrid, *, group: str | None = "group",
                       population: str = "population") -> pd.DataFrame:
    """Aggregate a population layer given as points (``x``, ``y`` in the grid's CRS: block or
    census centroids) to grid cells: a long ``cell_id, group, population`` table."""
    need = ["x", "y", population] + ([group] if group else [])
    missing = [c for c in need if c not in points.columns]
    if missing:
        raise InputError(f"population layer lacks columns: {', '.join(missing)}")
    pop = pd.to_numeric(points[population], errors="coerce")
    if pop.isna().any() or (pop < 0).any():
        raise InputError("population values must be non-negative numbers")
    cell = grid.cell_of(pd.to_numeric(points["x"], errors="coerce").to_numpy(float),
                        pd.to_numeric(points["y"], errors="coerce").to_numpy(float))
    frame = pd.DataFrame({"cell_id": cell, "group": points[group].astype(str) if group else "all",
                          "population": pop.to_numpy(float)})
    frame = frame[frame["cell_id"] >= 0]
    return frame.groupby(["cell_id", "group"])["population"].sum().reset_index()


def _wmean(y_true: Any, y_pred: Any, sample_weight: Any) -> float:
    w = np.asarray(sample_weight, dtype=np.float64)
    return float(np.average(np.asarray(y_pred, float), weights=w)) if w.sum() > 0 else float("nan")


def _wsum_pred(y_true: Any, y_pred: Any, sample_weight: Any) -> float:
    return float(np.sum(np.asarray(y_pred, float) * np.asarray(sample_weight, float)))


def _wsum_true(y_true: Any, y_pred: Any, sample_weight: Any) -> float:
    return float(np.sum(np.asarray(y_true, float) * np.asarray(sample_weight, float)))


def _captured(y_true: Any, y_pred: Any, sample_weight: Any) -> float:
    return float(np.sum(np.asarray(y_true, float) * np.asarray(y_pred, float) * np.asarray(sample_weight, float)))


def _deviance(y_true: Any, y_pred: Any, sample_weight: Any) -> float:
    w = np.asarray(sample_weight, dtype=np.float64)
    if w.sum() <= 0:
        return float("nan")
    lam = np.clip(np.asarray(y_pred, float), 1e-9, None)
    return float(mean_poisson_deviance(np.asarray(y_true, float), lam, sample_weight=w))


def _frame(y_true: FloatArray, y_pred: FloatArray, groups: npt.NDArray[np.object_],
           metrics: dict[str, tuple[Callable[..., float], FloatArray]]) -> Any:
    """A fairlearn ``MetricFrame`` of weighted metrics by group (fairlearn: the ``analysis`` extra)."""
    require_extra("fairlearn", "analysis")
    from fairlearn.metrics import MetricFrame

    return MetricFrame(
        metrics={name: fn for name, (fn, _) in metrics.items()},
        y_true=y_true, y_pred=y_pred, sensitive_features=pd.Series(groups, name="group"),
        sample_params={name: {"sample_weight": w} for name, (_, w) in metrics.items()},
    )


def gini(values: FloatArray, weights: FloatArray | None = None) -> float:
    """The (population-weighted) Gini coefficient of non-negative ``values``: half the weighted
    mean absolute difference over the weighted mean; 0 when all are equal."""
    v = np.asarray(values, dtype=np.float64)
    w = np.ones(len(v)) if weights is None else np.asarray(weights, dtype=np.float64)
    if len(v) == 0 or w.sum() <= 0:
        return float("nan")
    mean = np.average(v, weights=w)
    if mean <= 0:
        return 0.0
    diff = np.abs(v[:, None] - v[None, :])
    return float((w[:, None] * w[None, :] * diff).sum() / (2.0 * w.sum() ** 2 * mean))


def audit_selection(
    score: FloatArray | RiskSurface,
    membership: GroupMembership,
    *,
    coverage: float,
    observed: FloatArray | None = None,
    expected: FloatArray | None = None,
    thresholds: Thresholds | None = None,
    metadata: dict[str, Any] | None = None,
) -> BiasAudit:
    """Audit the selection of the top ``coverage`` share of ``membership.cells`` by ``score``.

    Parameters
    ----------
    score : ndarray or RiskSurface
        Scores per grid cell (indexed by cell id; a surface's scores are used as they are).
    membership : GroupMembership
        The study-area cells and the population of each group in them.
    coverage : float
        Share of the study-area cells selected, in (0, 1].
    observed : ndarray, optional
        Incidents per grid cell in a held-out window (after the forecast origin); enables
        calibration, incident shares, hit rate and PAI per group.
    expected : ndarray, optional
        Expected incidents per grid cell in that window (default: ``surface.expected()`` when
        ``score`` is a :class:`RiskSurface`).
    thresholds : Thresholds, optional
        Flag thresholds.
    metadata : dict, optional
        Anything to keep with the audit (model metadata, windows).

    Returns
    -------
    BiasAudit
    """
    th = thresholds or Thresholds()
    meta = dict(metadata or {})
    if isinstance(score, RiskSurface):
        meta.setdefault("surface", score.metadata())
        if expected is None and np.isfinite(score.expected_total):
            expected = score.expected()
        score = score.score
    s_all = np.asarray(score, dtype=np.float64)
    cells = membership.cells
    if len(cells) == 0 or cells.min() < 0 or cells.max() >= len(s_all):
        raise InputError("membership cells must be valid cell ids of the scored grid")
    k = n_flagged(coverage, len(cells))
    sel = selection_weights(s_all[cells], k)
    w = membership.weights
    rows, cols = np.nonzero(w > 0)
    pop = w[rows, cols]
    share = pop / w.sum(axis=1)[rows]  # apportioning of a cell's counts and area to its groups
    group = np.asarray(membership.groups, dtype=object)[cols]
    y_sel = sel[rows]

    # y_true = 1 on every row, so the "_true" sums are sums of weights (population, area).
    alloc = _frame(np.ones(len(rows)), y_sel, group, {
        "population": (_wsum_true, pop), "selected_population": (_wsum_pred, pop),
        "cells": (_wsum_true, share), "selected_cells": (_wsum_pred, share),
        "selection_rate": (_wmean, pop),
    })
    by = alloc.by_group
    total_pop = float(by["population"].sum())
    total_sel = float(by["selected_population"].sum())
    overall_rate = total_sel / total_pop
    acc = cal = None
    if observed is not None:
        y = np.asarray(observed, dtype=np.float64)
        if y.shape != s_all.shape:
            raise InputError(f"observed has shape {y.shape}, the scores {s_all.shape}")
        y_obs = y[cells][rows]
        acc = _frame(y_obs, y_sel, group, {
            "observed": (_wsum_true, share), "captured": (_captured, share),
        }).by_group
        if expected is not None:
            e = np.asarray(expected, dtype=np.float64)[cells][rows]
            cal = _frame(y_obs, e, group, {
                "expected": (_wsum_pred, share), "poisson_deviance": (_deviance, share),
            }).by_group
        total_obs = float(acc["observed"].sum())

    audits: list[GroupAudit] = []
    for g in membership.groups:
        if g not in by.index:  # a group with no population anywhere in the study area
            continue
        r = by.loc[g]
        pshare = float(r["population"]) / total_pop
        ashare = float(r["selected_population"]) / total_sel if total_sel > 0 else float("nan")
        ratio = float(r["selection_rate"]) / overall_rate if overall_rate > 0 else float("nan")
        extra: dict[str, float | None] = {}
        if acc is not None:
            obs, cap = float(acc.loc[g, "observed"]), float(acc.loc[g, "captured"])
            area_share = float(r["selected_cells"]) / float(r["cells"]) if r["cells"] > 0 else float("nan")
            hit = cap / obs if obs > 0 else float("nan")
            extra.update(observed=obs, incident_share=obs / total_obs if total_obs > 0 else float("nan"),
                         hit_rate=hit, pai=hit / area_share if area_share > 0 else float("nan"))
            if cal is not None:
                exp_g = float(cal.loc[g, "expected"])
                extra.update(expected=exp_g, calibration_ratio=obs / exp_g if exp_g > 0 else float("nan"),
                             poisson_deviance=float(cal.loc[g, "poisson_deviance"]))
        audits.append(GroupAudit(
            group=g, cells=float(r["cells"]), population=float(r["population"]), population_share=pshare,
            fair_share=pshare * k, selected_cells=float(r["selected_cells"]),
            selected_population=float(r["selected_population"]),
            allocation_share=ashare, selection_rate=float(r["selection_rate"]), ratio=ratio,
            flag=th.flag(ratio, pshare * k), **extra))  # type: ignore[arg-type]

    overall: dict[str, float | None] = {"selection_rate": overall_rate, "selected_population": total_sel,
                                        "population": total_pop}
    if observed is not None:
        y_area = np.asarray(observed, dtype=np.float64)[cells]
        n_total = float(y_area.sum())
        hit = float((sel * y_area).sum()) / n_total if n_total > 0 else float("nan")
        overall.update(incidents=n_total, hit_rate=hit, pai=hit / (k / len(cells)))
        if expected is not None:
            exp_area = np.asarray(expected, dtype=np.float64)[cells]
            overall.update(expected=float(exp_area.sum()),
                           calibration_ratio=n_total / float(exp_area.sum()) if exp_area.sum() > 0 else None)
    rates = np.array([a.selection_rate for a in audits])
    pops = np.array([a.population for a in audits])
    top = max(audits, key=lambda a: a.allocation_share if math.isfinite(a.allocation_share) else -1.0)
    concentration = {
        "gini_selection_rate": gini(rates, pops),
        "disparity_ratio": float(alloc.ratio(method="between_groups")["selection_rate"]),
        "top_group": top.group,
        "top_group_allocation_share": top.allocation_share,
        "top_group_population_share": top.population_share,
    }
    return BiasAudit(coverage=float(coverage), k=k, area_cells=len(cells), basis=membership.basis,
                     thresholds=th, groups=audits, overall=overall, concentration=concentration, metadata=meta)



__all__ = [
    "BiasAudit",
    "GroupAudit",
    "GroupMembership",
    "Thresholds",
    "audit_selection",
    "cell_labels",
    "gini",
    "population_by_cell",
    "selection_weights",
]
