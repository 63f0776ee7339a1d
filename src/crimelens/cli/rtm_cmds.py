"""``crimelens rtm``: risk terrain modelling of one category against environmental layers.

Reads located incidents from the store (:func:`crimelens.cli.forecast_cmds.load_located`), fits
:class:`crimelens.drivers.rtm.RiskTerrainModel` on the cells of the fitting period, scores the
held-out later period against a retrospective-count baseline and writes the factor table, the risk
terrain map, the cells and a plain-language summary to ``--out``.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
import typer

from crimelens.cli.common import CategoryOpt, DbOpt, FromOpt, JsonOpt, SourceOpt, ToOpt, emit, errors_to_exit, fail
from crimelens.cli.common import parse_date as _parse_date
from crimelens.exceptions import InputError


def _floats(text: str, name: str) -> tuple[float, ...]:
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        fail(f"{name}: expected numbers separated by commas, got {text!r}")
    if not values or min(values) <= 0:
        fail(f"{name}: expected positive numbers, got {text!r}")
    return values


def _split(frame: pd.DataFrame, test_from: datetime | None, holdout: float) -> pd.Timestamp:
    """The start of the held-out period: ``--test-from`` or the last ``holdout`` share of the span."""
    if test_from is not None:
        ts = pd.Timestamp(test_from)
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    first, last = frame["occurred_at"].min(), frame["occurred_at"].max()
    return pd.Timestamp(first + (last - first) * (1.0 - holdout)).floor("D")


def _boundary(path: Path, crs: str) -> Any:
    """The study-area polygon(s) of ``path`` (validated and repaired by the area reader) in ``crs``."""
    from crimelens.sources.areas import read_areas

    return read_areas(path).frame.to_crs(crs).union_all()


def _cells(frame: pd.DataFrame, cell: float, crs: str, cut: pd.Timestamp, boundary: Any = None) -> tuple[Any, Any]:
    """Zero-filled counts of the fitting and the held-out period on one grid and study area.

    The study area is ``boundary`` (cells whose centre it contains; incidents outside it are left
    out) or else the cells in the convex hull of all the selected incidents.
    """
    import shapely

    from crimelens.analysis.units import grid_counts
    from crimelens.geo.grid import SquareGrid

    if boundary is not None:
        frame = frame[shapely.contains_xy(boundary, frame["x"].to_numpy(float), frame["y"].to_numpy(float))]
        x0, y0, x1, y1 = boundary.bounds
        grid = SquareGrid.covering(np.array([x0, x1]), np.array([y0, y1]), cell, crs)
        mask = np.asarray(shapely.contains_xy(boundary, *grid.centres()), dtype=bool)
        if not mask.any():
            raise InputError("the study area holds no cell centre: use a smaller --cell")
    else:
        grid = SquareGrid.covering(frame["x"].to_numpy(float), frame["y"].to_numpy(float), cell, crs)
        occupied = grid_counts(frame[["x", "y"]], cell, crs, grid=grid, study_area="hull")
        mask = np.zeros(grid.n_cells, dtype=bool)
        mask[occupied.ids] = True
    fit_rows, test_rows = frame[frame["occurred_at"] < cut], frame[frame["occurred_at"] >= cut]
    if len(fit_rows) == 0:
        raise InputError(f"no incidents {'in the study area ' if boundary is not None else ''}before "
                         f"{cut.date()} to fit the model on")
    fit = grid_counts(fit_rows[["x", "y"]], cell, crs, grid=grid, study_area=mask)
    test = grid_counts(test_rows[["x", "y"]], cell, crs, grid=grid, study_area=mask)
    return fit, test


def cells_frame(model: Any, fit: Any, test: Any) -> Any:
    """The study cells as a GeoDataFrame: counts, relative risk score, expected count, top flags, factors."""
    import geopandas as gpd
    import shapely

    half = fit.grid.cell_size / 2.0
    rrs = model.risk_score()
    rank = pd.Series(rrs).rank(ascending=False, method="min").to_numpy()
    cols = {"cell_id": fit.ids, "incidents_fit": fit.counts, "incidents_test": test.counts, "rrs": rrs,
            "expected_fit": model.expected(), "top5": rank <= max(1, round(0.05 * fit.n)),
            "top10": rank <= max(1, round(0.10 * fit.n))}
    for name in model.selected_:
        cols[name.replace(":", "_")] = model.design_[name].to_numpy()
    geom = shapely.box(fit.x - half, fit.y - half, fit.x + half, fit.y + half)
    return gpd.GeoDataFrame(cols, geometry=geom, crs=fit.crs)


def risk_map_png(model: Any, fit: Any, layers: list[Any], path: Path, meta: dict[str, Any]) -> Path:
    """The risk terrain map: cells shaded by relative risk score (log scale), layers drawn on top."""
    from matplotlib.colors import LogNorm

    from crimelens.analysis.plotting import add_footer, add_north_arrow, add_scale_bar, new_figure
    from crimelens.analysis.results import DataQuality

    g = fit.grid
    raster = np.full(g.n_cells, np.nan)
    raster[fit.ids] = model.risk_score()
    fig = new_figure(12.0, 9.5)
    ax = fig.add_axes((0.02, 0.12, 0.72, 0.78))
    top = float(np.nanmax(raster))
    img = ax.imshow(raster.reshape(g.ny, g.nx), origin="lower", cmap="YlOrRd", interpolation="nearest",
                    extent=(g.x0, g.x0 + g.nx * g.cell_size, g.y0, g.y0 + g.ny * g.cell_size),
                    norm=LogNorm(vmin=1.0, vmax=max(top, 1.0001)))
    styles = iter(zip(("o", "^", "s", "D", "v", "P", "X"),
                      ("#1f3b73", "#2a9d8f", "#6a3d9a", "#111111", "#1f78b4", "#33a02c", "#b15928"), strict=True))
    for lay in layers:
        if lay.name not in set(model.factors_["layer"]):
            continue
        if "lines" in lay.geom_kind:
            lay.geometry[lay.geometry.geom_type.str.contains("Line")].plot(ax=ax, color="#333333", lw=0.6,
                                                                         label=lay.name)
        pts = lay.geometry[lay.geometry.geom_type == "Point"]
        marker, colour = next(styles, ("o", "#1f3b73"))
        if len(pts):
            ax.scatter(pts.x, pts.y, s=5, marker=marker, color=colour, alpha=0.7, label=lay.name)
    ax.set_xlim(g.x0, g.x0 + g.nx * g.cell_size)
    ax.set_ylim(g.y0, g.y0 + g.ny * g.cell_size)
    ax.set_aspect("equal")
    ax.set_xticks([])
    ax.set_yticks([])
    add_scale_bar(ax)
    add_north_arrow(ax)
    bar = fig.colorbar(img, ax=ax, fraction=0.035, pad=0.02)
    bar.set_label("Relative risk score (1 = cell with none of the factors)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(loc="upper left", fontsize=8, title="Layers in the model", title_fontsize=9, markerscale=3)
    fig.text(0.02, 0.955, f"Risk terrain: {meta['category']}", fontsize=16, fontweight="bold", va="center")
    factors = "; ".join(f"{r.factor} RRV {r.rrv:.2f}" for r in model.factors_.itertuples()) or "no factor kept"
    fig.text(0.02, 0.922, factors[:160], fontsize=9, color="#333333", va="center")
    quality = DataQuality(sources=tuple(meta["sources"]), crs=meta["crs"], incidents=meta["fit_incidents"],
                          period=meta["fit_period"], notes=("Association, not causation",))
    add_footer(fig, quality, {"cell": f"{meta['cell_m']:g} m", "bands (cells)": meta["bands_cells"],
                              "model": model.family_})
    fig.savefig(path, format="png")
    return path


def _write(out: Path, model: Any, fit: Any, test: Any, layers: list[Any], evaluation: pd.DataFrame | None,
           meta: dict[str, Any]) -> dict[str, str]:
    from crimelens.drivers.rtm import markdown_table, summary_markdown

    out.mkdir(parents=True, exist_ok=True)
    paths = {k: out / v for k, v in (("factors_csv", "factors.csv"), ("factors_md", "factors.md"),
                                      ("candidates_csv", "candidates.csv"), ("map_png", "risk_map.png"),
                                      ("cells_gpkg", "cells.gpkg"), ("summary_md", "summary.md"))}
    model.factors_.to_csv(paths["factors_csv"], index=False)
    paths["factors_md"].write_text(markdown_table(model.factors_) + "\n", encoding="utf-8")
    model.candidates_.to_csv(paths["candidates_csv"], index=False)
    if evaluation is not None:
        paths["evaluation_csv"] = out / "evaluation.csv"
        evaluation.to_csv(paths["evaluation_csv"], index=False)
    cells_frame(model, fit, test).to_file(paths["cells_gpkg"], driver="GPKG", layer="rtm_cells")
    risk_map_png(model, fit, layers, paths["map_png"], meta)
    paths["summary_md"].write_text(summary_markdown(model, evaluation, meta), encoding="utf-8")
    return {k: str(v) for k, v in paths.items()}


def rtm(
    layers: Annotated[str, typer.Option("--layers", help="Environmental layers, comma-separated point or line "
                                        "files (GeoJSON, GeoPackage, shapefile); the file stem names the layer.")],
    out: Annotated[Path, typer.Option("--out", help="Output directory.")],
    cell: Annotated[float, typer.Option("--cell", help="Cell size in metres.")] = 100.0,
    bands: Annotated[str, typer.Option("--bands", help="Spatial influence bands in cells, comma-separated.")] = "1,2,3",
    family: Annotated[str, typer.Option("--family", help="auto, poisson or negative_binomial.")] = "auto",
    test_from: Annotated[str | None, typer.Option("--test-from", help="Held-out period starts here "
                                                  "(default: the last quarter of the span).")] = None,
    study_area: Annotated[Path | None, typer.Option("--study-area", help="Polygon file of the study area "
                                                    "(default: the convex hull of the incidents).")] = None,
    coverage: Annotated[str, typer.Option("--coverage", help="Shares of cells flagged in the evaluation.")
                        ] = "0.05,0.10",
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Risk terrain model: which environmental layers go with CATEGORY, as relative risk values, and a risk map."""
    from crimelens.cli.forecast_cmds import load_located
    from crimelens.drivers.rtm import RiskTerrainModel, evaluate_terrain, markdown_table, read_layer

    if cell <= 0:
        fail("--cell must be a positive number of metres")
    if family not in ("auto", "poisson", "negative_binomial"):
        fail(f"--family: unknown family {family!r}: use auto, poisson or negative_binomial")
    band_cells, covs = _floats(bands, "--bands"), _floats(coverage, "--coverage")
    if max(covs) > 1:
        fail("--coverage: shares must be at most 1")
    files = [Path(p.strip()) for p in layers.split(",") if p.strip()]
    if not files:
        fail("--layers: give at least one layer file")
    lo, hi, cut_at = _parse_date(start, "--from"), _parse_date(end, "--to"), _parse_date(test_from, "--test-from")
    with errors_to_exit():
        frame = load_located(db, end=hi, categories=category, sources=source, extra_columns=("source",))
        if lo is not None:
            frame = frame[frame["occurred_at"] >= pd.Timestamp(lo, tz="UTC")]
        crs_list = sorted(str(c) for c in frame["crs"].dropna().unique())
        if len(crs_list) != 1:
            raise InputError("no located incidents match the filters" if not crs_list else
                             f"the selection mixes CRSs ({', '.join(crs_list)}): pick one source with --source")
        crs = crs_list[0]
        cut = _split(frame, cut_at, 0.25)
        fit, test = _cells(frame, cell, crs, cut, _boundary(study_area, crs) if study_area else None)
        lays = [read_layer(p, crs) for p in files]
        model = RiskTerrainModel(bands=band_cells, family=family,  # type: ignore[arg-type]
                                 ).fit(fit, lays)
        evaluation = evaluate_terrain(model.risk_score(), test.counts, fit.counts, covs) if test.total > 0 else None
        meta = {
            "category": ", ".join(category) if category else "all crime", "cell_m": cell,
            "bands_cells": list(band_cells), "crs": crs, "sources": sorted(frame["source"].dropna().unique()),
            "fit_period": f"{frame['occurred_at'].min().date()} to {(cut - pd.Timedelta(days=1)).date()}",
            "test_period": f"{cut.date()} to {frame['occurred_at'].max().date()}" if test.total > 0 else None,
            "fit_incidents": int(fit.total), "test_incidents": int(test.total),
            "study_area": str(study_area) if study_area else "convex hull of the incidents",
            "layers": {lay.name: {"features": lay.n_features, "geometry": lay.geom_kind, "file": str(p)}
                       for lay, p in zip(lays, files, strict=True)},
        }
        paths = _write(out, model, fit, test, lays, evaluation, meta)
    payload = {
        **meta, "fit": model.fit_statistics(), "factors": model.factors_.to_dict("records"),
        "dropped_candidates": model.dropped_,
        "evaluation": evaluation.to_dict("records") if evaluation is not None else None, "outputs": paths,
    }
    human = "Risk factors (relative risk values):\n" + markdown_table(model.factors_)
    if evaluation is not None:
        human += "\n\nHeld-out evaluation:\n" + markdown_table(evaluation)
    emit(payload, as_json, human + f"\n\nwritten to {out}/")


def register(app: typer.Typer) -> None:
    """Add ``rtm`` to *app*."""
    app.command("rtm")(rtm)
