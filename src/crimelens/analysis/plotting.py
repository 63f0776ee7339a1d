"""PNG maps of analysis results: title, legend in words, scale bar, north arrow, data-quality footer.

Maps are drawn in the analysis CRS (metres), so the scale bar is true; axes carry no coordinates
(a commander needs the pattern, not the easting). Class maps use the palettes of
:mod:`crimelens.analysis.palettes` and say in the legend how many cells fall in each class;
density maps are labelled in incidents per km², never in kernel units. Figures are built with
matplotlib's object API (no global ``pyplot`` state), so plotting is safe in servers and threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import PolyCollection
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch, Polygon, Rectangle

from crimelens.analysis.palettes import palette_for
from crimelens.analysis.results import ClusterResult, DataQuality, DensitySurface, UnitResult
from crimelens.exceptions import InputError
from crimelens.geo.crs import to_local

_NICE = (10, 20, 50, 100, 200, 250, 500, 1000, 2000, 2500, 5000, 10_000, 20_000, 50_000, 100_000)


def new_figure(width: float = 9.0, height: float = 9.0) -> Figure:
    """A figure with an Agg canvas attached (no pyplot)."""
    fig = Figure(figsize=(width, height), dpi=120)
    FigureCanvasAgg(fig)
    return fig


def add_scale_bar(ax: Axes, *, units: str = "m") -> None:
    """A black-and-white scale bar of a round length (about a fifth of the map width), lower left."""
    x0, x1 = ax.get_xlim()
    y0, y1 = ax.get_ylim()
    width = abs(x1 - x0)
    target = width / 5.0
    length = max((n for n in _NICE if n <= target), default=_NICE[0])
    bx, by = min(x0, x1) + 0.04 * width, min(y0, y1) + 0.04 * abs(y1 - y0)
    h = 0.012 * abs(y1 - y0)
    for i in range(2):
        ax.add_patch(
            Rectangle(
                (bx + i * length / 2, by),
                length / 2,
                h,
                facecolor="black" if i == 0 else "white",
                edgecolor="black",
                lw=0.8,
                zorder=10,
            )
        )
    label = f"{length / 1000:g} km" if length >= 1000 else f"{length:g} {units}"
    ax.text(
        bx + length / 2,
        by + 1.8 * h,
        label,
        ha="center",
        va="bottom",
        fontsize=9,
        zorder=10,
        bbox={"facecolor": "white", "alpha": 0.7, "edgecolor": "none", "pad": 1},
    )


def add_north_arrow(ax: Axes) -> None:
    """A small north arrow in the upper right corner (the map is in a projected, north-up CRS)."""
    ax.annotate(
        "N",
        xy=(0.95, 0.95),
        xytext=(0.95, 0.86),
        xycoords="axes fraction",
        ha="center",
        va="center",
        fontsize=11,
        fontweight="bold",
        arrowprops={"arrowstyle": "-|>", "color": "black", "lw": 1.5},
        zorder=10,
    )


def add_footer(fig: Figure, quality: DataQuality | None, parameters: Mapping[str, Any]) -> None:
    """The data-quality footer: sources, extract date, geocoded share, CRS and parameters."""
    text = (quality or DataQuality()).footer(_readable(parameters))
    if text:
        import textwrap

        lines = [w for line in text.splitlines() for w in textwrap.wrap(line, 150)]
        fig.text(0.01, 0.005, "\n".join(lines[:6]), fontsize=7, color="#444444", va="bottom", ha="left")


def _readable(parameters: Mapping[str, Any]) -> dict[str, Any]:
    skip = {"units", "n_units", "include_self", "statistic", "analysis", "method"}
    return {k: v for k, v in parameters.items() if k not in skip and not k.startswith("_")}


def _frame_axes(ax: Axes) -> None:
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    for s in ax.spines.values():
        s.set_color("#999999")


def _unit_polygons(result: UnitResult) -> list[np.ndarray]:
    units = result.units
    if units.crs is None:
        raise InputError(f"{units.label()} have no geometry to map")
    out = []
    for g in units.geometries_wgs84():
        if g is None:
            raise InputError(f"{units.label()} have no geometry to map")
        rings = g["coordinates"] if g["type"] == "Polygon" else [p[0] for p in g["coordinates"]]
        for ring in rings[:1] if g["type"] == "Polygon" else rings:
            a = np.asarray(ring, float)
            x, y = to_local(a[:, 0], a[:, 1], units.crs)
            out.append(np.column_stack([x, y]))
    return out


def draw_classes(ax: Axes, result: UnitResult) -> list[Patch]:
    """Fill each unit with its class colour; return legend handles with counts per class."""
    order, colours, labels = palette_for(result.method)
    classes = np.asarray(result.values[result.class_column]).astype(str)
    counts = result.class_counts()
    units = result.units
    present = [c for c in order if counts.get(c, 0) > 0]
    if units.kind == "grid" and units.grid is not None:
        g = units.grid
        code = {c: i for i, c in enumerate(order)}
        img = np.full(g.n_cells, np.nan)
        img[np.asarray(units.ids, np.int64)] = [code.get(c, np.nan) for c in classes]
        cmap = ListedColormap([colours[c] for c in order]).with_extremes(bad=(0.0, 0.0, 0.0, 0.0))
        ax.imshow(
            np.ma.masked_invalid(img.reshape(g.ny, g.nx)),
            origin="lower",
            cmap=cmap,
            vmin=-0.5,
            vmax=len(order) - 0.5,
            interpolation="nearest",
            extent=(g.x0, g.x0 + g.nx * g.cell_size, g.y0, g.y0 + g.ny * g.cell_size),
        )
    else:
        polys = _unit_polygons(result)
        ax.add_collection(
            PolyCollection(
                polys,
                facecolors=[colours.get(c, "#F7F7F2") for c in classes],
                edgecolors="#BBBBBB",
                linewidths=0.2,
            )
        )
        allpts = np.vstack(polys)
        ax.set_xlim(allpts[:, 0].min(), allpts[:, 0].max())
        ax.set_ylim(allpts[:, 1].min(), allpts[:, 1].max())
    unit_word = "cells" if units.kind in ("grid", "h3") else "areas"
    return [
        Patch(facecolor=colours[c], edgecolor="#777777", label=f"{labels[c]} ({counts[c]:,} {unit_word})")
        for c in present
    ]


def draw_density(ax: Axes, fig: Figure, surface: DensitySurface) -> None:
    """The density raster in incidents per km² with a labelled colour bar."""
    g = surface.grid
    dens = np.ma.masked_less_equal(surface.per_km2, max(float(surface.per_km2.max()) * 1e-3, 0.0))
    im = ax.imshow(
        dens,
        origin="lower",
        cmap="YlOrRd",
        interpolation="bilinear",
        extent=(g.x0, g.x0 + g.nx * g.cell_size, g.y0, g.y0 + g.ny * g.cell_size),
    )
    cb = fig.colorbar(im, ax=ax, shrink=0.7, pad=0.02)
    cb.set_label("Incidents per km² (kernel density)")


def draw_clusters(ax: Axes, result: ClusterResult, *, top: int = 12) -> list[Patch]:
    """Cluster hulls and a disc per cluster sized by its count; the largest ``top`` are numbered."""
    from matplotlib import colormaps

    cmap = colormaps["tab20"]
    handles = []
    xs: list[float] = []
    ys: list[float] = []
    biggest = float(result.clusters["count"].max()) if len(result.clusters) else 1.0
    for row in result.clusters.to_dict("records"):
        hull = np.asarray(row["hull"], float).reshape(-1, 2)
        rank = int(row["cluster"])
        colour = cmap(rank % 20)
        if len(hull) >= 3:
            ax.add_patch(Polygon(hull, closed=True, facecolor=colour, edgecolor="black", lw=0.6, alpha=0.75))
        size = 20 + 380 * float(row["count"]) / biggest
        ax.scatter(
            [row["x"]], [row["y"]], s=size, color=colour, edgecolors="black", linewidths=0.5, alpha=0.6, zorder=5
        )
        if rank < top:
            ax.annotate(
                str(rank + 1),
                (row["x"], row["y"]),
                xytext=(6, 6),
                textcoords="offset points",
                fontsize=8,
                fontweight="bold",
                zorder=6,
            )
        xs.extend(hull[:, 0].tolist())
        ys.extend(hull[:, 1].tolist())
        if rank < top:
            handles.append(
                Patch(
                    facecolor=colour,
                    edgecolor="black",
                    label=f"Cluster {int(row['cluster']) + 1}: {row['count']:,.0f} incidents",
                )
            )
    if xs:
        pad = 0.05 * max(np.ptp(xs), np.ptp(ys), 1.0)
        ax.set_xlim(min(xs) - pad, max(xs) + pad)
        ax.set_ylim(min(ys) - pad, max(ys) + pad)
    return handles


def _legend_title(result: UnitResult | DensitySurface | ClusterResult) -> str:
    if isinstance(result, UnitResult):
        return result.units.label().capitalize()
    return "Largest clusters"


def map_png(
    result: UnitResult | DensitySurface | ClusterResult,
    path: str | Path,
    *,
    title: str | None = None,
    subtitle: str | None = None,
    quality: DataQuality | None = None,
) -> Path:
    """Write a map of ``result`` to ``path`` (PNG) and return the path."""
    fig = new_figure(12.0, 9.0)
    ax = fig.add_axes((0.02, 0.13, 0.64, 0.76))
    handles: Sequence[Patch] = []
    if isinstance(result, DensitySurface):
        draw_density(ax, fig, result)
        default_title = f"Kernel density of incidents ({result.parameters.get('kernel', '')} kernel)"
    elif isinstance(result, ClusterResult):
        handles = draw_clusters(ax, result)
        default_title = f"Incident clusters ({result.method.upper()})"
    else:
        handles = draw_classes(ax, result)
        default_title = {
            "gistar": "Hot spots (Getis-Ord Gi*)",
            "lisa": "Clusters and outliers (Local Moran's I)",
            "emerging": "Emerging hot spots",
        }.get(result.method, result.method)
    _frame_axes(ax)
    add_scale_bar(ax)
    add_north_arrow(ax)
    if handles:
        ax.legend(
            handles=list(handles),
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            fontsize=9,
            frameon=False,
            title=_legend_title(result),
            title_fontsize=10,
            alignment="left",
        )
    fig.text(0.02, 0.955, title or default_title, fontsize=16, fontweight="bold", ha="left", va="center")
    if subtitle:
        fig.text(0.02, 0.918, subtitle, ha="left", fontsize=10, color="#333333", va="center")
    add_footer(fig, quality, result.parameters)
    out = Path(path)
    fig.savefig(out, format="png")
    return out
