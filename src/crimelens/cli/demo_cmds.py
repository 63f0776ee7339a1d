"""``crimelens demo``: the whole product on a synthetic city, from nothing, in one command.

Generate a seeded synthetic city in the Chicago portal format (with some dirt), ingest it into a
DuckDB file, print the summary, compute hot spots and a forecast where those modules are
installed, and serve the dashboard.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Annotated

import typer

from crimelens.cli.common import emit, errors_to_exit


def demo(
    directory: Annotated[Path, typer.Option("--dir", help="Working folder for the demo files.")] = Path("demo"),
    incidents: Annotated[int, typer.Option(help="Incidents in the synthetic city.")] = 150_000,
    days: Annotated[int, typer.Option(help="Days of history.")] = 3 * 365,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 2026,
    host: Annotated[str, typer.Option(help="Dashboard host.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Dashboard port.")] = 8000,
    serve: Annotated[bool, typer.Option("--serve/--no-serve", help="Serve the dashboard at the end.")] = True,
) -> None:
    """Generate → ingest → analyse → serve, on the embedded defaults."""
    from crimelens.ingest import ingest_file
    from crimelens.settings import Settings
    from crimelens.sources.mapping import load_preset
    from crimelens.store import connect
    from crimelens.synth import CityConfig, DirtConfig, generate_city, write_portal

    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "crimelens.duckdb"
    csv = directory / f"synthetic_chicago_{seed}.csv"
    with errors_to_exit():
        if not csv.exists():
            typer.echo(f"generating a synthetic city: {incidents:,} incidents over {days} days (seed {seed})")
            city = generate_city(CityConfig(n_incidents=incidents, days=days, seed=seed))
            write_portal(city, csv, fmt="chicago", dirt=DirtConfig())
            city.truth.write(directory / "truth.json")
        store = connect(str(db))
        try:
            report = ingest_file(store, csv, key=Settings().key_bytes(), mapping=load_preset("chicago"),
                                 source="demo_city")
            d = report.to_dict()
            typer.echo(
                f"ingest: read {d['read']:,}, stored {d['stored']:,}, updated {d['updated']:,}, "
                f"duplicates {d['duplicates']:,}, quarantined {d['quarantined']:,} {d['by_reason']}"
                if not report.skipped else "ingest: already loaded"
            )
            info = store.info()
        finally:
            store.close()
    emit(info, False, _summary(info))
    for step in _extra_steps():
        step(db, directory)
    if serve:
        if importlib.util.find_spec("crimelens.service") is None or importlib.util.find_spec("fastapi") is None:
            typer.echo("dashboard: install the [server] extra to serve it")
            return
        from crimelens.service.demo import serve_demo

        serve_demo(db, host=host, port=port)


def _summary(info: dict[str, object]) -> str:
    by_cat = info["by_category"]
    assert isinstance(by_cat, dict)
    top = ", ".join(f"{k} {v:,}" for k, v in list(by_cat.items())[:6])
    return (
        f"store {info['store']}: {info['incidents']:,} incidents from {info['first_occurred_at']} to "
        f"{info['last_occurred_at']}; located {info['located_share']:.1%}\n  top categories: {top}"
    )


def _extra_steps() -> list[Callable[[Path, Path], None]]:
    """Forecasting steps that run when their modules are present (analysis runs on request)."""
    if importlib.util.find_spec("crimelens.forecast") is None or importlib.util.find_spec("fastapi") is None:
        return []
    return [_forecast_and_leaderboard]


DEMO_MODELS = ("recent", "retro_count", "retro_kde", "prospective")


def _forecast_and_leaderboard(db: Path, directory: Path) -> None:
    """Backtest the quick models on the last eight weeks, then publish next week's surfaces."""
    import pandas as pd

    from crimelens.filters import IncidentFilter
    from crimelens.forecast import make
    from crimelens.forecast.evaluation.backtest import backtest
    from crimelens.forecast.evaluation.splitter import RollingOrigin
    from crimelens.service.products import publish
    from crimelens.service.tables import create_tables
    from crimelens.store.duckdb import DuckDBStore

    store = DuckDBStore(db)
    try:
        frame = store.incidents(IncidentFilter(located=True), columns=["occurred_at", "x", "y", "category", "crs"])
        last = frame["occurred_at"].max().normalize()
        origin = last - pd.Timedelta(days=int(last.weekday()))  # Monday of the last week
        typer.echo(f"forecast: backtesting {', '.join(DEMO_MODELS)} on 8 weekly folds to {origin.date()}")
        splitter = RollingOrigin(start=origin - pd.Timedelta(weeks=8), end=origin - pd.Timedelta(weeks=1),
                                 horizon="7d")
        report = backtest({m: make(m, cell_size=200.0) for m in DEMO_MODELS}, frame, splitter, cell_size=200.0,
                          label="demo city")
        summary = report.summary(n_boot=500)
        rows = [{"model": r["model"], "coverage": r["coverage"], "hit_rate": r["hit_rate"], "pai": r["pai"],
                 "pei": r["pei"]} for r in summary[summary["coverage"] == 0.01].to_dict("records")]
        create_tables(store.con)
        publish(store.con, "leaderboard", "latest", {"rows": rows, "coverage": 0.01, "folds": report.n_folds,
                                                      "cells": report.area_cells})
        for name in ("retro_count", "prospective"):
            surface = make(name, cell_size=200.0).fit(frame, until=origin).predict(horizon="7d")
            publish(store.con, "forecast", name, surface.to_geojson(top=200))
        best = max((r for r in rows if r["model"] != "oracle"), key=lambda r: r["pai"])
        typer.echo(f"forecast: best PAI at 1% coverage {best['pai']:.1f} ({best['model']}); "
                   f"published next-week surfaces from {origin.date()}")
    finally:
        store.close()


def register(app: typer.Typer) -> None:
    """Add ``demo`` to ``app``."""
    app.command()(demo)
