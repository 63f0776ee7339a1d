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


def plot_calibration(report: BacktestReport, path: str | Path) -> Path:
    """Reliability by decile (observed against expected totals, log scales) and the Poisson PIT
    histogram, one line per model."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    calib = report.calibration_summary()
    fig, (rel, pit) = plt.subplots(1, 2, figsize=(11, 4.5), dpi=120)
    top = 0.0
    for model, c in calib.items():
        e, y = zip(*c.reliability, strict=True)
        rel.plot(e, y, marker="o", label=model)
        pit.plot(np.arange(len(c.pit)) + 0.5, c.pit, marker=".", label=model)
        top = max(top, *e, *y)
    lo = max(min((a for c in calib.values() for a, _ in c.reliability if a > 0), default=1e-3), 1e-3)
    rel.plot([lo, top], [lo, top], color="black", linestyle="--", linewidth=1, label="calibrated")
    rel.set_xscale("log")
    rel.set_yscale("log")
    rel.set_xlabel("expected incidents (decile total, all folds)")
    rel.set_ylabel("observed incidents")
    rel.set_title("Reliability by decile of expected count", fontsize=10)
    pit.axhline(0.1, color="black", linestyle="--", linewidth=1)
    pit.set_xlabel("PIT bin (tenths)")
    pit.set_ylabel("mass")
    pit.set_title("Poisson PIT histogram (flat = calibrated)", fontsize=10)
    for ax in (rel, pit):
        ax.grid(True, alpha=0.3)
    pit.legend(fontsize=7, ncol=2)
    fig.tight_layout()
    out = Path(path)
    fig.savefig(out)
    plt.close(fig)
    return out


def write_leaderboard(report: BacktestReport, out_dir: str | Path, *, n_boot: int = 2000) -> dict[str, Path]:
    """Write ``leaderboard.json``, ``leaderboard.md``, ``pai_by_coverage.png``, ``calibration.png``
    and ``folds.csv`` (per-fold values) into ``out_dir``; returns their paths."""
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
    if not report.calibration.empty:
        paths["calibration_png"] = plot_calibration(report, out / "calibration.png")
    return paths
