"""Model selection in time order: splits, cross-validation, feature selection, budgeted search.

Incidents are not exchangeable: a model is used on incidents later than those it learnt from,
and place-history features change with time. Everything here therefore respects time:

* :func:`time_split` holds out the latest incidents; :func:`random_split` holds out a random
  share (both are reported, as they answer different questions);
* :func:`time_folds` gives expanding-window folds with an optional gap [1]_, and
  :func:`cross_validate` scores a classifier on each;
* :func:`permutation_importance` measures how much the held-out log loss worsens when a group
  of features is shuffled [2]_, and :func:`select_features` keeps the groups that help;
* :func:`successive_halving` is the budgeted hyperparameter search: many random learner
  configurations on a small share of the training incidents, the best third promoted to three
  times the data, until one remains or the time budget runs out [3]_.

References
----------
.. [1] C. Bergmeir and J. M. Benítez, "On the use of cross-validation for time series
   predictor evaluation", Information Sciences 191, 192-213, 2012.
.. [2] L. Breiman, "Random forests", Machine Learning 45, 5-32, 2001 (permutation importance);
   A. Fisher, C. Rudin and F. Dominici, "All models are wrong, but many are useful", JMLR 20,
   2019 (model reliance).
.. [3] K. Jamieson and A. Talwalkar, "Non-stochastic best arm identification and
   hyperparameter optimization", AISTATS 2016; L. Li et al., "Hyperband", JMLR 18, 2018.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.base import clone

from crimelens.classify.classifier import IncidentClassifier
from crimelens.classify.metrics import ClassificationScores, score
from crimelens.exceptions import InputError

IntArray = npt.NDArray[np.int64]

#: Default search space of the LightGBM learner.
LIGHTGBM_SPACE: dict[str, Sequence[Any]] = {
    "num_leaves": (15, 31, 63, 127),
    "learning_rate": (0.03, 0.05, 0.1),
    "min_child_samples": (20, 50, 100, 200),
    "colsample_bytree": (0.3, 0.5, 0.8),
    "reg_lambda": (0.0, 1.0, 5.0),
}


def time_split(incidents: pd.DataFrame, test_fraction: float = 0.2, *, at: Any = None) -> tuple[IntArray, IntArray]:
    """Positions of the training and test incidents, the test set being the latest ones.

    ``at`` (a date) puts every incident on or after it in the test set instead of a fraction.
    """
    t = pd.to_datetime(incidents["occurred_at"], utc=True).to_numpy()
    order = np.argsort(t, kind="stable")
    if at is not None:
        cut = pd.Timestamp(at)
        cut = cut.tz_localize("UTC") if cut.tzinfo is None else cut.tz_convert("UTC")
        test = np.asarray(pd.to_datetime(incidents["occurred_at"], utc=True) >= cut)
        return np.flatnonzero(~test), np.flatnonzero(test)
    if not 0 < test_fraction < 1:
        raise InputError("test_fraction must be between 0 and 1")
    n_test = round(len(order) * test_fraction)
    return np.sort(order[: len(order) - n_test]), np.sort(order[len(order) - n_test:])


def random_split(n: int, test_fraction: float = 0.2, *, random_state: int = 0) -> tuple[IntArray, IntArray]:
    """Positions of a random training / test split of ``n`` incidents."""
    if not 0 < test_fraction < 1:
        raise InputError("test_fraction must be between 0 and 1")
    test = np.random.default_rng(random_state).random(n) < test_fraction
    return np.flatnonzero(~test), np.flatnonzero(test)


def time_folds(
    incidents: pd.DataFrame, n_splits: int = 3, *, gap_days: float = 0.0, min_train_fraction: float = 0.4
) -> Iterator[tuple[IntArray, IntArray]]:
    """Expanding-window folds: train on everything before a cut, test on the next block.

    The first ``min_train_fraction`` of the period is always training; the rest is cut into
    ``n_splits`` consecutive test blocks; incidents within ``gap_days`` before a test block
    are left out of its training set.
    """
    t = pd.to_datetime(incidents["occurred_at"], utc=True)
    order = np.argsort(t.to_numpy(), kind="stable")
    ts = t.to_numpy()[order]
    n = len(order)
    start = int(n * min_train_fraction)
    bounds = np.linspace(start, n, n_splits + 1).astype(int)
    gap = np.timedelta64(int(gap_days * 86400), "s")
    for lo, hi in itertools.pairwise(bounds):
        if hi <= lo:
            continue
        train_end = np.searchsorted(ts, ts[lo] - gap, side="left")
        yield np.sort(order[:train_end]), np.sort(order[lo:hi])


def cross_validate(
    estimator: IncidentClassifier, incidents: pd.DataFrame, folds: Sequence[tuple[IntArray, IntArray]]
) -> list[ClassificationScores]:
    """Clone, fit and score ``estimator`` on each fold; returns one score row per fold."""
    out: list[ClassificationScores] = []
    for i, (tr, te) in enumerate(folds):
        est = clone(estimator).fit(incidents.iloc[tr])
        test = incidents.iloc[te]
        test = test[test[est.target].astype(str).isin(est.classes_)]
        p = est.predict_proba(test)
        out.append(score(test[est.target].astype(str), p, est.classes_, y_pred=est.decide(p), name=f"fold{i}"))
    return out


def feature_groups(names: Sequence[str]) -> dict[str, list[str]]:
    """Group feature columns for permutation and SHAP summaries.

    One group per context key and window (``ctx_point_all_*``) and per profile key
    (``prof_point_*``) -- each such family has a ``<stem>_n`` column naming it --, one per
    cyclic pair (``hour``, ``hour_sin``, ``hour_cos``), one for the coordinates, and one per
    other column.
    """
    stems = sorted((n[:-2] for n in names if n.endswith("_n") and n.startswith(("ctx_", "prof_"))),
                   key=len, reverse=True)
    groups: dict[str, list[str]] = {}
    for n in names:
        key = next((st for st in stems if n.startswith(st + "_")), None)
        if key is None:
            key = n.removesuffix("_sin").removesuffix("_cos")
            key = {"doy": "dayofyear", "x_plus_y": "xy", "x_minus_y": "xy", "x": "xy", "y": "xy"}.get(key, key)
        groups.setdefault(key, []).append(n)
    return groups


@dataclass(slots=True)
class FeatureSelection:
    """Permutation importance of feature groups and the columns kept."""

    importance: pd.DataFrame
    selected: list[str]
    baseline_log_loss: float

    def to_frame(self) -> pd.DataFrame:
        """Importance per group: mean and std of the log-loss increase when shuffled."""
        return self.importance


def permutation_importance(
    estimator: IncidentClassifier,
    incidents: pd.DataFrame,
    *,
    n_repeats: int = 3,
    random_state: int = 0,
) -> tuple[pd.DataFrame, float]:
    """Log-loss increase on ``incidents`` when each feature group of a fitted classifier is
    shuffled. Returns ``(table, baseline_log_loss)``; the table is sorted, largest first."""
    x = estimator.transform(incidents)
    y = incidents[estimator.target].astype(str).to_numpy(dtype=object)
    keep = np.isin(y, estimator.classes_)
    x, y = x[keep], y[keep]
    yi = np.searchsorted(estimator.classes_, y)

    def nll(frame: pd.DataFrame) -> float:
        p = estimator.proba_from_features(frame)
        return float(-np.log(np.clip(p[np.arange(len(yi)), yi], 1e-15, 1)).mean())

    base = nll(x)
    rng = np.random.default_rng(random_state)
    rows = []
    for group, cols in feature_groups(list(x.columns)).items():
        losses = []
        for _ in range(n_repeats):
            shuffled = x.copy()
            perm = rng.permutation(len(x))
            for c in cols:
                shuffled[c] = pd.Series(x[c].to_numpy()[perm], index=x.index, dtype=x[c].dtype)
            losses.append(nll(shuffled) - base)
        rows.append({"group": group, "columns": len(cols), "importance": float(np.mean(losses)),
                     "std": float(np.std(losses))})
    table = pd.DataFrame(rows).sort_values("importance", ascending=False).reset_index(drop=True)
    return table, base


def select_features(
    estimator: IncidentClassifier,
    incidents: pd.DataFrame,
    *,
    validation_fraction: float = 0.2,
    n_repeats: int = 3,
    min_importance: float = 0.0,
    random_state: int = 0,
) -> FeatureSelection:
    """Fit on the earlier incidents, measure permutation importance on the later ones, and keep
    the feature groups whose shuffling worsens log loss by more than ``min_importance``."""
    tr, va = time_split(incidents, validation_fraction)
    est = clone(estimator).fit(incidents.iloc[tr])
    table, base = permutation_importance(est, incidents.iloc[va], n_repeats=n_repeats, random_state=random_state)
    groups = feature_groups(est.feature_names_)
    kept = [c for g in table.loc[table["importance"] > min_importance, "group"] for c in groups[g]]
    ordered = [c for c in est.feature_names_ if c in set(kept)]
    return FeatureSelection(importance=table, selected=ordered, baseline_log_loss=base)


@dataclass(slots=True)
class SearchResult:
    """Outcome of a budgeted search: the best parameters and every trial."""

    best_params: dict[str, Any]
    best_log_loss: float
    trials: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def to_frame(self) -> pd.DataFrame:
        """One row per trial (parameters, rung, training size, validation log loss)."""
        return pd.DataFrame(self.trials)


def successive_halving(
    estimator: IncidentClassifier,
    incidents: pd.DataFrame,
    space: Mapping[str, Sequence[Any]] | None = None,
    *,
    n_candidates: int = 9,
    eta: int = 3,
    min_fraction: float = 0.2,
    validation_fraction: float = 0.15,
    time_budget_s: float = 600.0,
    random_state: int = 0,
    on_trial: Callable[[dict[str, Any]], None] | None = None,
) -> SearchResult:
    """Budgeted search of learner hyperparameters by successive halving.

    Features are computed once (fitted on the training part, so validation context comes only
    from earlier incidents). Each rung trains every surviving configuration on the latest
    ``fraction`` of the training incidents, scores log loss on the held-back latest incidents,
    keeps the best ``1/eta`` and multiplies the fraction by ``eta``. Stops early when
    ``time_budget_s`` is spent. Use the result as
    ``estimator.set_params(params=result.best_params)``; ``estimator`` itself is not changed.
    """
    start = time.perf_counter()
    space = dict(space or LIGHTGBM_SPACE)
    rng = np.random.default_rng(random_state)
    tr, va = time_split(incidents, validation_fraction)
    feats = estimator.make_features()
    cols = list(estimator.features) if estimator.features is not None else None
    x_tr = feats.fit_transform(incidents.iloc[tr])
    x_va = feats.transform(incidents.iloc[va])
    if cols is not None:
        x_tr, x_va = x_tr[cols], x_va[cols]
    classes = np.array(sorted(incidents.iloc[tr][estimator.target].dropna().astype(str).unique()), dtype=object)
    y_tr = np.searchsorted(classes, incidents.iloc[tr][estimator.target].astype(str).to_numpy())
    y_va_raw = incidents.iloc[va][estimator.target].astype(str).to_numpy()
    ok = np.isin(y_va_raw, classes)
    x_va, y_va = x_va[ok], np.searchsorted(classes, y_va_raw[ok])
    keys = list(space)
    candidates = [{k: space[k][int(rng.integers(len(space[k])))] for k in keys} for _ in range(n_candidates)]
    candidates[0] = dict(estimator.params or {}) | {k: v for k, v in candidates[0].items()
                                                    if k not in (estimator.params or {})}
    trials: list[dict[str, Any]] = []
    fraction, rung = min_fraction, 0
    order = np.argsort(incidents.iloc[tr]["occurred_at"].to_numpy(), kind="stable")
    while candidates:
        n_use = max(50, int(len(order) * min(fraction, 1.0)))
        use = order[-n_use:]
        results: list[tuple[float, dict[str, Any]]] = []
        for cand in candidates:
            if time.perf_counter() - start > time_budget_s and results:
                break
            est = clone(estimator).set_params(params=(estimator.params or {}) | cand)
            learner, _ = est._fit_learner(x_tr.iloc[use], y_tr[use], (x_va, y_va))
            est.classes_ = classes
            p = est._raw_proba(learner, x_va)
            loss = float(-np.log(np.clip(p[np.arange(len(y_va)), y_va], 1e-15, 1)).mean())
            row = {"rung": rung, "n_train": n_use, "log_loss": loss, **cand}
            trials.append(row)
            if on_trial is not None:
                on_trial(row)
            results.append((loss, cand))
        results.sort(key=lambda r: r[0])
        if fraction >= 1.0 or len(results) <= 1 or time.perf_counter() - start > time_budget_s:
            best_loss, best = results[0]
            break
        candidates = [c for _, c in results[: max(1, len(results) // eta)]]
        fraction, rung = fraction * eta, rung + 1
    return SearchResult(best_params=best, best_log_loss=best_loss, trials=trials,
                        seconds=time.perf_counter() - start)
