"""``crimelens patrol evaluate | schedule``: patrol scheduling over shifts (greedy, mclp, rl)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from crimelens.cli.common import (
    CategoryOpt,
    DbOpt,
    FromOpt,
    JsonOpt,
    SourceOpt,
    ToOpt,
    emit,
    errors_to_exit,
    fail,
    parse_date,
)
from crimelens.cli.forecast_cmds import CellOpt, ModelOpt, load_located

if TYPE_CHECKING:
    import pandas as pd

    from crimelens.patrol.calibration import Calibrated
    from crimelens.patrol.heldout import ScheduleSettings
    from crimelens.patrol.schedulers import ThompsonPolicy
    from crimelens.patrol.training import TrainingReport

UnitsOpt = Annotated[int, typer.Option("--units", help="Patrol units per shift.")]
ShiftsOpt = Annotated[int, typer.Option("--shifts", help="Shifts per day (3: day 07-15, evening 15-23, night 23-07).")]
RadiusOpt = Annotated[float, typer.Option("--radius", help="Reach of one unit in metres (0: its own cell).")]
TzOpt = Annotated[str, typer.Option("--tz", help="Local time zone of the shifts (e.g. America/Toronto).")]
GroupOpt = Annotated[str | None, typer.Option("--group-column", help="Area column forming the fairness groups "
                                              "[default: square blocks of --group-km].")]
GroupKmOpt = Annotated[float, typer.Option("--group-km", help="Block size of spatial fairness groups, km.")]
TolOpt = Annotated[float, typer.Option("--tolerance", help="rl fairness: a group's unit share at most (1 + this) "
                                       "times its reported-crime share.")]
StepsOpt = Annotated[int, typer.Option("--steps", help="rl training: simulated shifts per copy.")]
BatchOpt = Annotated[int, typer.Option("--batch", help="rl training: parallel simulation copies.")]
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the simulation and training.")]
DeterOpt = Annotated[float, typer.Option("--deterrence", help="Simulator: rate reduction in covered cells.")]
DisplOpt = Annotated[float, typer.Option("--displacement", help="Simulator: share of deterred crime moved to "
                                         "uncovered neighbours.")]
ReportOpt = Annotated[float, typer.Option("--report-prob", help="Simulator: share of crime the public reports.")]
DiscoverOpt = Annotated[float, typer.Option("--discover-prob", help="Simulator: chance a patrol records an "
                                            "unreported crime in a covered cell.")]
PolicyOpt = Annotated[Path | None, typer.Option("--policy", help="Saved rl policy directory (from schedule "
                                                "--save-policy).")]


def _settings(units: int, shifts: int, radius: float, tz: str, model: str, cell: float, group_column: str | None,
              group_km: float, tolerance: float, steps: int, batch: int, seed: int, deterrence: float,
              displacement: float, report_prob: float, discover_prob: float,
              feedback_weeks: int = 52) -> ScheduleSettings:
    from crimelens.patrol.heldout import ScheduleSettings
    from crimelens.patrol.simulator import SimConfig, shift_structure
    from crimelens.patrol.training import TrainingSettings
    from crimelens.schema import AREA_COLUMNS

    if group_column is not None and group_column not in AREA_COLUMNS:
        fail(f"--group-column must be one of {', '.join(AREA_COLUMNS)}, got {group_column!r}")
    if feedback_weeks < 1:
        fail("--feedback-weeks must be at least 1")
    if report_prob <= 0:
        fail("--report-prob must be above 0")
    with errors_to_exit():
        shift_structure(shifts)
        sim = SimConfig(units=units, radius_m=radius, deterrence=deterrence, displacement=displacement,
                        report_prob=report_prob, discover_prob=discover_prob)
        train = TrainingSettings(steps=steps, batch=batch, tolerance=tolerance, seed=seed)
    return ScheduleSettings(model=model, cell=cell, shifts=shifts, tz=tz, group_column=group_column,
                            group_block_m=group_km * 1000.0, sim=sim, training=train, feedback_weeks=feedback_weeks)


def _load(db: str | None, st: ScheduleSettings, category: list[str] | None, source: list[str] | None) -> Any:
    extra = (st.group_column,) if st.group_column else ()
    return load_located(db, end=None, categories=category, sources=source, extra_columns=extra)


def _policy_grid(policy: Path | None, frame: pd.DataFrame, st: ScheduleSettings,
                 doc: dict[str, Any] | None = None) -> tuple[Any, Any]:
    """The saved policy's grid and cells when the data fit them (else None: the policy check refuses).

    ``policy`` is a policy directory, or with ``doc`` (its manifest) a registry version's arrays file."""
    if policy is None:
        return None, None
    from crimelens.geo.grid import SquareGrid
    from crimelens.patrol.artifact import read_manifest, trained_cells

    g = (doc or read_manifest(policy))["city"]["grid"]
    crs = str(frame["crs"].dropna().iloc[0]) if "crs" in frame.columns and frame["crs"].notna().any() else g["crs"]
    if g["cell_size"] != st.cell or g["crs"] != crs:
        return None, None
    return SquareGrid(**g), trained_cells(policy)


def evaluate(
    methods: Annotated[str, typer.Option("--methods", help="Comma-separated: greedy, mclp, mclp-fair (mclp "
                                         "within rl's fairness caps), rl.")] = "greedy,mclp,mclp-fair,rl",
    start: FromOpt = None,
    end: ToOpt = None,
    units: UnitsOpt = 10,
    shifts: ShiftsOpt = 3,
    radius: RadiusOpt = 300.0,
    tz: TzOpt = "UTC",
    model: ModelOpt = "retro_kde",
    cell: CellOpt = 200.0,
    group_column: GroupOpt = None,
    group_km: GroupKmOpt = 4.0,
    tolerance: TolOpt = 0.25,
    steps: StepsOpt = 300,
    batch: BatchOpt = 16,
    seed: SeedOpt = 0,
    deterrence: DeterOpt = 0.2,
    displacement: DisplOpt = 0.3,
    report_prob: ReportOpt = 0.4,
    discover_prob: DiscoverOpt = 0.6,
    feedback_weeks: Annotated[int, typer.Option("--feedback-weeks", help="Weeks of the feedback-loop run.")] = 52,
    policy: PolicyOpt = None,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Score greedy, mclp and rl shift plans on held-out weeks [--from, --to) of the store's incidents."""
    from crimelens.filters import utc
    from crimelens.patrol.heldout import evaluate_heldout, weekly_origins
    from crimelens.patrol.schedulers import parse_methods

    st = _settings(units, shifts, radius, tz, model, cell, group_column, group_km, tolerance, steps, batch, seed,
                   deterrence, displacement, report_prob, discover_prob, feedback_weeks)
    a, b = parse_date(start, "--from"), parse_date(end, "--to")
    if a is None or b is None:
        fail("--from and --to are required (the held-out weeks)")
    with errors_to_exit():
        names = parse_methods(methods)
        origins = weekly_origins(utc(a), utc(b))
        frame = _load(db, st, category, source)
        grid, cells = _policy_grid(policy, frame, st)
        got = evaluate_heldout(frame, origins, names, st, policy_path=policy, grid=grid, cells=cells)
    lines = [f"{len(origins)} held-out week(s), {got['incidents']} incidents, {units} units x {shifts} shifts"]
    for m, r in got["methods"].items():
        lines.append(f"{m:>6}: covered {r['captured']} ({r['captured_per_shift']:.2f}/shift), harm prevented "
                     f"{r['harm_prevented_per_shift']:.3f}/shift, fairness max ratio {r['fairness']['max_ratio']:.2f}, "
                     f"top-group share {r['stability']['first_week_share']:.2f} -> "
                     f"{r['stability']['last_weeks_share']:.2f} over {feedback_weeks} weeks")
    for key, label in (("rl_vs_mclp", "mclp"), ("rl_vs_mclp_fair", "mclp-fair")):
        if key in got:
            d = got[key]
            lines.append(f"rl - {label} covered per shift: {d['mean_diff']:+.2f} [{d['low']:+.2f}, {d['high']:+.2f}]")
    emit(got, as_json, "\n".join(lines))


def schedule(
    method: Annotated[str, typer.Option("--method", help="greedy, mclp, mclp-fair or rl.")] = "rl",
    at: Annotated[str | None, typer.Option("--at", help="Day the plan is for [default: day after the last "
                                           "incident].")] = None,
    out: Annotated[Path, typer.Option("--out", help="Output .geojson (per-shift sites and covered cells).")]
    = Path("plan.geojson"),
    units: UnitsOpt = 10,
    shifts: ShiftsOpt = 3,
    radius: RadiusOpt = 300.0,
    tz: TzOpt = "UTC",
    model: ModelOpt = "retro_kde",
    cell: CellOpt = 200.0,
    group_column: GroupOpt = None,
    group_km: GroupKmOpt = 4.0,
    tolerance: TolOpt = 0.25,
    steps: StepsOpt = 300,
    batch: BatchOpt = 16,
    seed: SeedOpt = 0,
    deterrence: DeterOpt = 0.2,
    displacement: DisplOpt = 0.3,
    report_prob: ReportOpt = 0.4,
    discover_prob: DiscoverOpt = 0.6,
    policy: PolicyOpt = None,
    save_policy: Annotated[Path | None, typer.Option("--save-policy", help="rl: save the trained policy here "
                                                     "(a versioned directory: manifest.json + policy.npz).")] = None,
    registry: Annotated[Path | None, typer.Option("--registry", help="Model registry [default: "
                                                  "$CRIMELENS_REGISTRY_DIR or ./models]; rl without --policy "
                                                  "plans with its patrol-rl production version.")] = None,
    version: Annotated[str, typer.Option("--version", help="rl: registry version or alias of patrol-rl.")]
    = "production",
    train: Annotated[bool, typer.Option("--train", help="rl: train a new policy even if the registry has one.")]
    = False,
    register_policy: Annotated[bool, typer.Option("--register", help="rl: register the newly trained policy as "
                                                  "patrol-rl's candidate (production when it is the first).")]
    = False,
    store_plan: Annotated[bool, typer.Option("--store-plan/--no-store-plan", help="Also save the plan in the "
                                             "store's patrol_plans table (the dashboard's Plans panel).")] = True,
    category: CategoryOpt = None,
    source: SourceOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Write a per-shift patrol plan for one day (GeoJSON: sites and covered cells by shift)."""
    from crimelens.patrol.artifact import read_manifest
    from crimelens.patrol.heldout import rl_policy, week_city
    from crimelens.patrol.plan_geojson import shift_plan_geojson
    from crimelens.patrol.schedulers import make_scheduler, parse_methods

    if out.suffix.lower() not in (".geojson", ".json"):
        fail(f"--out must end in .geojson, got {out.name!r}")
    st = _settings(units, shifts, radius, tz, model, cell, group_column, group_km, tolerance, steps, batch, seed,
                   deterrence, displacement, report_prob, discover_prob)
    with errors_to_exit():
        (name,) = parse_methods(method)[:1]
        if (train or register_policy) and (name != "rl" or policy is not None):
            fail("--train and --register need --method rl without --policy")
        frame = _load(db, st, category, source)
        origin = _origin(at, frame)
        reg = _registry(registry) if name == "rl" and policy is None and not train else None
        found, ref = (_from_registry(reg, version, frame, origin, st, explicit=registry is not None
                                     or version != "production") if reg is not None else (None, None))
        pol: ThompsonPolicy | None
        report: TrainingReport | None = None
        if found is not None:
            pol, cal = found
        else:
            grid, cells = _policy_grid(policy, frame, st)
            cal = week_city(frame, origin, st, grid=grid, cells=cells)
            pol, report = rl_policy(cal, st, policy) if name == "rl" else (None, None)
        sched = make_scheduler(name, cal.city, st.sim, policy=pol, tolerance=st.training.tolerance,
                               reported=cal.estimate)
        geo = shift_plan_geojson(cal, st.sim, sched, origin)
        geo["plan"]["training"] = report.to_dict() if report else None
        if save_policy is not None or register_policy:
            if pol is None or report is None:
                fail("--save-policy needs --method rl without --policy (it saves a newly trained policy)")
            geo["plan"]["policy"], geo["plan"]["registered"] = _save(pol, report, cal, st, origin, save_policy,
                                                                     registry, register=register_policy)
        elif pol is not None and policy is not None:
            geo["plan"]["policy"] = read_manifest(policy)["version"]
        elif ref is not None:
            geo["plan"]["policy"] = ref
        if store_plan:
            geo["id"] = _store(db, geo)
        out.write_text(json.dumps(geo), encoding="utf-8")
    summary = {**geo["plan"], "out": str(out), "plan_id": geo.get("id")}
    emit(summary, as_json, f"{name}: {units} units x {shifts} shifts for {origin.date()}, fairness max ratio "
                           f"{summary['fairness']['max_ratio']:.2f} -> {out}")


def _store(db: str | None, geo: dict[str, Any]) -> str:
    """Save the plan in the store's ``patrol_plans`` table; return its id."""
    from contextlib import closing

    from crimelens.cli.common import db_url
    from crimelens.patrol.plans_table import save_plan
    from crimelens.store import connect

    with closing(connect(db_url(db))) as store:
        return save_plan(store, geo)


def _registry(path: Path | None, *, create: bool = False) -> Any:
    from crimelens.cli.ops_cmds import registry_dir
    from crimelens.registry import ModelRegistry

    root = registry_dir(path)
    if path is not None and not create and not root.is_dir():
        fail(f"--registry: no registry folder at {root}")
    return ModelRegistry(root)


def _from_registry(reg: Any, ref: str, frame: pd.DataFrame, origin: pd.Timestamp, st: ScheduleSettings, *,
                   explicit: bool) -> tuple[tuple[ThompsonPolicy, Calibrated] | None, str | None]:
    """The registered patrol-rl policy at ``ref`` with its city (None, None when the registry has none
    and none was asked for explicitly: a policy is trained instead)."""
    from crimelens.patrol.heldout import week_city
    from crimelens.patrol.registered import POLICY_NAME, load_registered, registered_doc
    from crimelens.registry import RegistryError

    try:
        _, doc, arrays = registered_doc(reg, ref)
    except RegistryError:
        if explicit or (POLICY_NAME in reg.names() and ref != "production"):
            raise
        return None, None
    grid, cells = _policy_grid(arrays, frame, st, doc)
    cal = week_city(frame, origin, st, grid=grid, cells=cells)
    pol, name = load_registered(reg, cal.city, ref=ref, units=st.sim.units)
    pol.reported = cal.estimate
    return (pol, cal), name


def _save(pol: ThompsonPolicy, report: TrainingReport, cal: Calibrated, st: ScheduleSettings,
          origin: pd.Timestamp, path: Path | None, registry: Path | None = None, *,
          register: bool = False) -> tuple[str, str | None]:
    """Save the trained policy with its settings and its simulator evaluation (to ``path``, and as a
    registry version when ``register``); return its version and ``patrol-rl@vN`` or None."""
    import os
    import tempfile

    from crimelens.patrol.artifact import save_policy
    from crimelens.patrol.evaluation import cap_audit, harm_prevented, plan_shifts
    from crimelens.patrol.schedulers import make_scheduler

    plans = {m: plan_shifts(make_scheduler(m, cal.city, st.sim, policy=pol), cal.estimate)
             for m in ("greedy", "mclp", "mclp-fair", "rl")}
    harm = {m: round(float(harm_prevented(cal.city, st.sim, p).mean()), 4) for m, p in plans.items()}
    fairness = cap_audit(cal.city, plans["rl"], cal.estimate, pol.tolerance)
    with tempfile.TemporaryDirectory() as tmp:
        target = path or Path(tmp) / "policy"
        manifest = save_policy(pol, target, training={"settings": st.to_dict(), "report": report.to_dict(),
                                                      "trained_before": origin.isoformat()},
                               evaluation={"harm_prevented_per_shift_in_simulator": harm,
                                           "fairness_audit": fairness})
        registered = None
        if register:
            from crimelens.patrol.registered import register_policy

            m = register_policy(_registry(registry, create=True), target, by=os.environ.get("USER", "cli"))
            registered = f"{m.name}@{m.version}"
    return str(manifest["version"]), registered


def _origin(at: str | None, frame: pd.DataFrame) -> pd.Timestamp:
    """``--at`` as UTC midnight, or the day after the last incident."""
    import pandas as pd

    from crimelens.filters import utc

    when = parse_date(at, "--at")
    if when is not None:
        return utc(when).normalize()
    return utc(frame["occurred_at"].max()).normalize() + pd.Timedelta(days=1)


def register(patrol_app: typer.Typer) -> None:
    """Add ``evaluate`` and ``schedule`` to the ``patrol`` group."""
    patrol_app.command("evaluate")(evaluate)
    patrol_app.command("schedule")(schedule)
