"""``crimelens forecast`` and ``crimelens evaluate``: risk surfaces and their backtests."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    EngineOpt,
    JsonOpt,
    SourceOpt,
    SparkConfOpt,
    SparkMasterOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    parse_date,
)

COLUMNS = ["occurred_at", "x", "y", "category", "crs"]

ModelOpt = Annotated[str, typer.Option("--model", help="Forecaster: auto (chooses among the others by a "
                                       "nested backtest), recent, retro_count, retro_kde, prospective, sepp, "
                                       "gbm, ensemble, deep.")]
CellOpt = Annotated[float, typer.Option("--cell", help="Cell size in metres.")]
HorizonOpt = Annotated[str, typer.Option("--horizon", help="Forecast window: 8h (one shift), 1d, 7d, 28d.")]
JobsOpt = Annotated[int, typer.Option("--jobs", help="Threads for models that use them.")]


def load_located(db: str | None, *, end: datetime | None, categories: list[str] | None,
                 sources: list[str] | None, extra_columns: tuple[str, ...] = (), engine: str = "duckdb",
                 spark_master: str | None = None, spark_conf: list[str] | None = None) -> Any:
    """Located incidents before ``end`` with the columns forecasters read (plus ``extra_columns``).

    On ``engine="spark"`` the filter and projection run on Spark over the lake.
    """
    from crimelens.filters import IncidentFilter
    from crimelens.store import connect

    flt = IncidentFilter(end=end, categories=tuple(categories or ()), sources=tuple(sources or ()), located=True)
    flt.category_names()
    if engine == "spark":
        from crimelens.cli.common import open_store

        store = open_store(db, read_only=True, engine="spark", spark_master=spark_master, spark_conf=spark_conf)
    else:
        store = connect(db_url(db), read_only=True)
    try:
        columns = [*COLUMNS, *extra_columns]
        frame = store.located_events(flt, columns) if engine == "spark" else store.incidents(flt, columns=columns)
    finally:
        store.close()
    frame = frame[frame["x"].notna() & frame["y"].notna()]
    if len(frame) == 0:
        fail("no located incidents match the filter")
    return frame


def forecast(
    model: ModelOpt = "auto",
    cell: CellOpt = 200.0,
    horizon: HorizonOpt = "7d",
    at: Annotated[str | None, typer.Option("--at", help="Forecast origin date [default: day after the last "
                                           "incident].")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output file: .geojson or .csv.")] = Path("forecast.geojson"),
    top: Annotated[int | None, typer.Option("--top", help="Write only the riskiest N cells.")] = None,
    save: Annotated[Path | None, typer.Option("--save", help="Also save the fitted model here.")] = None,
    registry: Annotated[Path | None, typer.Option("--registry", help="Register the fitted model (backtested "
                                                  "and bias-audited) as a candidate in this model registry; "
                                                  "the output names its version.")] = None,
    jobs: JobsOpt = 1,
    segments: Annotated[Path | None, typer.Option("--segments", help="Street lines (GeoPackage, GeoJSON, "
                                                  "Shapefile): forecast on street segments instead of cells.")]
    = None,
    snap: Annotated[float, typer.Option("--snap", help="With --segments: snap incidents within this many "
                                        "metres of a segment.")] = 30.0,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a forecaster on the incidents before --at and write the ranked risk surface."""
    from crimelens.forecast import make, parse_horizon
    from crimelens.forecast.persistence import save_model

    if out.suffix.lower() not in (".geojson", ".json", ".csv"):
        fail(f"--out must end in .geojson or .csv, got {out.name!r}")
    with errors_to_exit():
        origin = parse_date(at, "--at")
        parse_horizon(horizon)
        frame = load_located(db, end=origin, categories=category, sources=source,
                             extra_columns=("district",) if registry is not None else ())
        if segments is not None:
            _forecast_segments(frame, segments, snap, model, origin, horizon, out, top, as_json)
            return
        est = make(model, cell_size=cell, horizon=horizon, n_jobs=jobs)
        est.fit(frame, until=origin)
        surface = est.predict(horizon=horizon)
        version = _register(registry, est, frame, model, cell, horizon) if registry is not None else None
        if version is not None:
            surface.params["model_version"] = version
        surface.write(out, top=top)
        if save is not None:
            save_model(est, save, training=frame)
    payload = {"model": model, "out": str(out), "cells": len(surface.cells()),
               "start": surface.start.isoformat(), "end": surface.end.isoformat(),
               "trained_on": int(est.n_train_), "saved": str(save) if save else None, "model_version": version}
    chosen = ""
    if hasattr(est, "explain"):
        groups: list[dict[str, Any]] = est.explain()["groups"]
        payload["chosen"] = groups
        chosen = "".join(f"\n  {', '.join(g['categories'])}: "
                         + ", ".join(f"{m} {w:.2f}" for m, w in g["weights"].items() if w > 0)
                         + f" ({g['reason']})" for g in groups)
    emit(payload, as_json, f"{model}: {payload['cells']} cells ranked for {surface.start.date()} to "
                           f"{surface.end.date()} -> {out}{chosen}")


def _forecast_segments(frame: Any, path: Path, snap: float, model: str, origin: datetime | None, horizon: str,
                       out: Path, top: int | None, as_json: bool) -> None:
    """``forecast --segments``: a segment model's ranked street segments as GeoJSON lines."""
    import json

    import pandas as pd

    from crimelens.forecast.base import _crs_of
    from crimelens.forecast.history import default_until, parse_horizon
    from crimelens.forecast.segments import forecast_segments, read_network, segment_models, snap_incidents

    name = "network_kde" if model == "auto" else model  # auto does not choose on segments yet
    seg_model = segment_models(name)[name]
    if out.suffix.lower() not in (".geojson", ".json"):
        fail("with --segments, --out must end in .geojson")
    net = read_network(path, _crs_of(frame))
    snapped = snap_incidents(frame, net, tolerance=snap)
    until = default_until(frame) if origin is None else pd.Timestamp(origin, tz="UTC")
    score, expected = forecast_segments(snapped, seg_model, until, horizon)
    gj = net.to_geojson(score, expected, top=top)
    end = until + pd.Timedelta(days=parse_horizon(horizon))
    gj["metadata"] = {"model": name, "start": until.isoformat(), "end": end.isoformat(), "unit": "street segment",
                      "snap_tolerance_m": snap, "share_snapped": snapped.share_snapped}
    out.write_text(json.dumps(gj), encoding="utf-8")
    payload = {"model": name, "out": str(out), "segments": len(net), "start": until.isoformat(),
               "end": end.isoformat(), "trained_on": int((snapped.segment >= 0).sum()),
               "share_snapped": snapped.share_snapped}
    emit(payload, as_json, f"{name}: {len(net)} street segments ranked for {until.date()} to {end.date()} "
                           f"({snapped.share_snapped:.1%} of incidents within {snap:g} m) -> {out}")


def _register(root: Path, est: Any, frame: Any, model: str, cell: float, horizon: str) -> str:
    """Backtest, audit and register ``est`` as a candidate; returns ``name@version``."""
    import os

    import pandas as pd

    from crimelens.registry import ModelRegistry
    from crimelens.registry.fitted import register_forecaster, score_forecaster

    scored = score_forecaster(model, frame, until=pd.Timestamp(est.until_), params={"cell_size": cell},
                              horizon=horizon)
    m = register_forecaster(ModelRegistry(root), est, frame, scored=scored, reason="crimelens forecast",
                            by=os.environ.get("USER", "cli"))
    return f"{m.name}@{m.version}"


def evaluate(
    models: Annotated[str, typer.Option("--models", help="'all' or a comma-separated list.")] = "all",
    cell: CellOpt = 200.0,
    horizon: HorizonOpt = "7d",
    coverage: Annotated[str, typer.Option("--coverage", help="Shares of the area flagged, comma-separated.")]
    = "0.01,0.05",
    start: Annotated[str | None, typer.Option("--from", help="First forecast origin, YYYY-MM-DD.")] = None,
    end: Annotated[str | None, typer.Option("--to", help="Last forecast origin (inclusive), YYYY-MM-DD.")]
    = None,
    step: Annotated[str | None, typer.Option("--step", help="Spacing of origins [default: the horizon].")] = None,
    tz: Annotated[str | None, typer.Option("--tz", help="Align windows to shifts in this local time zone "
                                           "(e.g. America/Toronto); implied (UTC) for sub-day horizons.")] = None,
    shifts: Annotated[str, typer.Option("--shifts", help="Local shift boundaries for --tz / sub-day horizons.")]
    = "06:00,14:00,22:00",
    out: Annotated[Path, typer.Option("--out", help="Directory for leaderboard.json/.md and the PNG.")]
    = Path("leaderboard"),
    jobs: JobsOpt = 1,
    segments: Annotated[Path | None, typer.Option("--segments", help="Street lines (GeoPackage, GeoJSON, "
                                                  "Shapefile): forecast on street segments instead of cells.")]
    = None,
    snap: Annotated[float, typer.Option("--snap", help="With --segments: snap incidents within this many "
                                        "metres of a segment.")] = 30.0,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    engine: EngineOpt = "duckdb",
    spark_master: SparkMasterOpt = None,
    spark_conf: SparkConfOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Rolling-origin backtest: forecast origins every --step from --from through --to."""
    from rich.progress import Progress

    from crimelens.forecast import available, make, parse_horizon
    from crimelens.forecast.evaluation import RollingOrigin, backtest, write_leaderboard

    with errors_to_exit():
        covs = [float(c) for c in coverage.split(",") if c.strip()]
        if not covs or any(not 0 < c <= 1 for c in covs):
            fail("--coverage takes shares in (0, 1], e.g. 0.01,0.05")
        first, last = parse_date(start, "--from"), parse_date(end, "--to")
        if first is None or last is None:
            fail("evaluate needs --from and --to (the first and last forecast origins)")
        days = parse_horizon(horizon)
        names = available(models) if segments is None else []
        splitter = RollingOrigin(first, last, horizon=horizon, step=step)
        until = last + timedelta(days=days)
        if tz is not None or days < 1:
            from crimelens.forecast.horizons import ShiftOrigins

            splitter = ShiftOrigins(first, last, horizon=horizon, step=step, tz=tz or "UTC",
                                    shifts=tuple(shifts.split(",")))
            until = max(f.end for f in splitter.folds()).tz_convert("UTC").tz_localize(None).to_pydatetime()
        frame = load_located(db, end=until, categories=category, sources=source, engine=engine,
                             spark_master=spark_master, spark_conf=spark_conf)
        estimators = {n: make(n, cell_size=cell, horizon=horizon, n_jobs=jobs) for n in names}
        label = ", ".join(category) if category else "all incidents"
        if segments is not None:
            from crimelens.forecast.base import _crs_of
            from crimelens.forecast.segments import backtest_segments, read_network, segment_models, snap_incidents

            snapped = snap_incidents(frame, read_network(segments, _crs_of(frame)), tolerance=snap)
            report = backtest_segments(segment_models(models), snapped, splitter, coverages=covs,
                                       label=f"{label}, street segments")
        with Progress(transient=True, disable=as_json or segments is not None) as bar:
            task = bar.add_task("backtest", total=len(splitter) * len(names))

            def show(done: int, total: int, msg: str) -> None:
                bar.update(task, completed=done, description=msg)

            if segments is None:
                report = backtest(estimators, frame, splitter, cell_size=cell, coverages=covs, label=label,
                                  progress=show)
        write_leaderboard(report, out)
    full = report.to_dict()
    slim = {
        "folds": full["folds"],
        "cells": full["cells"],
        "models": {
            m: {c: {k: v[k] for k in ("pai", "hit_rate", "pei")} for c, v in by_cov.items()}
            for m, by_cov in full["models"].items()
        },
    }
    emit(slim, as_json, report.to_markdown() + f"\nwritten to {out}/")


def register(app: typer.Typer) -> None:
    """Add ``forecast`` and ``evaluate`` to the application."""
    app.command("forecast")(forecast)
    app.command("evaluate")(evaluate)
