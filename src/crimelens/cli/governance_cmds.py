"""``crimelens audit`` (bias audit of a forecast, BIA-02/03), ``crimelens audit stops``
(disproportionality of stops and arrests) and ``crimelens drift`` (MON-01)."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Annotated, Any

import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    FromOpt,
    JsonOpt,
    KindOpt,
    SourceOpt,
    ToOpt,
    db_url,
    emit,
    errors_to_exit,
    fail,
    make_filter,
    parse_date,
)
from crimelens.exceptions import InputError

BASE_COLUMNS = ["occurred_at", "time_precision", "x", "y", "category", "crs", "discovery"]


def _read(db: str | None, *, start: datetime | None, end: datetime | None, columns: list[str],
          categories: list[str] | None, sources: list[str] | None) -> tuple[Any, str]:
    """Located incidents in ``[start, end)`` and the store's time zone."""
    from crimelens.filters import IncidentFilter
    from crimelens.store import connect

    flt = IncidentFilter(start=start, end=end, categories=tuple(categories or ()),
                         sources=tuple(sources or ()), located=True)
    flt.category_names()
    store = connect(db_url(db), read_only=True)
    try:
        frame = store.incidents(flt, columns=columns)
        tz = store.timezone(tuple(sources or ()))
    finally:
        store.close()
    return frame[frame["x"].notna() & frame["y"].notna()], tz


def _window(text: str, name: str) -> tuple[datetime, datetime]:
    parts = text.split(":")
    if len(parts) != 2 or not all(parts):
        fail(f"{name}: expected FROM:TO dates like 2024-01-01:2024-04-01, got {text!r}")
    lo, hi = parse_date(parts[0], name), parse_date(parts[1], name)
    if lo is None or hi is None or hi <= lo:
        fail(f"{name}: the end {parts[1]} is not after the start {parts[0]}")
    return lo, hi


def _population(path: Path, grid: Any, cells: Any, labels: Any) -> Any:
    """Membership from a population CSV: x/y (grid CRS) or lon/lat, population, optional group."""
    import pandas as pd

    from crimelens.geo.crs import to_local
    from crimelens.governance.fairness import GroupMembership, population_by_cell

    points = pd.read_csv(path)
    if "x" not in points.columns and {"lon", "lat"} <= set(points.columns):
        x, y = to_local(points["lon"].to_numpy(float), points["lat"].to_numpy(float), grid.crs)
        points = points.assign(x=x, y=y)
    has_group = "group" in points.columns
    table = population_by_cell(points, grid, group="group" if has_group else None)
    if has_group:
        return GroupMembership.from_table(cells, table)
    pop = table.groupby("cell_id")["population"].sum().reindex(cells, fill_value=0.0).to_numpy(float)
    return GroupMembership.from_labels(cells, labels, population=pop)


def audit(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="Forecaster to audit (retro_count, retro_kde, sepp, gbm, "
                                       "...).")] = "retro_count",
    cell: Annotated[float, typer.Option("--cell", help="Cell size in metres.")] = 200.0,
    coverage: Annotated[float, typer.Option("--coverage", help="Share of the area's cells selected.")] = 0.05,
    at: Annotated[str | None, typer.Option("--at", help="Forecast origin: fit before it, audit the window "
                                           "after it.")] = None,
    horizon: Annotated[str, typer.Option("--horizon", help="Held-out window after --at (1d, 7d, 28d).")] = "28d",
    groups: Annotated[str, typer.Option("--groups", help="Area column whose values are the groups "
                                        "(neighbourhood, community_area, district, beat, ward, lsoa).")]
    = "neighbourhood",
    population: Annotated[Path | None, typer.Option("--population", help="CSV of population points: x,y (data "
                                                    "CRS) or lon,lat; population; optional group.")] = None,
    police_initiated_weight: Annotated[float, typer.Option(
        "--police-initiated-weight", help="Training weight of police-initiated incidents (0 excludes them: "
        "the feedback-loop guard).")] = 1.0,
    out: Annotated[Path, typer.Option("--out", help="Directory for audit.json, audit.html, audit.png.")]
    = Path("audit"),
    jobs: Annotated[int, typer.Option("--jobs", help="Threads for models that use them.")] = 1,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fit a forecaster before --at, select its top cells and audit them by group.

    ``crimelens audit stops`` audits stops and arrests against a population instead.
    """
    if ctx.invoked_subcommand is not None:
        return
    import numpy as np
    import pandas as pd

    from crimelens.forecast import make, parse_horizon
    from crimelens.forecast.persistence import model_metadata
    from crimelens.governance.audit_report import write_audit
    from crimelens.governance.fairness import GroupMembership, audit_selection, cell_labels
    from crimelens.governance.feedback import guard_incidents
    from crimelens.schema import AREA_COLUMNS

    if groups not in AREA_COLUMNS:
        fail(f"--groups must be one of {', '.join(AREA_COLUMNS)}, got {groups!r}")
    if not 0 < coverage <= 1:
        fail(f"--coverage must be in (0, 1], got {coverage}")
    if population is not None and not population.is_file():
        fail(f"--population: no such file {population}")
    with errors_to_exit():
        origin = parse_date(at, "--at")
        if origin is None:
            fail("audit needs --at (the forecast origin)")
        days = parse_horizon(horizon)
        end = origin + timedelta(days=days)
        frame, _ = _read(db, start=None, end=end, columns=[*BASE_COLUMNS, groups], categories=category,
                         sources=source)
        when = pd.DatetimeIndex(frame["occurred_at"])
        cut = pd.Timestamp(origin, tz="UTC") if origin.tzinfo is None else pd.Timestamp(origin).tz_convert("UTC")
        train, test = frame[when < cut], frame[when >= cut]
        if len(train) == 0:
            fail(f"no located incidents before --at {at}")
        guarded = guard_incidents(train, police_initiated_weight=police_initiated_weight)
        if len(guarded) == 0:
            fail("no incidents left to train on after excluding police-initiated ones")
        est = make(model, cell_size=cell, horizon=horizon, n_jobs=jobs).fit(guarded, until=cut)
        surface = est.predict(horizon=horizon)
        grid, cells = surface.grid, surface.cells()
        labels = cell_labels(train, grid, groups, cells)
        if labels.isna().all() and (population is None):
            fail(f"no incident has a {groups!r} value: choose another --groups or give --population")
        membership = (_population(population, grid, cells, labels.to_numpy()) if population is not None
                      else GroupMembership.from_labels(cells, labels.to_numpy()))
        tc = grid.cell_of(test["x"].to_numpy(float), test["y"].to_numpy(float))
        observed = np.bincount(tc[tc >= 0], minlength=grid.n_cells).astype(float)
        meta = {
            "model": model, "model_metadata": model_metadata(est, training=guarded),
            "training_window": {"end": cut.isoformat(), "incidents": len(guarded)},
            "test_window": {"start": surface.start.isoformat(), "end": surface.end.isoformat(),
                            "incidents": len(test)},
            "group_by": groups, "population_file": str(population) if population else None,
            "guard": {"police_initiated_weight": police_initiated_weight,
                      "excluded_or_thinned": int(len(train) - len(guarded))},
        }
        result = audit_selection(surface, membership, coverage=coverage, observed=observed, metadata=meta)
        paths = write_audit(result, out)
    doc = result.to_dict()
    payload = {"status": doc["status"], "passed": doc["passed"], "flagged": doc["flagged"], "k": doc["k"],
               "area_cells": doc["area_cells"],
               "overall": doc["overall"], "concentration": doc["concentration"],
               "files": [str(p) for p in paths]}
    human = (f"{model}: top {100 * coverage:g} % = {result.k} of {result.area_cells} cells; "
             f"{len(result.groups)} groups, {result.status}, {len(result.flagged)} flagged"
             + (f" ({', '.join(result.flagged[:8])}{', ...' if len(result.flagged) > 8 else ''})"
                if result.flagged else "")
             + f"; Gini {doc['concentration']['gini_selection_rate']:.2f} -> {out}/")
    emit(payload, as_json, human)


def drift(
    reference: Annotated[str, typer.Option("--reference", help="Reference window FROM:TO (dates, end exclusive).")],
    current: Annotated[str, typer.Option("--current", help="Current window FROM:TO.")],
    cell: Annotated[float | None, typer.Option("--cell", help="Also watch the grid cell (metres).")] = None,
    psi_warn: Annotated[float, typer.Option("--psi-warn", help="PSI warning threshold.")] = 0.1,
    psi_alert: Annotated[float, typer.Option("--psi-alert", help="PSI alert threshold.")] = 0.25,
    metric_reference: Annotated[float | None, typer.Option("--metric-reference", help="Backtest metric (e.g. PAI) "
                                                           "of the model when it was fitted.")] = None,
    metric_current: Annotated[float | None, typer.Option("--metric-current", help="The same metric now.")] = None,
    out: Annotated[Path | None, typer.Option("--out", help="Write the full report as JSON here.")] = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Drift of the incident features (category, hour, weekday, x, y) between two windows."""
    from crimelens.geo.grid import SquareGrid
    from crimelens.governance.drift import DriftThresholds, incident_drift, should_retrain

    ref_win = _window(reference, "--reference")
    cur_win = _window(current, "--current")
    with errors_to_exit():
        th = DriftThresholds(psi_warn=psi_warn, psi_alert=psi_alert)
        cols = ["occurred_at", "time_precision", "x", "y", "category", "crs"]
        ref, tz = _read(db, start=ref_win[0], end=ref_win[1], columns=cols, categories=category, sources=source)
        cur, _ = _read(db, start=cur_win[0], end=cur_win[1], columns=cols, categories=category, sources=source)
        if len(ref) == 0 or len(cur) == 0:
            fail(f"no located incidents in the {'reference' if len(ref) == 0 else 'current'} window")
        grid = None
        if cell is not None:
            import pandas as pd

            xy = pd.concat([ref[["x", "y"]], cur[["x", "y"]]])
            grid = SquareGrid.covering(xy["x"].to_numpy(float), xy["y"].to_numpy(float), cell, "local")
        meta = {"reference": reference, "current": current, "timezone": tz}
        report = incident_drift(ref, cur, timezone=tz, grid=grid, thresholds=th, metadata=meta)
        decision = should_retrain(report, metric_reference=metric_reference, metric_current=metric_current)
        doc = report.to_dict()
        doc["decision"] = decision.to_dict()
        if out is not None:
            import json

            out.write_text(json.dumps(doc, indent=2), encoding="utf-8")
    slim = {"status": doc["status"], "flagged": doc["flagged"], "decision": doc["decision"],
            "features": {f["name"]: {k: f[k] for k in ("psi", "js_distance", "test", "p_value", "flag")}
                         for f in doc["features"]}}
    lines = [f"{'feature':<10} {'PSI':>7} {'JS':>6} {'test':>5} {'p':>9}  flag"]
    for f in report.features:
        lines.append(f"{f.name:<10} {f.psi:7.3f} {f.js_distance:6.3f} {f.test:>5} {f.p_value:9.2g}  {f.flag}")
    lines.append(f"status: {report.status}; retrain: {'yes' if decision.retrain else 'no'}"
                 + (f" ({'; '.join(decision.reasons)})" if decision.reasons else ""))
    emit(slim, as_json, "\n".join(lines))


#: Subject columns an audit of stops can group by.
GROUP_COLUMNS = {"officer": "subject_ethnicity_officer", "self": "subject_ethnicity_self",
                 "sex": "subject_sex", "age": "subject_age_band"}


def audit_stops(
    population: Annotated[Path, typer.Option("--population", help="CSV with columns group,population "
                                             "(residents per group).")],
    group: Annotated[str, typer.Option("--group", help="Group by: officer (officer-defined ethnicity), self "
                                       "(self-defined), sex, age.")] = "officer",
    reference: Annotated[str | None, typer.Option("--reference", help="Reference group [default: the largest "
                                                  "population].")] = None,
    kind: KindOpt = None,
    start: FromOpt = None,
    end: ToOpt = None,
    source: SourceOpt = None,
    level: Annotated[float, typer.Option("--level", help="Confidence level of the intervals.")] = 0.95,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Stop or arrest rates per 1,000 residents by group, rate ratios, outcome rates and the hit-rate test."""
    from crimelens.governance.disproportionality import disproportionality, read_population
    from crimelens.store import connect

    if group not in GROUP_COLUMNS:
        fail(f"--group must be one of {', '.join(GROUP_COLUMNS)}")
    if kind and "crime" in kind:
        fail("audit stops audits stops or arrests; --kind crime is not a stop")
    flt = make_filter(start, end, None, source, kind or ["stop"])
    column = GROUP_COLUMNS[group]
    with errors_to_exit():
        table = read_population(str(population))
        store = connect(db_url(db), read_only=True)
        try:
            records = store.incidents(flt, columns=[column, "outcome", "search_hit"])
        finally:
            store.close()
        if records.empty:
            raise InputError(f"the store holds no {' or '.join(flt.kinds)} records for this filter")
        result = disproportionality(records, table, group_column=column, reference=reference, level=level)
    payload = {"kinds": list(flt.kinds), **result.to_dict()}
    emit(payload, as_json, _stops_human(payload))


def _num(v: float | None, missing: str = "n/a") -> str:
    return missing if v is None else f"{v:.2f}"


def _stops_human(d: dict[str, Any]) -> str:
    pct = f"{d['level']:.0%}"
    lines = [f"{d['records']:,} records by {d['group_column']}; reference {d['reference']}; {pct} intervals",
             f"{'group':<24}{'records':>9}{'per 1,000':>11}  {'rate ratio':<22}{'hit rate':>9}"]
    for g in d["groups"]:
        rr = "reference" if g["rate_ratio_ci"] is None else (
            f"{_num(g['rate_ratio'])} ({_num(g['rate_ratio_ci'][0])}-{_num(g['rate_ratio_ci'][1], 'inf')})")
        hit = "" if not g["hit_rate"] or g["hit_rate"]["rate"] is None else f"{g['hit_rate']['rate']:.1%}"
        lines.append(f"{g['group'][:23]:<24}{g['records']:>9,}{g['rate_per_1000']:>11.2f}  {rr:<22}{hit:>9}")
    if d["hit_rate_test"]:
        t = d["hit_rate_test"]
        lines.append(f"hit rates equal across groups: chi2 {t['chi2']:.1f} on {t['dof']} df, p = {t['p_value']:.2g}")
    if d["not_recorded"] or d["unmatched"]:
        lines.append(f"not recorded: {d['not_recorded']:,}; not in the population table: "
                     + (", ".join(f"{k} {v:,}" for k, v in d["unmatched"].items()) or "none"))
    return "\n".join(lines)


def register(app: typer.Typer) -> None:
    """Add ``audit`` (with its ``stops`` subcommand) and ``drift`` to the application."""
    audit_app = typer.Typer(name="audit", invoke_without_command=True, no_args_is_help=False)
    audit_app.callback(invoke_without_command=True)(audit)
    audit_app.command("stops")(audit_stops)
    app.add_typer(audit_app, name="audit")
    app.command("drift")(drift)
