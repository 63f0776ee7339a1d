"""Explanations of a fitted :class:`~crimelens.classify.classifier.IncidentClassifier`.

* **SHAP values** [1]_ from the exact tree algorithm (TreeSHAP, ``shap.TreeExplainer``) [2]_
  for the tree boosters: per incident, per feature and per class, additive contributions to
  the class's log-odds that sum, with the base value, to the model's output. The classifier's
  calibration divides every logit by one temperature and adds a class bias, so contributions
  are divided by the temperature and the bias joins the base value: the explanation is exact
  for the calibrated probabilities too.
* :meth:`Explanation.global_importance` -- mean absolute contribution per feature (and per
  feature group, e.g. all place-history columns of one key), the SHAP global importance;
* :meth:`Explanation.contributions` -- one prediction's contributions, largest first;
* :func:`partial_dependence` -- the average predicted probability of each class as one feature
  is set to each value of a grid across a sample of incidents [3]_;
* PNG plots of all three.

References
----------
.. [1] S. M. Lundberg and S.-I. Lee, "A unified approach to interpreting model predictions",
   NeurIPS 2017.
.. [2] S. M. Lundberg et al., "From local explanations to global understanding with
   explainable AI for trees", Nature Machine Intelligence 2, 56-67, 2020.
.. [3] J. H. Friedman, "Greedy function approximation: a gradient boosting machine",
   Annals of Statistics 29(5), 1189-1232, 2001.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.classify.classifier import IncidentClassifier
from crimelens.classify.models import BOOSTERS
from crimelens.classify.selection import feature_groups
from crimelens.exceptions import InputError, require_extra

FloatArray = npt.NDArray[np.float64]


@dataclass(slots=True)
class Explanation:
    """SHAP contributions of a set of predictions.

    ``values`` has shape (n incidents, n features, n classes) and ``base`` shape (n classes);
    ``base[k] + values[i, :, k].sum()`` is incident ``i``'s calibrated logit of class ``k``.
    """

    values: FloatArray
    base: FloatArray
    features: pd.DataFrame
    classes: list[str]
    predicted: list[str]

    def global_importance(self, *, grouped: bool = False) -> pd.DataFrame:
        """Mean |SHAP| per feature (rows) and class (columns), plus ``overall``, largest first.

        ``grouped`` sums columns of one feature group (a context key and window, a cyclic
        pair) so that correlated columns are judged together.
        """
        mean_abs = np.abs(self.values).mean(axis=0)
        table = pd.DataFrame(mean_abs, index=list(self.features.columns), columns=self.classes)
        if grouped:
            groups = feature_groups(list(self.features.columns))
            table = pd.DataFrame(
                {g: table.loc[cols].sum(axis=0) for g, cols in groups.items()}
            ).T
        table["overall"] = table[self.classes].sum(axis=1)
        table.index.name = "group" if grouped else "feature"
        return table.sort_values("overall", ascending=False)

    def contributions(self, i: int, cls: str | None = None, *, top: int | None = None) -> pd.DataFrame:
        """Incident ``i``'s contributions to class ``cls`` (default: its predicted class)."""
        k = self.classes.index(cls if cls is not None else self.predicted[i])
        row = self.features.iloc[i]
        table = pd.DataFrame({
            "feature": list(self.features.columns),
            "value": [_fmt(v) for v in row.to_numpy()],
            "contribution": self.values[i, :, k],
        })
        table = table.reindex(table["contribution"].abs().sort_values(ascending=False).index)
        table = table.reset_index(drop=True)
        return table.head(top) if top else table

    def to_frame(self) -> pd.DataFrame:
        """Long table: incident position, class, feature, contribution."""
        n, f, k = self.values.shape
        return pd.DataFrame({
            "row": np.repeat(np.arange(n), f * k),
            "feature": np.tile(np.repeat(np.asarray(self.features.columns), k), n),
            "class": np.tile(np.asarray(self.classes), n * f),
            "contribution": self.values.reshape(-1),
        })


def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return "" if np.isnan(v) else f"{v:.4g}"
    return "" if v is None or v is pd.NA else str(v)


def explain(clf: IncidentClassifier, incidents: pd.DataFrame, *, max_rows: int | None = 2000,
            random_state: int = 0, history: pd.DataFrame | None = None) -> Explanation:
    """SHAP values of ``clf``'s predictions for (a sample of at most ``max_rows``) incidents.

    Raises
    ------
    InputError
        If the classifier's learner is not a tree booster.
    MissingExtraError
        If ``shap`` is not installed (``pip install 'crimelens[analysis]'``).
    """
    clf._check()
    if clf.model not in BOOSTERS:
        raise InputError(
            f"SHAP tree explanations need a tree booster (lightgbm, xgboost), not {clf.model!r}; "
            "use crimelens.classify.selection.permutation_importance instead"
        )
    require_extra("shap", "analysis")
    import shap

    if max_rows is not None and len(incidents) > max_rows:
        incidents = incidents.sample(max_rows, random_state=random_state)
    x = clf.transform(incidents, history=history)
    raw = shap.TreeExplainer(clf.model_).shap_values(x)
    values = _as_3d(raw, len(clf.classes_))
    ev = np.atleast_1d(np.asarray(shap.TreeExplainer(clf.model_).expected_value, float))
    t = clf.calibrator_.temperature_
    values = values / t
    base = ev / t + clf.calibrator_.bias_
    p = clf.proba_from_features(x)
    return Explanation(
        values=values, base=np.asarray(base, float), features=x, classes=[str(c) for c in clf.classes_],
        predicted=[str(c) for c in clf.decide(p)],
    )


def _as_3d(raw: Any, k: int) -> FloatArray:
    if isinstance(raw, list):
        return np.stack([np.asarray(r, float) for r in raw], axis=-1)
    arr = np.asarray(raw, float)
    if arr.ndim == 2:  # binary models return one margin
        return np.stack([-arr, arr], axis=-1) if k == 2 else arr[..., None]
    return arr


def partial_dependence(
    clf: IncidentClassifier,
    incidents: pd.DataFrame,
    feature: str,
    *,
    grid: int | npt.ArrayLike = 20,
    max_rows: int = 2000,
    random_state: int = 0,
) -> pd.DataFrame:
    """Average predicted probability of each class as ``feature`` takes each grid value.

    A numeric feature uses ``grid`` quantiles of its observed values (or the given values); a
    categorical one uses its levels. Returns one row per grid value, one column per class.
    """
    clf._check()
    if feature not in clf.feature_names_:
        raise InputError(f"unknown feature {feature!r}")
    sample = incidents.sample(min(max_rows, len(incidents)), random_state=random_state)
    x = clf.transform(sample)
    col = x[feature]
    if isinstance(col.dtype, pd.CategoricalDtype):
        values: list[Any] = [v for v in col.cat.categories if (col == v).any()][:50]
    elif np.ndim(grid) == 0:
        qs = np.linspace(0.02, 0.98, int(grid))  # type: ignore[arg-type]
        values = sorted(set(np.nanquantile(col.to_numpy(float), qs).round(6).tolist()))
    else:
        values = list(np.asarray(grid))
    rows = []
    for v in values:
        xv = x.copy()
        xv[feature] = pd.Categorical([v] * len(xv), categories=col.cat.categories) if isinstance(
            col.dtype, pd.CategoricalDtype) else v
        p = clf.proba_from_features(xv).mean(axis=0)
        rows.append({feature: v, **{str(c): float(pi) for c, pi in zip(clf.classes_, p, strict=True)}})
    return pd.DataFrame(rows)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_importance(expl: Explanation, path: str | Path, *, top: int = 20, grouped: bool = True) -> Path:
    """Stacked bar chart of mean |SHAP| by class for the ``top`` features (PNG)."""
    plt = _pyplot()
    table = expl.global_importance(grouped=grouped).head(top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.32 * len(table) + 1.5))
    left = np.zeros(len(table))
    for cls in expl.classes:
        ax.barh(table.index, table[cls], left=left, label=cls)
        left += table[cls].to_numpy()
    ax.set_xlabel("mean |SHAP| (calibrated log-odds)")
    ax.set_title("What drives the predicted category")
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_contributions(expl: Explanation, i: int, path: str | Path, *, top: int = 12) -> Path:
    """Horizontal bars of one prediction's largest contributions to its predicted class (PNG)."""
    plt = _pyplot()
    table = expl.contributions(i, top=top).iloc[::-1]
    fig, ax = plt.subplots(figsize=(8, 0.35 * len(table) + 1.5))
    colours = np.where(table["contribution"] > 0, "#D62F27", "#4575B5")
    labels = [f"{f} = {v}" if v else f for f, v in zip(table["feature"], table["value"], strict=True)]
    ax.barh(labels, table["contribution"], color=colours)
    ax.axvline(0, color="black", lw=0.8)
    ax.set_xlabel(f"contribution to log-odds of '{expl.predicted[i]}'")
    ax.set_title(f"Why incident {i} looks like {expl.predicted[i]}")
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out


def plot_partial_dependence(pd_table: pd.DataFrame, path: str | Path) -> Path:
    """Line chart of a :func:`partial_dependence` table (PNG)."""
    plt = _pyplot()
    feature = str(pd_table.columns[0])
    fig, ax = plt.subplots(figsize=(7, 4))
    xs = pd_table[feature].astype(str) if pd_table[feature].dtype == object else pd_table[feature]
    for cls in pd_table.columns[1:]:
        ax.plot(xs, pd_table[cls], marker="o", ms=3, label=str(cls))
    ax.set_xlabel(feature)
    ax.set_ylabel("mean predicted probability")
    ax.set_title(f"Partial dependence on {feature}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    return out
