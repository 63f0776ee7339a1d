"""The :class:`BacktestReport`: per-fold metrics, summaries, and paired bootstrap comparisons.

Each model's difference to the baseline is measured fold by fold (same window, same cells)
and its uncertainty by a circular block bootstrap over folds (Politis & Romano 1992), since
neighbouring weeks are correlated; the block length is ``ceil(n_folds ** (1/3))``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from crimelens.forecast.calibration import CalibrationSummary, summarise

FloatArray = npt.NDArray[np.float64]
METRICS = ("pai", "hit_rate", "pei")


def block_bootstrap_mean(values: FloatArray, *, n_boot: int = 2000, level: float = 0.95,
                         block: int | None = None, random_state: int = 0) -> tuple[float, float, float]:
    """Mean of ``values`` and its ``level`` percentile interval by circular block bootstrap."""
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    b = block or max(1, math.ceil(n ** (1 / 3)))
    rng = np.random.default_rng(random_state)
    n_blocks = math.ceil(n / b)
    starts = rng.integers(0, n, size=(n_boot, n_blocks))
    idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(n_boot, -1)[:, :n] % n
    means = x[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return float(x.mean()), float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))


@dataclass(slots=True)
class BacktestReport:
    """Results of a rolling-origin backtest.

    Attributes
    ----------
    folds : DataFrame
        One row per model, fold and coverage: ``hit_rate``, ``pai``, ``pei``, ``oracle_pai``,
        ``n``, ``n_total``, ``n_star``, ``k``, ``log_score``, ``fit_s``, ``predict_s``.
    coverages : tuple of float
    baseline : str
        The model others are compared with (``retro_count``).
    area_cells : int
        Size ``A`` of the study area in cells.
    n_folds : int
    settings : dict
        Everything that shaped the result (cell size, horizon, origins, model parameters).
    calibration : DataFrame
        One row per model and fold of additive calibration parts
        (:func:`crimelens.forecast.calibration.fold_parts`).
    """

    folds: pd.DataFrame
    coverages: tuple[float, ...]
    baseline: str
    area_cells: int
    n_folds: int
    settings: dict[str, Any] = field(default_factory=dict)
    calibration: pd.DataFrame = field(default_factory=pd.DataFrame)

    def calibration_summary(self) -> dict[str, CalibrationSummary]:
        """Per model: observed/expected, reliability by decile and the Poisson PIT histogram."""
        if self.calibration.empty:
            return {}
        return {str(m): summarise(g.drop(columns=["model", "fold"]))
                for m, g in self.calibration.groupby("model", sort=False)}

    @property
    def models(self) -> list[str]:
        """Model names in evaluation order."""
        return list(dict.fromkeys(self.folds["model"])) if len(self.folds) else []

    def _fold_values(self, model: str, coverage: float, metric: str) -> pd.Series:
        f = self.folds
        sel = f[(f["model"] == model) & np.isclose(f["coverage"], coverage)]
        return sel.set_index("fold")[metric]

    def summary(self, n_boot: int = 2000, random_state: int = 0) -> pd.DataFrame:
        """Mean metrics per model and coverage, with the oracle ceiling and the bootstrap
        interval of the PAI difference to the baseline (``pai_diff``, ``pai_diff_lo``,
        ``pai_diff_hi``; ``pai_rel`` is the relative difference of the means)."""
        rows: list[dict[str, Any]] = []
        for cov in self.coverages:
            base = self._fold_values(self.baseline, cov, "pai") if self.baseline in self.models else None
            for model in self.models:
                row: dict[str, Any] = {"model": model, "coverage": cov}
                for metric in (*METRICS, "oracle_pai", "log_score", "fit_s", "predict_s"):
                    row[metric] = float(self._fold_values(model, cov, metric).mean())
                if base is not None:
                    pai = self._fold_values(model, cov, "pai")
                    diff = (pai - base).dropna()
                    mean, lo, hi = block_bootstrap_mean(diff.to_numpy(), n_boot=n_boot, random_state=random_state)
                    row.update(pai_diff=mean, pai_diff_lo=lo, pai_diff_hi=hi,
                               pai_rel=mean / float(base.mean()) if base.mean() else float("nan"))
                rows.append(row)
            per_fold = self.folds[np.isclose(self.folds["coverage"], cov)].groupby("fold").first()
            oracle = float(per_fold["oracle_pai"].mean())
            rows.append({"model": "oracle", "coverage": cov, "pai": oracle, "pei": 1.0, "oracle_pai": oracle,
                         "hit_rate": float((per_fold["n_star"] / per_fold["n_total"]).mean())})
        return pd.DataFrame(rows)

    def to_dict(self, n_boot: int = 2000) -> dict[str, Any]:
        """The leaderboard as JSON-ready data:
        ``{"folds": n, "cells": A, "models": {name: {"0.01": {"pai": ..., "hit_rate": ..., "pei": ...}}}}``
        plus the oracle, comparisons with the baseline and the settings."""
        summ = self.summary(n_boot=n_boot)
        models: dict[str, dict[str, dict[str, float | None]]] = {}
        for _, r in summ.iterrows():
            entry = {m: _num(r.get(m)) for m in METRICS}
            if r["model"] != "oracle":
                entry.update(log_score=_num(r.get("log_score")), fit_s=_num(r.get("fit_s")),
                             predict_s=_num(r.get("predict_s")))
                if "pai_diff" in r and r["model"] != self.baseline:
                    entry.update(pai_diff=_num(r["pai_diff"]), pai_diff_lo=_num(r["pai_diff_lo"]),
                                 pai_diff_hi=_num(r["pai_diff_hi"]), pai_rel=_num(r["pai_rel"]))
            models.setdefault(str(r["model"]), {})[f"{r['coverage']:g}"] = entry
        return {
            "folds": self.n_folds,
            "cells": self.area_cells,
            "models": models,
            "baseline": self.baseline,
            "calibration": {m: c.to_dict() for m, c in self.calibration_summary().items()},
            "settings": self.settings,
            "definitions": {
                "hit_rate": "n / N: share of test-window incidents in the flagged cells",
                "pai": "(n / N) / (a / A): hit rate over the flagged share of the study area",
                "pei": "n / n*: n* = most incidents any selection of the same number of cells captured",
                "oracle": "PAI of n* (the ceiling in each window)",
                "study_area": "jurisdiction cells if given, else every cell with an incident in the data",
                "ci": "95% circular block bootstrap over folds of the paired PAI difference to the baseline",
                "calibration": "expected vs observed totals per decile of expected count (lowest first), "
                               "and the non-randomised Poisson PIT histogram (10 bins; flat = calibrated)",
            },
        }

    def to_markdown(self, n_boot: int = 2000) -> str:
        """A Markdown leaderboard: one table per coverage, best PAI first."""
        summ = self.summary(n_boot=n_boot)
        s = self.settings
        lines = [
            f"# Forecast leaderboard{': ' + s['label'] if s.get('label') else ''}",
            "",
            f"{self.n_folds} folds ({s.get('first_origin', '')} to {s.get('last_origin', '')}), "
            f"horizon {s.get('horizon_days', '')} days, {s.get('cell_size_m', '')} m cells, "
            f"study area A = {self.area_cells} cells ({s.get('study_area', '')}). "
            f"Differences are to `{self.baseline}` with 95% block-bootstrap intervals.",
        ]
        for cov in self.coverages:
            sub = summ[np.isclose(summ["coverage"], cov)].sort_values("pai", ascending=False)
            lines += ["", f"## Coverage {cov:.0%}", "",
                      "| model | PAI | hit rate | PEI* | log score | ΔPAI vs baseline [95% CI] | fit s |",
                      "|---|---:|---:|---:|---:|---|---:|"]
            for _, r in sub.iterrows():
                diff = ""
                if r["model"] not in ("oracle", self.baseline) and np.isfinite(r.get("pai_diff", np.nan)):
                    diff = (f"{r['pai_diff']:+.2f} ({r['pai_rel']:+.1%}) "
                            f"[{r['pai_diff_lo']:+.2f}, {r['pai_diff_hi']:+.2f}]")
                lines.append(
                    f"| {r['model']} | {r['pai']:.2f} | {_fmt(r.get('hit_rate'), '.3f')} | "
                    f"{_fmt(r.get('pei'), '.3f')} | {_fmt(r.get('log_score'), '.4f')} | {diff} | "
                    f"{_fmt(r.get('fit_s'), '.2f')} |"
                )
        calib = self.calibration_summary()
        if calib:
            lines += ["", "## Calibration of expected counts", "",
                      "| model | observed / expected | reliability error | top decile obs / exp | PIT max deviation |",
                      "|---|---:|---:|---:|---:|"]
            lines += [f"| {m} | {c.ratio:.3f} | {c.reliability_error:.3f} | {_fmt(c.top_decile_ratio, '.3f')} | "
                      f"{c.pit_max_dev:.3f} |" for m, c in calib.items()]
        return "\n".join(lines) + "\n"


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _fmt(v: Any, spec: str) -> str:
    f = _num(v)
    return "" if f is None else format(f, spec)
