"""``crimelens report --type {compstat,custom} --out FILE.pdf|.html``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import pandas as pd
import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    FromOpt,
    JsonOpt,
    SourceOpt,
    ToOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    parse_date,
)


def report(
    out: Annotated[Path, typer.Option("--out", help="Output file: .pdf or .html.")],
    type_: Annotated[str, typer.Option("--type", help="compstat (weekly) or custom.")] = "compstat",
    as_of: Annotated[str | None, typer.Option("--as-of", help="CompStat: report date [default: last day].")] = None,
    start: FromOpt = None,
    end: ToOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    area: Annotated[list[str] | None, typer.Option("--area", help="Area value of --level (repeatable).")] = None,
    level: Annotated[str, typer.Option("--level", help="Area breakdown: district, beat, ...")] = "district",
    title: Annotated[str | None, typer.Option(help="Report title.")] = None,
    forecast_model: Annotated[str, typer.Option("--forecast-model", help="Forecaster for the top cells, "
                                                "or 'none'.")] = "retro_count",
    cell: Annotated[float, typer.Option("--cell", help="Hot spot cell size in metres.")] = 250.0,
    email: Annotated[list[str] | None, typer.Option("--email", help="Also email the report (repeatable).")] = None,
    population: Annotated[Path | None, typer.Option("--population", help="CSV group,population: adds the "
                                                    "stops-by-group section (crimelens audit stops).")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Weekly CompStat report or a custom report (category, area, time frame) as PDF or HTML."""
    from crimelens.reports import ReportSpec, build_context, write_report
    from crimelens.store import connect

    if type_ not in ("compstat", "custom"):
        fail("--type must be compstat or custom")
    if out.suffix.lower() not in (".pdf", ".html"):
        fail(f"--out must end in .pdf or .html, got {out.name!r}")
    with errors_to_exit():
        when, frm, to = parse_date(as_of, "--as-of"), parse_date(start, "--from"), parse_date(end, "--to")
        spec = ReportSpec(type=type_, as_of=pd.Timestamp(when) if when else None,  # type: ignore[arg-type]
                          start=pd.Timestamp(frm) if frm else None, end=pd.Timestamp(to) if to else None,
                          categories=tuple(category or ()), sources=tuple(source or ()), area_level=level,
                          areas=tuple(area or ()), title=title, hotspot_cell_m=cell,
                          forecast_model=None if forecast_model == "none" else forecast_model)
        if population is not None:
            from crimelens.governance.disproportionality import read_population

            spec.extra["population"] = read_population(str(population))
        store = connect(db_url(db), read_only=not email)
        try:
            ctx = build_context(store, spec)
            path = write_report(ctx, out)
            sent = None
            if email:
                from crimelens.notify.monitor import AlertMonitor
                from crimelens.reports.scheduler import email_report
                from crimelens.settings import Settings

                mon = AlertMonitor.from_settings(store, Settings())
                email_report(mon, spec, out_dir=out.parent, recipients=tuple(email))
                sent = mon.outbox.counts()
        finally:
            store.close()
    payload = {"type": type_, "out": str(path), "title": ctx["title"], "period": ctx["period"],
               "commands": ctx["commands"], "emailed": list(email or []), "deliveries": sent}
    emit(payload, as_json, f"{ctx['title']} ({ctx['period']}) -> {path}")


def register(app: typer.Typer) -> None:
    """Add ``crimelens report`` to ``app``."""
    app.command("report")(report)
