"""Drift reports for every scoring run (SECURITY.md MON-01).

A model fitted on one period is scored on the next; when the incidents it sees no longer look like
the ones it learned from (a new category mix after a recoding, a shift in reporting hours, a
district added to the feed), its backtest metrics stop describing it. For each feature a report
gives:

* **PSI**, the population stability index ``Σ (c_i − r_i) · ln(c_i / r_i)`` over bins fixed on the
  reference window: quantile bins of continuous features (frozen edges; the outer bins are open),
  the reference's categories for categorical ones plus one bin for categories never seen there.
  Empty bins get a share of ``epsilon`` so the sum stays finite (Yurdakul 2018, "Statistical
  properties of population stability index", PhD thesis, Western Michigan University). The usual
  reading, used as default flags: below 0.1 stable, 0.1–0.25 a warning, above 0.25 an alert.
* **KS** (two-sample Kolmogorov–Smirnov) for continuous features and **χ²** (contingency test on
  the binned counts) for categorical ones, with p-values, from scipy.
* The **Jensen–Shannon distance** (base 2, in [0, 1]) between the binned distributions.

Flags come from PSI only: with thousands of incidents, KS and χ² find practically irrelevant
shifts significant; their p-values are reported for context. :func:`should_retrain` combines the
drift with a drop in a backtest metric (e.g. PAI at 5 % coverage).
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy.spatial.distance import jensenshannon
from scipy.stats import chi2_contingency, ks_2samp

from crimelens.exceptions import InputError
from crimelens.geo.grid import SquareGrid
from crimelens.jsonsafe import json_safe

FloatArray = npt.NDArray[np.float64]
Kind = Literal["continuous", "categorical"]

#: The bin of categories absent from the reference window.
OTHER = "__other__"

#: Canonical time precisions fine enough for an hour of day / a weekday.
_HOURLY = ("minute", "hour")
_DAILY = ("minute", "hour", "day")


@dataclass(frozen=True, slots=True)
class DriftThresholds:
    """PSI flag thresholds and binning options.

    Parameters
    ----------
    psi_warn, psi_alert : float
        PSI at or above which a feature is flagged ``warn`` / ``alert`` (0.1 and 0.25).
    bins : int
        Quantile bins of continuous features (10, deciles).
    epsilon : float
        Share given to empty bins.
    max_categories : int
        Categorical features keep their most frequent reference categories up to this number;
        the rest join the ``__other__`` bin.
    min_count : int
        Features with fewer values in either window are reported as ``insufficient``.
    """

    psi_warn: float = 0.1
    psi_alert: float = 0.25
    bins: int = 10
    epsilon: float = 1e-4
    max_categories: int = 50
    min_count: int = 30

    def __post_init__(self) -> None:
        if not 0 < self.psi_warn <= self.psi_alert:
            raise InputError("drift thresholds need 0 < psi_warn <= psi_alert")
        if self.bins < 2 or self.max_categories < 1 or not 0 < self.epsilon < 0.01 or self.min_count < 1:
            raise InputError("drift needs bins >= 2, max_categories >= 1, 0 < epsilon < 0.01, min_count >= 1")

    def flag(self, psi: float) -> str:
        """``ok``, ``warn`` or ``alert``."""
        if psi >= self.psi_alert:
            return "alert"
        return "warn" if psi >= self.psi_warn else "ok"


@dataclass(frozen=True, slots=True)
class FeatureBins:
    """The bins of one feature, frozen on the reference window."""

    name: str
    kind: Kind
    edges: tuple[float, ...] = ()
    categories: tuple[str, ...] = ()
    reference: tuple[float, ...] = ()  # reference share per bin
    n_reference: int = 0

    def counts(self, values: pd.Series) -> FloatArray:
        """Counts of ``values`` (missing values dropped) in these bins."""
        v = values.dropna()
        if self.kind == "continuous":
            x = pd.to_numeric(v, errors="coerce").dropna().to_numpy(dtype=np.float64)
            idx = np.searchsorted(np.asarray(self.edges), x, side="right")
            return np.bincount(idx, minlength=len(self.edges) + 1).astype(np.float64)
        text = v.astype(str)
        known = text.where(text.isin(self.categories), OTHER)
        codes = pd.Categorical(known, categories=[*self.categories, OTHER]).codes
        return np.bincount(codes, minlength=len(self.categories) + 1).astype(np.float64)

    def labels(self) -> list[str]:
        """A label per bin."""
        if self.kind == "categorical":
            return [*self.categories, OTHER]
        e = ["-inf", *(f"{x:.6g}" for x in self.edges), "inf"]
        return [f"[{a}, {b})" for a, b in itertools.pairwise(e)]


def freeze_bins(values: pd.Series, name: str, kind: Kind, thresholds: DriftThresholds | None = None) -> FeatureBins:
    """Fix the bins of a feature on its reference values (see the module docstring)."""
    th = thresholds or DriftThresholds()
    v = values.dropna()
    if kind == "continuous":
        x = pd.to_numeric(v, errors="coerce").dropna().to_numpy(dtype=np.float64)
        if len(x) == 0:
            raise InputError(f"feature {name!r} has no values in the reference window")
        inner = np.unique(np.quantile(x, np.linspace(0.0, 1.0, th.bins + 1)[1:-1]))
        bins = FeatureBins(name, kind, edges=tuple(float(e) for e in inner))
    elif kind == "categorical":
        freq = v.astype(str).value_counts(sort=True)
        if len(freq) == 0:
            raise InputError(f"feature {name!r} has no values in the reference window")
        freq = freq.sort_index().sort_values(ascending=False, kind="stable")
        bins = FeatureBins(name, kind, categories=tuple(freq.index[: th.max_categories]))
    else:
        raise InputError(f"feature kind must be continuous or categorical, got {kind!r}")
    counts = bins.counts(v)
    share = counts / counts.sum()
    return FeatureBins(bins.name, kind, bins.edges, bins.categories, tuple(float(s) for s in share), len(v))


def psi(reference_share: FloatArray, current_share: FloatArray, epsilon: float = 1e-4) -> float:
    """Population stability index of two binned distributions; empty bins get ``epsilon``."""
    r = np.clip(np.asarray(reference_share, dtype=np.float64), epsilon, None)
    c = np.clip(np.asarray(current_share, dtype=np.float64), epsilon, None)
    r, c = r / r.sum(), c / c.sum()
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass(frozen=True, slots=True)
class FeatureDrift:
    """Drift of one feature between the reference and the current window."""

    name: str
    kind: str
    n_reference: int
    n_current: int
    psi: float
    js_distance: float
    test: str
    statistic: float
    p_value: float
    flag: str
    bins: list[str] = field(default_factory=list)
    reference_share: list[float] = field(default_factory=list)
    current_share: list[float] = field(default_factory=list)


@dataclass(slots=True)
class DriftReport:
    """Per-feature drift of one scoring run."""

    features: list[FeatureDrift]
    thresholds: DriftThresholds
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def status(self) -> str:
        """The worst flag: ``alert``, ``warn`` or ``ok``."""
        flags = {f.flag for f in self.features}
        return "alert" if "alert" in flags else "warn" if "warn" in flags else "ok"

    def flagged(self, level: str = "warn") -> list[str]:
        """Features flagged at ``level`` or worse."""
        want = ("alert",) if level == "alert" else ("warn", "alert")
        return [f.name for f in self.features if f.flag in want]

    def to_frame(self) -> pd.DataFrame:
        """One row per feature (without the bin details)."""
        rows = [{k: v for k, v in asdict(f).items() if k not in ("bins", "reference_share", "current_share")}
                for f in self.features]
        return pd.DataFrame(rows)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (NaN becomes ``None``)."""
        doc = {"kind": "crimelens-drift-report/1", "status": self.status, "flagged": self.flagged(),
               "thresholds": asdict(self.thresholds), "features": [asdict(f) for f in self.features],
               "metadata": self.metadata}
        return dict(json_safe(doc))

    def to_json(self, indent: int | None = 2) -> str:
        """The report as JSON."""
        return json.dumps(self.to_dict(), indent=indent)


@dataclass(slots=True)
class DriftReference:
    """Bins frozen on a reference window; :meth:`compare` scores any later window against them.

    Keep one beside each fitted model (:meth:`to_dict` / :meth:`from_dict`) so every scoring run
    compares with the data the model learned from, never with a moving baseline.
    """

    bins: dict[str, FeatureBins]
    thresholds: DriftThresholds = field(default_factory=DriftThresholds)
    reference_values: dict[str, npt.NDArray[Any]] = field(default_factory=dict, repr=False)

    @classmethod
    def fit(cls, reference: pd.DataFrame, kinds: Mapping[str, Kind] | None = None,
            thresholds: DriftThresholds | None = None) -> DriftReference:
        """Freeze bins for the columns of ``reference`` (``kinds`` names them and their kinds;
        by default numeric columns with more than 24 distinct values are continuous, the rest
        categorical)."""
        th = thresholds or DriftThresholds()
        kinds = dict(kinds) if kinds is not None else infer_kinds(reference)
        missing = [c for c in kinds if c not in reference.columns]
        if missing:
            raise InputError(f"reference lacks features: {', '.join(missing)}")
        bins = {name: freeze_bins(reference[name], name, kind, th) for name, kind in kinds.items()}
        values = {name: pd.to_numeric(reference[name], errors="coerce").dropna().to_numpy(np.float64)
                  for name, kind in kinds.items() if kind == "continuous"}
        return cls(bins, th, values)

    def compare(self, current: pd.DataFrame, metadata: dict[str, Any] | None = None) -> DriftReport:
        """The drift of ``current`` against the frozen reference."""
        th = self.thresholds
        out = []
        for name, b in self.bins.items():
            if name not in current.columns:
                raise InputError(f"current window lacks feature {name!r}")
            counts = b.counts(current[name])
            n_cur = int(counts.sum())
            ref_share = np.asarray(b.reference, dtype=np.float64)
            if n_cur < th.min_count or b.n_reference < th.min_count:
                out.append(FeatureDrift(name, b.kind, b.n_reference, n_cur, float("nan"), float("nan"), "none",
                                        float("nan"), float("nan"), "insufficient", b.labels()))
                continue
            cur_share = counts / n_cur
            value = psi(ref_share, cur_share, th.epsilon)
            js = float(jensenshannon(ref_share, cur_share, base=2))
            if b.kind == "continuous" and name in self.reference_values:
                cur = pd.to_numeric(current[name], errors="coerce").dropna().to_numpy(np.float64)
                ks = ks_2samp(self.reference_values[name], cur)
                test, stat, p = "ks", float(ks.statistic), float(ks.pvalue)
            else:
                ref_counts = ref_share * b.n_reference
                table = np.vstack([ref_counts, counts])
                table = table[:, table.sum(axis=0) > 0]
                if table.shape[1] < 2:
                    test, stat, p = "chi2", 0.0, 1.0
                else:
                    chi = chi2_contingency(table)
                    test, stat, p = "chi2", float(chi.statistic), float(chi.pvalue)
            out.append(FeatureDrift(name, b.kind, b.n_reference, n_cur, value, js, test, stat, p, th.flag(value),
                                    b.labels(), [float(s) for s in ref_share], [float(s) for s in cur_share]))
        return DriftReport(out, th, dict(metadata or {}))

    def to_dict(self) -> dict[str, Any]:
        """The frozen bins (not the raw reference values) as JSON-able data."""
        return {"thresholds": asdict(self.thresholds), "bins": {k: asdict(v) for k, v in self.bins.items()}}

    @classmethod
    def from_dict(cls, doc: Mapping[str, Any]) -> DriftReference:
        """Rebuild from :meth:`to_dict` (KS then needs the raw values, so continuous features are
        tested with χ² on the frozen bins instead)."""
        bins = {k: FeatureBins(v["name"], v["kind"], tuple(v["edges"]), tuple(v["categories"]),
                               tuple(v["reference"]), int(v["n_reference"])) for k, v in doc["bins"].items()}
        return cls(bins, DriftThresholds(**doc["thresholds"]))


def infer_kinds(frame: pd.DataFrame, max_levels: int = 24) -> dict[str, Kind]:
    """Continuous for numeric columns with more than ``max_levels`` distinct values, else categorical."""
    out: dict[str, Kind] = {}
    for col in frame.columns:
        numeric = pd.api.types.is_numeric_dtype(frame[col]) and not pd.api.types.is_bool_dtype(frame[col])
        out[str(col)] = "continuous" if numeric and frame[col].nunique() > max_levels else "categorical"
    return out


#: Kinds of the columns :func:`incident_features` returns.
INCIDENT_FEATURES: dict[str, Kind] = {
    "category": "categorical", "hour": "categorical", "weekday": "categorical", "x": "continuous",
    "y": "continuous",
}


def incident_features(incidents: pd.DataFrame, *, timezone: str | None = None,
                      grid: SquareGrid | None = None) -> pd.DataFrame:
    """The features of incidents that drift reports watch: ``category``, ``hour`` and ``weekday``
    (local time in ``timezone``, default UTC; missing where the record's ``time_precision`` is too
    coarse), ``x``/``y`` (metres) and, with a ``grid``, ``cell`` (the grid cell id)."""
    if "occurred_at" not in incidents.columns:
        raise InputError("incidents lack occurred_at")
    when = pd.DatetimeIndex(pd.to_datetime(incidents["occurred_at"], utc=True))
    if timezone:
        when = when.tz_convert(timezone)
    prec = (incidents["time_precision"].astype("string") if "time_precision" in incidents.columns
            else pd.Series("minute", index=incidents.index, dtype="string"))
    hourly = prec.isin(_HOURLY).fillna(False).to_numpy(dtype=bool)
    daily = prec.isin(_DAILY).fillna(False).to_numpy(dtype=bool)
    out = pd.DataFrame(index=incidents.index)
    out["category"] = incidents["category"].astype("string") if "category" in incidents.columns else pd.NA
    out["hour"] = pd.array(np.where(hourly, when.hour, -1), dtype="Int64")
    out.loc[~hourly, "hour"] = pd.NA
    out["weekday"] = pd.array(np.where(daily, when.day_of_week, -1), dtype="Int64")
    out.loc[~daily, "weekday"] = pd.NA
    for c in ("x", "y"):
        out[c] = pd.to_numeric(incidents[c], errors="coerce") if c in incidents.columns else np.nan
    if grid is not None:
        cell = grid.cell_of(out["x"].to_numpy(float), out["y"].to_numpy(float))
        out["cell"] = pd.array(np.where(cell >= 0, cell, -1), dtype="Int64")
        out.loc[cell < 0, "cell"] = pd.NA
    return out


def incident_drift(reference: pd.DataFrame, current: pd.DataFrame, *, timezone: str | None = None,
                   grid: SquareGrid | None = None, thresholds: DriftThresholds | None = None,
                   metadata: dict[str, Any] | None = None) -> DriftReport:
    """Drift of the incident features (:func:`incident_features`) from ``reference`` to ``current``."""
    ref = incident_features(reference, timezone=timezone, grid=grid)
    cur = incident_features(current, timezone=timezone, grid=grid)
    kinds = dict(INCIDENT_FEATURES)
    if grid is not None:
        kinds["cell"] = "categorical"
    meta = {"n_reference": len(reference), "n_current": len(current), **(metadata or {})}
    return DriftReference.fit(ref, kinds, thresholds).compare(cur, meta)


@dataclass(frozen=True, slots=True)
class RetrainDecision:
    """Whether to refit a model, and why."""

    retrain: bool
    reasons: list[str]
    drift_status: str
    metric_drop: float | None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form."""
        return dict(json_safe(asdict(self)))


def should_retrain(report: DriftReport, *, metric_reference: float | None = None,
                   metric_current: float | None = None, max_relative_drop: float = 0.1,
                   warn_features: int = 2) -> RetrainDecision:
    """Retrain when any feature drifts to ``alert``, when ``warn_features`` or more features are at
    ``warn`` together, or when the backtest metric (higher is better, e.g. PAI) fell by more than
    ``max_relative_drop`` of its reference value. One warning alone is a reason to watch, not to
    retrain."""
    reasons: list[str] = []
    alerts, warns = report.flagged("alert"), [f for f in report.flagged("warn") if f not in report.flagged("alert")]
    if alerts:
        reasons.append(f"PSI alert on {', '.join(alerts)}")
    if len(warns) >= warn_features:
        reasons.append(f"PSI warning on {len(warns)} features ({', '.join(warns)})")
    drop = None
    if metric_reference is not None and metric_current is not None:
        if metric_reference <= 0:
            raise InputError("the reference metric must be positive")
        drop = (metric_reference - metric_current) / metric_reference
        if drop > max_relative_drop:
            reasons.append(f"metric fell {100 * drop:.1f} % (more than {100 * max_relative_drop:.0f} %)")
    return RetrainDecision(bool(reasons), reasons, report.status, drop)



__all__ = [
    "INCIDENT_FEATURES",
    "OTHER",
    "DriftReference",
    "DriftReport",
    "DriftThresholds",
    "FeatureBins",
    "FeatureDrift",
    "RetrainDecision",
    "freeze_bins",
    "incident_drift",
    "incident_features",
    "infer_kinds",
    "psi",
    "should_retrain",
]
