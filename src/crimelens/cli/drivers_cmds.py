"""CLI: ``crimelens areas load|list`` and ``crimelens drivers`` (risk terrain is in ``rtm_cmds``)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crimelens.cli.common import (
    DbOpt,
    FromOpt,
    JsonOpt,
    SourceOpt,
    ToOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    make_filter,
)

areas_app = typer.Typer(help="Area layers (boundaries with socio-economic attributes).", no_args_is_help=True)

IdOpt = Annotated[str | None, typer.Option("--id", help="Unique area key column [default: row number].")]
PopOpt = Annotated[list[str] | None, typer.Option("--population", help="Declared population / exposure "
                                                  "column (repeatable).")]
CrsOpt = Annotated[str | None, typer.Option("--crs", help="CRS of a file that carries none, e.g. EPSG:4326.")]


@areas_app.command("load")
def areas_load(
    file: Annotated[Path, typer.Argument(help="GeoPackage, GeoJSON, shapefile, or CSV (with --boundaries).")],
    id_col: IdOpt = None,
    name: Annotated[str | None, typer.Option("--name", help="Layer name [default: file stem].")] = None,
    population: PopOpt = None,
    crs: CrsOpt = None,
    boundaries: Annotated[Path | None, typer.Option("--boundaries", help="Boundary file a CSV is joined to.")] = None,
    key: Annotated[str | None, typer.Option("--key", help="Join column shared by the CSV and boundaries.")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Validate, reproject and store an area layer under a name."""
    from crimelens.sources.areas import read_areas
    from crimelens.store import connect
    from crimelens.store.areas import save_layer

    with errors_to_exit():
        layer = read_areas(file, name=name, id_col=id_col, population=tuple(population or ()), crs=crs,
                           boundaries=boundaries, key=key)
        store = connect(db_url(db))
        try:
            replaced = save_layer(store, layer)
        finally:
            store.close()
    payload = {**layer.summary(), "replaced": replaced}
    human = "\n".join([f"stored area layer {layer.name!r}: {len(layer)} areas"
                       + (" (replaced the previous one)" if replaced else ""),
                       *(f"  note: {n}" for n in layer.notes)])
    emit(payload, as_json, human)


@areas_app.command("list")
def areas_list(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Area layers in the store."""
    from crimelens.store import connect
    from crimelens.store.areas import list_layers

    with errors_to_exit():
        store = connect(db_url(db), read_only=True)
        try:
            layers = list_layers(store)
        finally:
            store.close()
    human = "\n".join(f"{x['name']}: {x['areas']} areas, crs {x['crs']}, population {x['population']}"
                      for x in layers) or "no area layers"
    emit(layers, as_json, human)


@areas_app.command("rates")
def areas_rates(
    areas: Annotated[str, typer.Option("--areas", help="Stored layer name, or an area file.")],
    population: Annotated[str, typer.Option("--population", help="Population / exposure column.")],
    y: Annotated[str, typer.Option("--y", help="count[:CATEGORY] of incidents, or an area column of "
                                   "counts.")] = "count",
    weights: Annotated[str, typer.Option("--weights", help="Neighbours for spatial EB: queen, rook, knn:K, "
                                         "distance:M.")] = "queen",
    scheme: Annotated[str, typer.Option("--scheme", help="Map classes: quantiles or natural_breaks.")] = "quantiles",
    out: Annotated[Path | None, typer.Option("--out", help="Directory for rates.csv/md/gpkg and maps.")] = None,
    id_col: IdOpt = None,
    crs: CrsOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Counts, rates per 1,000 and empirical-Bayes smoothed rates (global and spatial) per area."""
    import pandas as pd

    from crimelens.drivers.areas import AREA_ID
    from crimelens.drivers.rates import area_rates
    from crimelens.drivers.weights import build_weights
    from crimelens.jsonsafe import json_safe

    if scheme not in ("quantiles", "natural_breaks"):
        fail(f"--scheme {scheme!r}: expected quantiles or natural_breaks")
    with errors_to_exit():
        layer = _layer(areas, db, id_col, [population], crs)
        base = layer.frame.set_index(AREA_ID)
        if population not in base.columns:
            fail(f"--population {population!r} is not a column of layer {layer.name!r}")
        if y == "count" or y.startswith("count:"):
            counts = _incident_counts(layer, y, db, start, end, source)
        elif y in base.columns:
            counts = pd.to_numeric(base[y], errors="coerce")
            if counts.isna().any():
                fail(f"--y {y!r} is not a numeric column")
        else:
            fail(f"--y {y!r}: expected count[:CATEGORY] or a column of layer {layer.name!r}")
        w = build_weights(layer.metric(), weights, ids=list(base.index.astype(str)))
        rates = area_rates(counts, pd.to_numeric(base[population], errors="coerce"), weights=w)
        written: list[str] = []
        if out is not None:
            from crimelens.drivers.report import write_rates

            written = [str(p) for p in write_rates(out, layer, rates, scheme=scheme, label=y)]
    payload = json_safe({"layer": layer.name, "population": population, "weights": w.summary(),
                         "areas": rates.reset_index(names=AREA_ID).to_dict(orient="records"), "files": written,
                         "notes": [*layer.notes, *w.notes]})
    human = "\n".join([rates.to_string(float_format=lambda v: f"{v:.3f}"), *(f"note: {n}" for n in payload["notes"]),
                       *(f"wrote {p}" for p in written)])
    emit(payload, as_json, human)


def _layer(areas: str, db: str | None, id_col: str | None, population: list[str] | None, crs: str | None) -> Any:
    from crimelens.sources.areas import VECTOR_SUFFIXES, is_area_file, read_areas

    if is_area_file(areas):
        return read_areas(areas, id_col=id_col, population=tuple(population or ()), crs=crs)
    if Path(areas).suffix.lower() in (*VECTOR_SUFFIXES, ".csv") or "/" in areas:
        fail(f"--areas {areas}: no such file")
    from crimelens.store import connect
    from crimelens.store.areas import load_layer

    store = connect(db_url(db), read_only=True)
    try:
        return load_layer(store, areas)
    finally:
        store.close()


def _incident_counts(layer: Any, spec: str, db: str | None, start: str | None, end: str | None,
                     source: list[str] | None) -> Any:
    from crimelens.drivers.areas import count_by_area
    from crimelens.exceptions import InputError
    from crimelens.store import connect

    _, _, category = spec.partition(":")
    flt = make_filter(start, end, [category] if category else None, source)
    store = connect(db_url(db), read_only=True)
    try:
        pts = store.incidents(flt, columns=["lat", "lon"])
    finally:
        store.close()
    pts = pts.dropna(subset=["lat", "lon"])
    if pts.empty:
        raise InputError(f"--y {spec}: the store has no geocoded incidents matching it")
    counts = count_by_area(layer, pts["lon"], pts["lat"])
    if int(counts.sum()) == 0:
        raise InputError(f"--y {spec}: none of the {len(pts)} incidents falls inside layer {layer.name!r}")
    return counts


def drivers(
    areas: Annotated[str, typer.Option("--areas", help="Stored layer name, or an area file.")],
    y: Annotated[str, typer.Option("--y", help="Response: an area column, or count[:CATEGORY] of incidents.")],
    x: Annotated[str, typer.Option("--x", help="Covariates, comma-separated area columns.")],
    model: Annotated[str, typer.Option("--model", help="ols, lag, error, glm, gwr or mgwr.")] = "ols",
    weights: Annotated[str, typer.Option("--weights", help="queen, rook, knn:K or distance:M.")] = "queen",
    offset: Annotated[str | None, typer.Option("--offset", help="Population column: GLM offset, "
                                               "else the response becomes a rate per 1,000.")] = None,
    method: Annotated[str, typer.Option("--method", help="lag/error estimator: ml or gmm.")] = "ml",
    family: Annotated[str, typer.Option("--family", help="glm: auto, poisson or negbin.")] = "auto",
    scheme: Annotated[str, typer.Option("--scheme", help="Map classes: quantiles or natural_breaks.")] = "quantiles",
    out: Annotated[Path | None, typer.Option("--out", help="Directory for tables, maps, GeoPackage, summary.")] = None,
    id_col: IdOpt = None,
    population: PopOpt = None,
    crs: CrsOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Explain area differences: OLS with spatial diagnostics, spatial lag/error, count GLM, GWR/MGWR."""
    from crimelens.drivers.pipeline import MODELS, run_drivers
    from crimelens.jsonsafe import json_safe

    if model not in MODELS:
        fail(f"--model {model!r}: expected one of {', '.join(MODELS)}")
    if scheme not in ("quantiles", "natural_breaks"):
        fail(f"--scheme {scheme!r}: expected quantiles or natural_breaks")
    xs = [c.strip() for c in x.split(",") if c.strip()]
    with errors_to_exit():
        layer = _layer(areas, db, id_col, population, crs)
        counts = None
        if y == "count" or y.startswith("count:"):
            counts = _incident_counts(layer, y, db, start, end, source)
        run = run_drivers(layer, y=y, xs=xs, model=model, weights=weights, offset=offset, counts=counts,
                          method=method, family=family)
        written: list[str] = []
        if out is not None:
            from crimelens.drivers.report import write_report

            written = [str(p) for p in write_report(out, layer, run.result, response=run.data.y_name,
                                                    y_values=run.data.y, weights=weights, rates=run.rates,
                                                    scheme=scheme)]
    payload = json_safe({**run.result.to_dict(), "files": written})
    emit(payload, as_json, _human(run.result, written))


def _human(result: Any, written: list[str]) -> str:
    table = result.coefficients.to_string(index=False, float_format=lambda v: f"{v:.4f}")
    fit = ", ".join(f"{k} {v:.4g}" for k, v in result.fit.items() if isinstance(v, float))
    lines = [f"model {result.model}", table, f"fit: {fit}"]
    for key, val in result.diagnostics.items():
        if isinstance(val, dict):
            lines.append(f"{key}: " + ", ".join(f"{k} {v:.4g}" for k, v in val.items() if isinstance(v, float)))
        elif val is not None:
            lines.append(f"{key}: {val}")
    lines += [f"note: {n}" for n in result.notes]
    lines += [f"wrote {p}" for p in written]
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add this module's commands to *app*."""
    app.add_typer(areas_app, name="areas")
    app.command("drivers")(drivers)
