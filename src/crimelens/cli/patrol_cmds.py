"""``crimelens patrol``: place patrol units on a forecast and, for a past date, score the plan.

``patrol`` is a group: without a subcommand it makes the static maximal-covering plan (as it always
did); ``evaluate`` and ``schedule`` (``patrol_shift_cmds``) schedule over shifts.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from crimelens.cli.common import CategoryOpt, DbOpt, JsonOpt, SourceOpt, emit, errors_to_exit, fail, parse_date
from crimelens.cli.forecast_cmds import CellOpt, HorizonOpt, JobsOpt, ModelOpt, load_located
from crimelens.schema import AREA_COLUMNS

patrol_app = typer.Typer(invoke_without_command=True, no_args_is_help=False,
                         help="Patrol plans: a static maximal-covering plan, or shift schedules (evaluate, "
                              "schedule).")


def patrol(
    ctx: typer.Context,
    units: Annotated[int, typer.Option("--units", help="Patrol units to place.")] = 10,
    radius: Annotated[float, typer.Option("--radius", help="Reach of one unit in metres (0: its own cell).")]
    = 300.0,
    separation: Annotated[float, typer.Option("--separation", help="Minimum distance between sites, metres.")]
    = 0.0,
    area: Annotated[str | None, typer.Option("--area", help="Area column for --min-per-area (district, beat...).")]
    = None,
    min_per_area: Annotated[int, typer.Option("--min-per-area", help="At least this many units in every area.")]
    = 0,
    method: Annotated[str, typer.Option("--method", help="auto, milp (optimal) or greedy.")] = "auto",
    time_limit: Annotated[float, typer.Option("--time-limit", help="Solver time limit, seconds.")] = 20.0,
    model: ModelOpt = "retro_kde",
    cell: CellOpt = 200.0,
    horizon: HorizonOpt = "7d",
    at: Annotated[str | None, typer.Option("--at", help="Start of the patrol window [default: day after the last "
                                           "incident]. A past date also scores the plan on what happened.")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output: .geojson (sites and covered cells) or .csv (sites).")]
    = Path("patrol.geojson"),
    jobs: JobsOpt = 1,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Send --units patrols where they cover the most forecast crime (maximal covering).

    Subcommands evaluate and schedule plan over shifts (greedy, mclp, rl).
    """
    import json

    from crimelens.filters import utc
    from crimelens.forecast import make, parse_horizon
    from crimelens.patrol import allocate, score_plan

    if ctx.invoked_subcommand is not None:
        return
    if out.suffix.lower() not in (".geojson", ".json", ".csv"):
        fail(f"--out must end in .geojson or .csv, got {out.name!r}")
    if area is not None and area not in AREA_COLUMNS:
        fail(f"--area must be one of {', '.join(AREA_COLUMNS)}, got {area!r}")
    if min_per_area and area is None:
        fail("--min-per-area needs --area")
    with errors_to_exit():
        origin = parse_date(at, "--at")
        days = parse_horizon(horizon)
        extra = (area,) if area else ()
        frame = load_located(db, end=None, categories=category, sources=source, extra_columns=extra)
        before = frame if origin is None else frame[frame["occurred_at"] < utc(origin)]
        if before.empty:
            fail("no located incidents before --at to forecast from")
        est = make(model, cell_size=cell, horizon=horizon, n_jobs=jobs)
        est.fit(before, until=origin)
        surface = est.predict(horizon=horizon)
        areas = _cell_areas(surface.grid.cell_of(before["x"].to_numpy(), before["y"].to_numpy()),
                            before[area]) if area else None
        plan = allocate(surface, units, radius_m=radius, min_separation_m=separation, areas=areas,
                        min_per_area=min_per_area, method=method,  # type: ignore[arg-type]
                        time_limit_s=time_limit)
        after = frame[(frame["occurred_at"] >= surface.start) & (frame["occurred_at"] < surface.end)]
        realised = score_plan(plan, after["x"].to_numpy(), after["y"].to_numpy()) if len(after) else None
        if out.suffix.lower() == ".csv":
            plan.to_frame().to_csv(out, index=False)
        else:
            geo = plan.to_geojson()
            geo["plan"]["realised"] = realised
            out.write_text(json.dumps(geo), encoding="utf-8")
    payload: dict[str, Any] = {**plan.summary(), "out": str(out), "window_days": days, "realised": realised}
    payload.pop("forecast")
    payload["model"] = model
    human = (f"{plan.summary()['units']} units ({plan.method}) cover {len(plan.covered)} cells "
             f"({plan.coverage_share:.1%} of the area) and {plan.expected_share:.1%} of the forecast crime "
             f"for {surface.start.date()} to {surface.end.date()} -> {out}")
    if realised and realised["incidents"]:
        human += (f"\nwhat happened: {realised['captured']} of {realised['incidents']} incidents in covered cells "
                  f"(hit rate {realised['hit_rate']:.1%}, PAI {realised['pai']:.1f})")
    emit(payload, as_json, human)


def _cell_areas(cells: Any, labels: Any) -> dict[int, str]:
    """Each cell's most common area among its incidents."""
    import pandas as pd

    frame = pd.DataFrame({"cell": cells, "area": labels}).dropna()
    frame = frame[frame["cell"] >= 0]
    if frame.empty:
        fail("no incident has a value in the --area column")
    top = frame.groupby(["cell", "area"]).size().reset_index(name="n").sort_values(["cell", "n", "area"],
                                                                                   ascending=[True, False, True])
    first = top.drop_duplicates("cell")
    return {int(c): str(a) for c, a in zip(first["cell"], first["area"], strict=True)}


def register(app: typer.Typer) -> None:
    """Add the ``patrol`` group (static plan as its callback, shift commands beneath) to the application."""
    from crimelens.cli import patrol_shift_cmds

    patrol_app.callback()(patrol)
    patrol_shift_cmds.register(patrol_app)
    app.add_typer(patrol_app, name="patrol")
