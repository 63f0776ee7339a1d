"""PNG charts of temporal results: trend lines, hour × weekday and month × year heat maps,
near-repeat ratio tables and CompStat tables, each with a title, labelled axes in incidents and
the data-quality footer (see :mod:`crimelens.analysis.plotting`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from crimelens.analysis.compstat import WINDOWS, CompStatResult
from crimelens.analysis.nearrepeat import NearRepeatResult
from crimelens.analysis.plotting import add_footer, new_figure
from crimelens.analysis.results import DataQuality
from crimelens.analysis.temporal import MatrixResult, TrendResult

_PER = {"day": "day", "week": "week", "month": "month"}


def _title(fig: Figure, title: str, subtitle: str | None = None) -> None:
    h = fig.get_figheight()
    fig.text(0.02, 1 - 0.3 / h, title, fontsize=15, fontweight="bold", ha="left", va="center")
    if subtitle:
        fig.text(0.02, 1 - 0.62 / h, subtitle, fontsize=10, color="#333333", ha="left", va="center")


def _save(fig: Figure, path: str | Path) -> Path:
    out = Path(path)
    fig.savefig(out, format="png")
    return out


def trend_png(
    result: TrendResult, path: str | Path, *, title: str | None = None, quality: DataQuality | None = None
) -> Path:
    """Counts per period as a line, with the STL trend (and seasonal panel) when computed."""
    fig = new_figure(12.0, 7.0 if result.components is None else 8.5)
    s = result.series
    per = _PER[result.period]
    if result.components is None:
        ax = fig.add_axes((0.07, 0.17, 0.9, 0.7))
        axes: list[Axes] = [ax]
    else:
        ax = fig.add_axes((0.07, 0.42, 0.9, 0.47))
        ax2 = fig.add_axes((0.07, 0.15, 0.9, 0.2), sharex=ax)
        axes = [ax, ax2]
    ax.plot(
        s.index,
        s.to_numpy(),
        color="#9ECAE1" if result.components is not None else "#2171B5",
        lw=1,
        label=f"Incidents per {per}",
    )
    if result.components is not None:
        ax.plot(s.index, result.components["trend"], color="#08306B", lw=2.2, label="Trend (STL)")
        axes[1].plot(s.index, result.components["seasonal"], color="#CB181D", lw=1)
        axes[1].axhline(0, color="#999999", lw=0.6)
        axes[1].set_ylabel(f"Seasonal\n(incidents per {per})")
    ax.set_ylabel(f"Incidents per {per}")
    ax.set_ylim(bottom=0)
    ax.legend(loc="upper left", frameon=False)
    for a in axes:
        a.grid(alpha=0.3)
        a.spines[["top", "right"]].set_visible(False)
    sub = f"{int(s.sum()):,} incidents, {s.index[0].date()} to {s.index[-1].date()}" if len(s) else None
    _title(fig, title or f"Incidents per {per}", sub)
    notes = result.parameters | ({"excluded_imprecise": result.excluded} if result.excluded else {})
    add_footer(fig, quality, notes)
    return _save(fig, path)


def _heat(ax: Axes, fig: Figure, table: pd.DataFrame, *, annotate: bool, fmt: str = "{:,.0f}") -> None:
    data = table.to_numpy(float)
    im = ax.imshow(data, cmap="YlOrRd", aspect="auto")
    ax.set_xticks(range(data.shape[1]), [str(c) for c in table.columns])
    ax.set_yticks(range(data.shape[0]), [str(r) for r in table.index])
    if annotate:
        top = np.nanmax(data) if data.size else 0
        for (i, j), v in np.ndenumerate(data):
            ax.text(
                j,
                i,
                fmt.format(v),
                ha="center",
                va="center",
                fontsize=7,
                color="white" if top and v > 0.6 * top else "black",
            )
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01)
    cb.set_label("Incidents")


def matrix_png(
    result: MatrixResult, path: str | Path, *, title: str | None = None, quality: DataQuality | None = None
) -> Path:
    """Heat map of an hour × weekday or month × year table, cells annotated with counts."""
    fig = new_figure(13.0, 6.0)
    ax = fig.add_axes((0.1, 0.2, 0.86, 0.66))
    _heat(ax, fig, result.table, annotate=True)
    ax.set_xlabel(str(result.table.columns.name or "").replace("hour", "Hour of day").capitalize())
    ax.set_ylabel(str(result.table.index.name or "").capitalize())
    sub = f"{int(result.table.to_numpy().sum()):,} incidents"
    if result.excluded:
        sub += f"; {result.excluded:,} without the needed time precision left out"
    _title(fig, title or result.title, sub)
    add_footer(fig, quality, result.parameters)
    return _save(fig, path)


def near_repeat_png(
    result: NearRepeatResult,
    path: str | Path,
    *,
    title: str | None = None,
    quality: DataQuality | None = None,
) -> Path:
    """The Knox ratio table as a heat map; significant ratios above 1 are starred."""
    fig = new_figure(12.0, 7.0)
    ax = fig.add_axes((0.16, 0.27, 0.8, 0.58))
    ratio = result.ratio
    data = ratio.to_numpy(float)
    top = max(2.0, float(np.nanmax(data)) if np.isfinite(data).any() else 2.0)
    norm = TwoSlopeNorm(vmin=0.0, vcenter=1.0, vmax=top)  # white at "as expected"
    im = ax.imshow(data, cmap="RdBu_r", norm=norm, aspect="auto")
    ax.set_xticks(range(data.shape[1]), list(ratio.columns), rotation=20)
    ax.set_yticks(range(data.shape[0]), list(ratio.index))
    pvals = result.p.to_numpy(float)
    for (i, j), v in np.ndenumerate(data):
        star = "*" if pvals[i, j] <= 0.05 and v > 1 else ""
        dark = np.isfinite(v) and abs(v - 1.0) > 0.6
        ax.text(
            j,
            i,
            "-" if not np.isfinite(v) else f"{v:.2f}{star}",
            ha="center",
            va="center",
            fontsize=9,
            color="white" if dark else "black",
        )
    ax.set_xlabel("Time between incidents")
    ax.set_ylabel("Distance between incidents (metres)")
    cb = fig.colorbar(im, ax=ax, shrink=0.8, pad=0.01)
    cb.set_label("Observed / expected pairs (Knox ratio)")
    sub = (
        f"Knox test, closest band: {result.knox_statistic:,.0f} pairs observed vs "
        f"{result.knox_expected:,.1f} expected (p = {result.knox_p:.3f}); * p <= 0.05"
    )
    _title(fig, title or "Near-repeat pattern (observed over expected pairs)", sub)
    add_footer(fig, quality, result.parameters)
    return _save(fig, path)


def _p_text(p: float) -> str:
    return "<0.001" if p < 0.001 else f"{p:.3f}"


def compstat_png(
    result: CompStatResult, path: str | Path, *, title: str | None = None, quality: DataQuality | None = None
) -> Path:
    """The CompStat table as a figure: per window current, last year, % change and p."""
    t = result.table
    cols = []
    for w in WINDOWS:
        cols += [f"{w}_current", f"{w}_last_year", f"{w}_pct_change", f"{w}_p"]
    show = t[cols].copy()
    cells = []
    for _, row in show.iterrows():
        line = []
        for w in WINDOWS:
            pct = row[f"{w}_pct_change"]
            line += [
                f"{row[f'{w}_current']:,.0f}",
                f"{row[f'{w}_last_year']:,.0f}",
                "n/a" if pd.isna(pct) else f"{pct:+.0f}%",
                _p_text(float(row[f"{w}_p"])),
            ]
        cells.append(line)
    height = 2.4 + 0.3 * (len(show) + 2)
    fig = new_figure(14.0, height)
    ax = fig.add_axes((0.01, 0.9 / height, 0.98, 1 - 1.9 / height))
    ax.axis("off")
    heads = ["Offence"]
    for w in WINDOWS:
        win = result.windows[w]
        name = {"7d": "Week", "28d": "28 days", "ytd": "Year to date"}[w]
        heads += [f"{name}\n{win.start:%d %b}-{win.end:%d %b}", "Last year", "% change", "p"]
    labels = [" / ".join(map(str, i)) if isinstance(i, tuple) else str(i) for i in show.index]
    cells = [[lab, *line] for lab, line in zip(labels, cells, strict=True)]
    tab = ax.table(cellText=cells, colLabels=heads, loc="upper center", cellLoc="center")
    tab.auto_set_font_size(False)
    tab.set_fontsize(8)
    tab.scale(1, 1.5)
    for (r, c), cell in tab.get_celld().items():
        if r == 0:
            cell.set_facecolor("#EEEEEE")
        elif c > 0 and c % 4 == 0 and float(show.iloc[r - 1][cols[c - 1]]) <= 0.05:
            pct_txt = cells[r - 1][c - 1]
            cell.set_facecolor("#FCBBA1" if pct_txt.startswith("+") else "#C6DBEF")
    end = result.windows["7d"].end
    _title(
        fig,
        title or f"CompStat, week ending Sunday {end:%d %B %Y}",
        "Weeks run Monday to Sunday; last year = same weekdays (364 days earlier), year to date = same dates; "
        "p: exact test of the change (shaded where p <= 0.05, red up, blue down)",
    )
    add_footer(fig, quality, result.parameters)
    return _save(fig, path)
