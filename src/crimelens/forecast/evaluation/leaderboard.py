"""Write a backtest leaderboard: JSON, Markdown and a PNG of PAI by coverage."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from crimelens.forecast.evaluation.report import BacktestReport


def plot_pai(report: BacktestReport, path: str | Path) -> Path:
    """A line chart of mean PAI against coverage, one line per model plus the oracle."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    summ = report.summary(n_boot=200)
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    for model in [*report.models, "oracle"]:
        sub = summ[summ["model"] == model].sort_values("coverage")
        if model == "oracle":
            ax.plot(sub["coverage"] * 100, sub["pai"], marker="o", label=model, color="black", linestyle="--")
        else:
            ax.plot(sub["coverage"] * 100, sub["pai"], marker="o", label=model)
    ax.set_xlabel("area flagged (% of study area)")
    ax.set_ylabel("PAI (mean over folds)")
    s = report.settings
    ax.set_title(f"{s.get('label') or 'Forecast'}: PAI by coverage "
                 f"({report.n_folds} folds, {s.get('cell_size_m', '')} m cells)", fontsize=10)
    if len(report.coverages) > 1:
        ax.set_xscale("log")
        ticks = [c * 100 for c in report.coverages]
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=8, ncol=2)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def write_leaderboard(report: BacktestReport, out_dir: str | Path, *, n_boot: int = 2000) -> dict[str, Path]:
    """Write ``leaderboard.json``, ``leaderboard.md``, ``pai_by_coverage.png`` and
    ``folds.csv`` (per-fold values) into ``out_dir``; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out / "leaderboard.json",
        "markdown": out / "leaderboard.md",
        "png": out / "pai_by_coverage.png",
        "folds": out / "folds.csv",
    }
    paths["json"].write_text(json.dumps(report.to_dict(n_boot=n_boot), indent=2, default=str), encoding="utf-8")
    paths["markdown"].write_text(report.to_markdown(n_boot=n_boot), encoding="utf-8")
    report.folds.assign(origin=report.folds["origin"].astype(str)).round(6).to_csv(paths["folds"], index=False)
    if len(report.folds) and np.isfinite(report.folds["pai"]).any():
        plot_pai(report, paths["png"])
    return paths
