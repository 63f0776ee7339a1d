"""Products of a drivers run: tables (CSV, Markdown), choropleths (PNG), a GeoPackage and a summary.

Choropleths classify values with ``mapclassify`` (quantiles by default, or Jenks natural breaks)
and say in the legend how many areas fall in each class. The plain-language summary states what
the model can and cannot say: coefficients are associations across areas, not causes; relations
between area averages need not hold for individuals (the ecological fallacy, Robinson 1950); and
results can change with the size and shape of the areas (the modifiable areal unit problem,
Openshaw 1984).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import geopandas as gpd
import mapclassify
import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib.patches import Patch

from crimelens.analysis.plotting import add_north_arrow, add_scale_bar, new_figure
from crimelens.drivers.areas import AREA_ID, AreaLayer
from crimelens.drivers.design import ModelResult
from crimelens.exceptions import InputError
from crimelens.jsonsafe import json_safe

SCHEMES = {"quantiles": mapclassify.Quantiles, "natural_breaks": mapclassify.NaturalBreaks}


def markdown_table(frame: pd.DataFrame, digits: int = 4) -> str:
    """A GitHub-flavoured Markdown table of ``frame`` (numbers rounded to ``digits``)."""
    def cell(v: Any) -> str:
        if not isinstance(v, float | np.floating):
            return str(v)
        x = float(v)
        if np.isnan(x):
            return ""
        return f"{x:.{digits}g}" if abs(x) >= 1e5 or (x and abs(x) < 1e-3) else f"{x:.{digits}f}"

    cols = [str(c) for c in frame.columns]
    rows = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    rows += ["| " + " | ".join(cell(v) for v in rec) + " |" for rec in frame.itertuples(index=False)]
    return "\n".join(rows) + "\n"


def choropleth(gdf: gpd.GeoDataFrame, column: str, path: str | Path, *, scheme: str = "quantiles", k: int = 5,
               title: str | None = None, legend: str | None = None) -> Path:
    """Write a PNG choropleth of ``column`` classified by ``scheme`` (``quantiles``/``natural_breaks``)."""
    if scheme not in SCHEMES:
        raise InputError(f"scheme must be one of {', '.join(SCHEMES)}, not {scheme!r}")
    values = pd.to_numeric(gdf[column], errors="coerce").to_numpy(dtype=float)
    ok = ~np.isnan(values)
    if not ok.any():
        raise InputError(f"{column!r} has no values to map")
    k = max(1, min(k, len(np.unique(values[ok]))))
    classes = SCHEMES[scheme](values[ok], k=k)
    bins = np.full(len(values), -1)
    bins[ok] = classes.yb
    cmap = colormaps["YlOrRd"].resampled(max(k, 2))
    colors = [cmap(int(b)) if b >= 0 else (0.85, 0.85, 0.85, 1.0) for b in bins]
    fig = new_figure(8, 8)
    ax = fig.add_subplot(1, 1, 1)
    gdf.plot(ax=ax, color=colors, edgecolor="#555555", linewidth=0.4)
    ax.set_aspect("equal")
    ax.set_xlabel("")
    ax.set_ylabel("")
    ax.set_xticks([])
    ax.set_yticks([])
    lower = float(np.nanmin(values))
    handles = []
    for i, upper in enumerate(classes.bins):
        handles.append(Patch(facecolor=cmap(i), edgecolor="#555555",
                             label=f"{lower:,.3g} – {upper:,.3g}  ({int(classes.counts[i])} areas)"))
        lower = float(upper)
    if (~ok).any():
        handles.append(Patch(facecolor=(0.85, 0.85, 0.85), label=f"no value ({int((~ok).sum())})"))
    ax.legend(handles=handles, title=legend or column, loc="lower right", fontsize=8, title_fontsize=9)
    if gdf.crs is not None and gdf.crs.is_projected:
        add_scale_bar(ax)
        add_north_arrow(ax)
    ax.set_title(title or column)
    fig.text(0.01, 0.005, f"classes: {scheme.replace('_', ' ')}, k={k}", fontsize=7, color="#444444")
    out = Path(path)
    fig.savefig(out)
    return out


def _coefficient_lines(rec: dict[str, Any]) -> list[str]:
    """Plain sentences for one coefficient row (global model) or one local-coefficient summary (GWR)."""
    name = rec["name"]
    if "share_significant" in rec:
        return [f"- {name}: local estimates from {rec['min']:.4g} to {rec['max']:.4g} (median {rec['median']:.4g}); "
                f"significant in {100 * rec['share_significant']:.0f}% of areas at the corrected critical t of "
                f"{rec['critical_t']:.2f}; bandwidth {rec['bandwidth']:g}."]
    if name == "CONSTANT":
        return []
    est, p = float(rec["estimate"]), float(rec["p_value"])
    if name in ("rho", "lambda"):
        what = "a spatial lag of the response" if name == "rho" else "spatially correlated errors"
        if p < 0.05:
            return [f"- {name} = {est:.3f} (p = {p:.3g}): evidence of {what}."]
        return [f"- {name} = {est:.3f} is not significant (p = {p:.3g})."]
    if p < 0.05:
        sign = "higher" if est > 0 else "lower"
        return [f"- Areas with more {name} tend to have {sign} values of the response (estimate {est:.4g}, "
                f"95% CI {rec['ci_low']:.4g} to {rec['ci_high']:.4g}, p = {p:.3g})."]
    return [f"- No clear association with {name} (estimate {est:.4g}, p = {p:.3g})."]


def summary_text(result: ModelResult, *, layer: str, weights: str | None) -> str:
    """Plain-language summary of a fit, with the caveats that go with area models."""
    lines = [f"# Drivers of {result.params.get('response', 'the response')} across the areas of {layer}", ""]
    lines.append(f"Model: {result.model}; {int(result.fit.get('n') or 0)} areas"
                 + (f"; spatial weights: {weights}" if weights else "") + ".")
    for rec in result.coefficients.to_dict(orient="records"):
        lines.extend(_coefficient_lines({str(k): v for k, v in rec.items()}))
    moran = result.diagnostics.get("moran_residuals")
    if moran:
        verdict = "remain spatially clustered" if moran["p_value"] < 0.05 else "show no significant clustering"
        lines.append(f"- Residuals {verdict} (Moran's I = {moran['I']:.3f}, p = {moran['p_value']:.3g}).")
    if result.diagnostics.get("suggested_model"):
        lines.append(f"- The Lagrange-multiplier tests point to the {result.diagnostics['suggested_model']} model.")
    lines += [f"- Note: {n}" for n in result.notes]
    lines += [
        "", "## How to read this", "",
        "These are **associations, not causes**: a covariate that tracks crime across areas may stand in for "
        "something else that was not measured, and the model cannot tell which way influence runs.",
        "",
        "**Ecological fallacy.** The data describe areas, not people. A link between an area's average income "
        "and its crime rate says nothing about whether lower-income residents commit or suffer more crime.",
        "",
        "**Modifiable areal unit problem.** Results depend on how the map is cut: other boundaries or another "
        "scale (blocks instead of tracts) can give different, even opposite, estimates.",
        "",
    ]
    return "\n".join(lines)


def write_report(out: str | Path, layer: AreaLayer, result: ModelResult, *, response: str,
                 y_values: np.ndarray, weights: str | None = None, rates: pd.DataFrame | None = None,
                 scheme: str = "quantiles") -> list[Path]:
    """Write tables, maps, the GeoPackage and the summary of a drivers run into ``out``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    table = result.to_frame()
    table.to_csv(out / "coefficients.csv", index=False)
    (out / "coefficients.md").write_text(markdown_table(table))
    (out / "model.json").write_text(json.dumps(json_safe(result.to_dict()), indent=2))
    written += [out / "coefficients.csv", out / "coefficients.md", out / "model.json"]
    gdf = layer.frame[[AREA_ID, "geometry"]].copy()
    gdf[response] = np.asarray(y_values, dtype=float)
    if result.residuals is not None:
        gdf["residual"] = result.residuals
    if rates is not None:
        gdf = gdf.merge(rates.reset_index(names=AREA_ID), on=AREA_ID, how="left")
        rates.reset_index(names=AREA_ID).to_csv(out / "rates.csv", index=False)
        (out / "rates.md").write_text(markdown_table(rates.reset_index(names=AREA_ID)))
        written += [out / "rates.csv", out / "rates.md"]
    if result.local is not None:
        gdf = gdf.merge(result.local, on=AREA_ID, how="left")
        result.local.to_csv(out / "local_estimates.csv", index=False)
        written.append(out / "local_estimates.csv")
    gpkg = out / "drivers.gpkg"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a layer without CRS is written as such, on purpose
        gdf.to_file(gpkg, layer="areas", driver="GPKG")
    written.append(gpkg)
    mapped = layer.metric().crs
    plot_frame = gdf.to_crs(mapped) if gdf.crs is not None and mapped is not None else gdf
    maps = [(response, f"{response} by area")]
    if result.residuals is not None:
        maps.append(("residual", f"{result.model} residuals"))
    if rates is not None:
        maps += [(c, c.replace("_", " ")) for c in ("rate", "rate_spatial_eb") if c in gdf.columns]
    if result.local is not None:
        maps += [(c, f"local coefficient {c[2:]}") for c in result.local.columns if c.startswith("b_")
                 and c != "b_CONSTANT"]
    for column, title in maps:
        if column in plot_frame.columns and plot_frame[column].notna().any():
            written.append(choropleth(plot_frame, column, out / f"map_{column}.png", scheme=scheme, title=title))
    summary = out / "summary.md"
    summary.write_text(summary_text(result, layer=layer.name, weights=weights))
    written.append(summary)
    return written


def write_rates(out: str | Path, layer: AreaLayer, rates: pd.DataFrame, *, scheme: str = "quantiles",
                label: str = "incidents") -> list[Path]:
    """Write a rate table (CSV, Markdown), the layer with its rates (GeoPackage) and rate choropleths."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table = rates.reset_index(names=AREA_ID)
    table.to_csv(out / "rates.csv", index=False)
    (out / "rates.md").write_text(markdown_table(table))
    gdf = layer.frame[[AREA_ID, "geometry"]].merge(table, on=AREA_ID, how="left")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # a layer without CRS is written as such, on purpose
        gdf.to_file(out / "rates.gpkg", layer="rates", driver="GPKG")
    written = [out / "rates.csv", out / "rates.md", out / "rates.gpkg"]
    mapped = layer.metric().crs
    plot_frame = gdf.to_crs(mapped) if gdf.crs is not None and mapped is not None else gdf
    titles = {"rate": f"{label} per 1,000 (raw)", "rate_global_eb": f"{label} per 1,000 (global EB)",
              "rate_spatial_eb": f"{label} per 1,000 (spatial EB)"}
    for column, title in titles.items():
        if column in plot_frame.columns:
            written.append(choropleth(plot_frame, column, out / f"map_{column}.png", scheme=scheme, title=title,
                                      legend="per 1,000"))
    return written
