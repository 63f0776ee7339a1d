"""Unusual incidents: an Isolation Forest over how typical each incident's what, where and when is.

An incident is unusual when its *combination* is rare -- a robbery in a cell that only ever
sees burglaries, an assault at an hour when that offence almost never happens there, a
category the city hardly records. Raw coordinates and one-hot categories hide such
combinations from a forest, so :class:`IncidentAnomalyDetector` first turns each incident into
typicality scores learnt from the reference incidents (smoothed log-frequencies):

* ``category_rarity`` -- how rare the category is overall;
* ``category_here`` -- the share of this category among incidents in the same grid cell;
* ``hour_for_category`` / ``weekday_for_category`` / ``premises_for_category`` -- how common
  this hour, weekday and premises are for this category;
* ``place_density`` -- how many incidents the cell has (a quiet place);

plus the cyclic hour and the metric coordinates. An Isolation Forest [1]_ isolates incidents by
random splits; the fewer splits an incident needs, the more anomalous it is. Each incident gets
``score`` (the forest's anomaly score, higher is more unusual, :meth:`score_samples` negated),
``is_anomaly`` (the top ``contamination`` share) and ``reasons``: the typicality features in
which it lies in the lowest tail of the reference distribution, worded for an analyst [2]_.

References
----------
.. [1] F. T. Liu, K. M. Ting and Z.-H. Zhou, "Isolation forest", ICDM 2008; and "Isolation-based
   anomaly detection", ACM TKDD 6(1), 2012.
.. [2] V. Chandola, A. Banerjee and V. Kumar, "Anomaly detection: a survey", ACM Computing
   Surveys 41(3), 2009 (contextual anomalies).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.ensemble import IsolationForest

from crimelens.classify.frame import local_times, metric_xy
from crimelens.exceptions import InputError, NotFittedError
from crimelens.geo.grid import SquareGrid

#: Typicality features (low value = unusual) and how a reason is worded.
_REASONS: Final = {
    "category_rarity": "rare category city-wide",
    "category_here": "category rare in this cell",
    "hour_for_category": "unusual hour for this category",
    "weekday_for_category": "unusual weekday for this category",
    "premises_for_category": "unusual premises for this category",
    "place_density": "few incidents at this place",
}


@dataclass(slots=True)
class AnomalyResult:
    """Scores of a set of incidents: one row each, in input order."""

    frame: pd.DataFrame

    def to_frame(self) -> pd.DataFrame:
        """``incident_id`` (if known), ``score``, ``is_anomaly``, ``reasons`` and the features."""
        return self.frame

    def top(self, n: int = 20) -> pd.DataFrame:
        """The ``n`` most unusual incidents."""
        return self.frame.sort_values("score", ascending=False).head(n)


class IncidentAnomalyDetector:
    """Isolation Forest over typicality features of incidents.

    Parameters
    ----------
    timezone : str, optional
        IANA zone of the wall-clock hour and weekday.
    cell_size : float
        Grid cell side in metres for "here".
    contamination : float
        Share of incidents flagged ``is_anomaly``.
    n_estimators : int
        Trees in the forest.
    max_samples : int
        Sub-sample size per tree (256 as in the original paper).
    reason_tail : float
        A typicality feature is a reason when it lies in this lowest share of the reference.
    smoothing : float
        Pseudo-count of the smoothed frequencies.
    random_state : int, optional
        Seed.
    n_jobs : int
        Threads.
    target : str
        Category column.

    Attributes
    ----------
    forest_ : IsolationForest
    threshold_ : float
        Score above which an incident is flagged.
    """

    def __init__(
        self,
        *,
        timezone: str | None = None,
        cell_size: float = 500.0,
        contamination: float = 0.01,
        n_estimators: int = 200,
        max_samples: int = 256,
        reason_tail: float = 0.02,
        smoothing: float = 1.0,
        random_state: int | None = 0,
        n_jobs: int = 1,
        target: str = "category",
    ) -> None:
        self.timezone = timezone
        self.cell_size = cell_size
        self.contamination = contamination
        self.n_estimators = n_estimators
        self.max_samples = max_samples
        self.reason_tail = reason_tail
        self.smoothing = smoothing
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.target = target

    _PARAMS: Final = ("timezone", "cell_size", "contamination", "n_estimators", "max_samples",
                      "reason_tail", "smoothing", "random_state", "n_jobs", "target")

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        """Hyperparameters (scikit-learn protocol)."""
        return {k: getattr(self, k) for k in self._PARAMS}

    def set_params(self, **params: Any) -> IncidentAnomalyDetector:
        """Set hyperparameters (scikit-learn protocol)."""
        for k, v in params.items():
            setattr(self, k, v)
        return self

    def _keys(self, incidents: pd.DataFrame) -> pd.DataFrame:
        t = local_times(incidents["occurred_at"], self.timezone)
        prec = (incidents["time_precision"] if "time_precision" in incidents
                else pd.Series("minute", index=incidents.index))
        hour_ok = prec.isin(("minute", "hour")).to_numpy()
        x, y, _ = metric_xy(incidents, getattr(self, "crs_", None))
        cell = self.grid_.cell_of(x, y) if hasattr(self, "grid_") else np.full(len(x), -1)
        return pd.DataFrame({
            "cat": incidents[self.target].astype(str).to_numpy(),
            "hour": np.where(hour_ok, t.dt.hour.to_numpy(), -1),
            "weekday": t.dt.day_of_week.to_numpy(),
            "premises": (incidents["premises"].astype("string").fillna("?").to_numpy()
                         if "premises" in incidents else "?"),
            "cell": cell,
            "x": x,
            "y": y,
        }, index=incidents.index)

    def fit(self, incidents: pd.DataFrame, y: Any = None) -> IncidentAnomalyDetector:
        """Learn frequencies from ``incidents`` and fit the forest on their features."""
        if len(incidents) < 10:
            raise InputError("need at least 10 incidents to learn what is usual")
        if self.target not in incidents:
            raise InputError(f"incidents lack the column {self.target!r}")
        x, yy, crs = metric_xy(incidents)
        self.crs_ = crs
        ok = np.isfinite(x) & np.isfinite(yy)
        if ok.any():
            self.grid_ = SquareGrid.covering(x[ok], yy[ok], self.cell_size, crs)
        keys = self._keys(incidents)
        self.tables_ = {
            "cat": keys["cat"].value_counts(),
            "cell": keys.loc[keys["cell"] >= 0, "cell"].value_counts(),
            "cat_cell": keys.groupby(["cell", "cat"]).size(),
            "cat_hour": keys[keys["hour"] >= 0].groupby(["cat", "hour"]).size(),
            "cat_weekday": keys.groupby(["cat", "weekday"]).size(),
            "cat_premises": keys.groupby(["cat", "premises"]).size(),
        }
        self.n_ = len(keys)
        kx, ky = keys["x"].to_numpy(float), keys["y"].to_numpy(float)
        self.xy_centre_ = (
            float(np.nanmedian(kx)) if ok.any() else 0.0, float(np.nanmedian(ky)) if ok.any() else 0.0,
            float(np.nanstd(kx)) if ok.any() and np.nanstd(kx) > 0 else 1.0,
            float(np.nanstd(ky)) if ok.any() and np.nanstd(ky) > 0 else 1.0,
        )
        feats = self._features(keys)
        self.reference_ = {c: np.sort(feats[c].to_numpy()) for c in _REASONS}
        self.forest_ = IsolationForest(
            n_estimators=self.n_estimators, max_samples=min(self.max_samples, len(feats)),
            random_state=self.random_state, n_jobs=self.n_jobs,
        ).fit(feats.to_numpy())
        train_scores = -self.forest_.score_samples(feats.to_numpy())
        self.threshold_ = float(np.quantile(train_scores, 1 - self.contamination))
        self.feature_names_ = list(feats.columns)
        return self

    def _features(self, keys: pd.DataFrame) -> pd.DataFrame:
        a = self.smoothing
        t = self.tables_
        n_cat = len(t["cat"])

        def lookup(table: pd.Series, index: list[Any]) -> npt.NDArray[np.float64]:
            return np.asarray(table.reindex(pd.MultiIndex.from_arrays(index)
                                            if len(index) > 1 else index[0]).fillna(0).to_numpy(), float)

        cat_n = lookup(t["cat"], [keys["cat"]])
        cell_n = lookup(t["cell"], [keys["cell"]])
        cat_cell = lookup(t["cat_cell"], [keys["cell"], keys["cat"]])
        share = (cat_n + a) / (self.n_ + a * n_cat)
        hour_ok = keys["hour"].to_numpy() >= 0
        cat_hour = lookup(t["cat_hour"], [keys["cat"], keys["hour"]])
        cat_hours = np.asarray(t["cat_hour"].groupby(level=0).sum().reindex(keys["cat"]).fillna(0), float)
        feats = pd.DataFrame({
            "category_rarity": np.log(share),
            "category_here": np.log((cat_cell + a * share) / (cell_n + a)),
            "hour_for_category": np.where(hour_ok, np.log((cat_hour + a) / (cat_hours + 24 * a)), np.log(1 / 24)),
            "weekday_for_category": np.log((lookup(t["cat_weekday"], [keys["cat"], keys["weekday"]]) + a)
                                           / (cat_n + 7 * a)),
            "premises_for_category": np.log((lookup(t["cat_premises"], [keys["cat"], keys["premises"]]) + a)
                                            / (cat_n + a * 10)),
            "place_density": np.log1p(cell_n),
            "hour_sin": np.where(hour_ok, np.sin(2 * np.pi * keys["hour"] / 24), 0.0),
            "hour_cos": np.where(hour_ok, np.cos(2 * np.pi * keys["hour"] / 24), 0.0),
        }, index=keys.index)
        x = keys["x"].to_numpy(float)
        y = keys["y"].to_numpy(float)
        cx, cy, sx, sy = self.xy_centre_
        feats["x"] = np.nan_to_num((x - cx) / sx)
        feats["y"] = np.nan_to_num((y - cy) / sy)
        return feats

    def score(self, incidents: pd.DataFrame) -> AnomalyResult:
        """Anomaly score, flag and reasons of each incident (in input order)."""
        if not hasattr(self, "forest_"):
            raise NotFittedError("IncidentAnomalyDetector is not fitted; call fit first")
        keys = self._keys(incidents)
        feats = self._features(keys)
        s = -self.forest_.score_samples(feats.to_numpy())
        tails = {c: np.searchsorted(self.reference_[c], feats[c].to_numpy(), side="right") / len(self.reference_[c])
                 for c in _REASONS}
        reasons = []
        for i in range(len(feats)):
            low = sorted((tails[c][i], c) for c in _REASONS if tails[c][i] <= self.reason_tail)
            reasons.append("; ".join(_REASONS[c] for _, c in low))
        frame = pd.DataFrame({"score": s, "is_anomaly": s > self.threshold_, "reasons": reasons}, index=incidents.index)
        for col in ("incident_id", "occurred_at", self.target, "premises"):
            if col in incidents:
                frame.insert(len(frame.columns) - 3, col, incidents[col].to_numpy())
        return AnomalyResult(pd.concat([frame, feats[list(_REASONS)].round(4)], axis=1))

    def fit_score(self, incidents: pd.DataFrame) -> AnomalyResult:
        """Fit on ``incidents`` and score them."""
        return self.fit(incidents).score(incidents)
