"""Patrol allocation on Toronto: maximal covering (exact and greedy) against the naive plan.

    python bench/patrol.py [--units 20] [--radius 300] [--separation 0] [--folds 12]

For weekly origins in 2021, `retro_kde` (200 m cells) forecasts the week; three plans place
``--units`` units, each covering the cells within ``--radius`` of its site:

* naive: the ``units`` riskiest cells as sites (what a top-N hot spot list gives a commander);
* greedy maximal covering; * exact maximal covering (HiGHS MILP).

Printed per plan: expected crime covered (from the forecast), the week's incidents captured,
hit rate, PAI (hit rate / covered share of the area), and solve seconds — with ratios against
the naive plan measured in the same run.

    python bench/patrol.py --shifts 3 [--units 20] [--radius 300] [--folds 8] [--steps 200] [--json out.json]

Shift scheduling instead: greedy, mclp, mclp-fair (mclp within rl's fairness caps) and rl
(:mod:`crimelens.patrol.heldout`) on held-out weeks
of 2021, 3 shifts in Toronto time, fairness groups of 8 km blocks; then the simulator's speed
(simulated shifts per second with random sites, batch 1 and 64) and the rl training time, each
against the batch-1 simulator measured in the same process.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from crimelens.forecast import make
from crimelens.forecast.surface import RiskSurface
from crimelens.patrol import allocate, score_plan
from crimelens.patrol.allocation import PatrolPlan
from forecast import load_toronto


def naive(surface: RiskSurface, units: int, radius: float) -> PatrolPlan:
    """The top ``units`` cells as sites, each covering its reach (overlaps not avoided)."""
    top = surface.order()[:units]
    x, y = surface.grid.centres(surface.cells())
    sx, sy = surface.grid.centres(top)
    near = (np.hypot(x[:, None] - sx[None, :], y[:, None] - sy[None, :]) <= radius + 1e-6).any(axis=1)
    covered = surface.cells()[near]
    w = surface.expected()
    return PatrolPlan(surface, top, covered, radius, float(w[covered].sum()),
                      float(w[surface.cells()].sum()), "naive", float("nan"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--units", type=int, default=20)
    ap.add_argument("--radius", type=float, default=300.0)
    ap.add_argument("--separation", type=float, default=0.0)
    ap.add_argument("--folds", type=int, default=12)
    ap.add_argument("--shifts", type=int, default=0, help="0: the static plans; N: shift scheduling with N shifts")
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--json", type=Path, default=None)
    ap.add_argument("--methods", default="greedy,mclp,mclp-fair,rl")
    ap.add_argument("--no-fairness", action="store_true", help="rl without its fairness cap")
    ap.add_argument("--synthetic", action="store_true", help="shift scheduling judged against a synthetic truth")
    ap.add_argument("--map", type=Path, default=None, help="only draw mclp vs rl sites of one shift to this PNG")
    args = ap.parse_args()
    if args.synthetic:
        synthetic_mode(args)
        return
    data = load_toronto()
    if args.shifts:
        shift_mode(data, args)
        return
    origins = pd.date_range("2021-01-04", "2021-12-27", freq="7D", tz="UTC")
    origins = origins[:: max(1, len(origins) // args.folds)][: args.folds]
    rows = []
    for origin in origins:
        train = data[data["occurred_at"] < origin]
        week = data[(data["occurred_at"] >= origin) & (data["occurred_at"] < origin + pd.Timedelta(days=7))]
        surface = make("retro_kde", cell_size=200.0, horizon="7d").fit(train, until=origin).predict(horizon="7d")
        plans: dict[str, tuple[PatrolPlan, float]] = {}
        t = time.perf_counter()
        plans["naive"] = (naive(surface, args.units, args.radius), time.perf_counter() - t)
        for method in ("greedy", "milp"):
            t = time.perf_counter()
            p = allocate(surface, args.units, radius_m=args.radius, min_separation_m=args.separation,
                         method=method)  # type: ignore[arg-type]
            plans[method] = (p, time.perf_counter() - t)
        for name, (p, secs) in plans.items():
            got = score_plan(p, week["x"].to_numpy(), week["y"].to_numpy())
            rows.append({"origin": origin.date(), "plan": name, "cells": len(p.covered),
                         "expected": p.expected_covered, "captured": got["captured"], "incidents": got["incidents"],
                         "hit_rate": got["hit_rate"], "pai": got["pai"], "seconds": secs})
        print(origin.date(), {n: rows[-3 + i]["captured"] for i, n in enumerate(plans)}, flush=True)
    frame = pd.DataFrame(rows)
    table = frame.groupby("plan", sort=False).agg(cells=("cells", "mean"), expected=("expected", "mean"),
                                                  captured=("captured", "sum"), incidents=("incidents", "sum"),
                                                  pai=("pai", "mean"), seconds=("seconds", "mean"))
    table["hit_rate"] = table["captured"] / table["incidents"]
    base = table.loc["naive"]
    table["captured_vs_naive"] = table["captured"] / base["captured"]
    table["expected_vs_naive"] = table["expected"] / base["expected"]
    print(f"\n{args.units} units, radius {args.radius:g} m, separation {args.separation:g} m, "
          f"{len(origins)} weekly origins in 2021, retro_kde on 200 m cells")
    print(table.round(3).to_string())


def shift_mode(data: pd.DataFrame, args: argparse.Namespace) -> None:
    """Held-out shift scheduling on Toronto, then simulator and training speed."""
    import json

    from crimelens.patrol.heldout import ScheduleSettings, evaluate_heldout, week_city
    from crimelens.patrol.simulator import SimConfig, VecPatrolSim
    from crimelens.patrol.training import TrainingSettings, train_policy

    st = ScheduleSettings(cell=200.0, shifts=args.shifts, tz="America/Toronto", group_block_m=8000.0,
                          sim=SimConfig(units=args.units, radius_m=args.radius),
                          training=TrainingSettings(steps=args.steps, batch=16,
                                                    tolerance=None if args.no_fairness else 0.25))
    origins = list(pd.date_range("2021-01-04", "2021-12-27", freq="7D", tz="UTC"))
    origins = origins[:: max(1, len(origins) // args.folds)][: args.folds]
    if args.map:
        draw_map(data, origins[0], st, args.map)
        return
    t = time.perf_counter()
    got = evaluate_heldout(data, origins, args.methods.split(","), st)
    got["seconds"] = time.perf_counter() - t
    print(f"{len(origins)} held-out weeks, {got['incidents']} incidents, {args.units} units x {args.shifts} shifts, "
          f"{got['seconds']:.0f} s")
    for m, r in got["methods"].items():
        print(m, {k: r[k] for k in ("captured", "captured_per_shift", "hit_rate", "harm_prevented_per_shift")},
              r["fairness"], r["stability"])
    print("rl - mclp captured per shift-week:", got.get("rl_vs_mclp"))
    print("rl - mclp-fair captured per shift-week:", got.get("rl_vs_mclp_fair"))
    cal = week_city(data, origins[0], st)
    rng = np.random.default_rng(0)
    speed = {}
    for batch in (1, 64):
        sim = VecPatrolSim(cal.city, st.sim, batch=batch)
        n = max(20, 2000 // batch)
        t = time.perf_counter()
        for _ in range(n):
            sim.step(rng.integers(0, cal.city.n, size=(batch, args.units)))
        speed[batch] = n * batch / (time.perf_counter() - t)
    _, report = train_policy(cal.city, cal.estimate, st.sim, st.training)
    got["speed"] = {"cells": cal.city.n, "sim_shifts_per_s_batch1": speed[1], "sim_shifts_per_s_batch64": speed[64],
                    "batch64_vs_batch1": speed[64] / speed[1], "training": report.to_dict(),
                    "training_vs_sim_batch1": report.shifts_per_s / speed[1]}
    print(json.dumps(got["speed"], indent=1))
    if args.json:
        args.json.write_text(json.dumps(got, indent=1, default=str), encoding="utf-8")


def synthetic_mode(args: argparse.Namespace) -> None:
    """Harm prevented against a synthetic city's truth: the simulator plays the true weekly intensity,
    the schedulers see only a retro_kde forecast fitted on the incidents before each week."""
    import json

    from crimelens.patrol.calibration import calibrate, shift_index, shift_shares
    from crimelens.patrol.evaluation import coverage_fairness, feedback_run, harm_prevented, plan_shifts
    from crimelens.patrol.schedulers import make_scheduler
    from crimelens.patrol.simulator import SimConfig, shift_structure
    from crimelens.patrol.training import TrainingSettings, train_policy
    from crimelens.synth import CityConfig, generate_city

    city = generate_city(CityConfig(n_incidents=40_000, days=365, seed=11, size_m=12_000))
    inc, truth = city.incidents, city.truth
    shifts = shift_structure(args.shifts)
    sim = SimConfig(units=args.units, radius_m=args.radius)
    weekly = truth.expected("all")
    weeks = sorted(weekly["week_start"].unique())[30:30 + 4 * args.folds:4][: args.folds]
    rows: dict[str, list[float]] = {m: [] for m in args.methods.split(",")}
    fair: dict[str, list[float]] = {m: [] for m in rows}
    first = None
    for w in weeks:
        origin = pd.Timestamp(w)
        before = inc[inc["occurred_at"] < origin]
        surface = make("retro_kde", grid=truth.grid, horizon="7d").fit(before, until=origin).predict(horizon="7d")
        cal = calibrate(surface, before, shifts, tz="America/Chicago", report_prob=sim.report_prob,
                        group_block_m=4000.0)
        cells = cal.city.cells
        true_week = weekly[weekly["week_start"] == w].set_index("cell_id")["expected"].reindex(cells).fillna(0.0)
        cell = truth.grid.cell_of(before["x"].to_numpy(float), before["y"].to_numpy(float))
        shares = shift_shares(cell, shift_index(before["occurred_at"], shifts, "America/Chicago"), cells, len(shifts))
        real = cal.city.with_rates(true_week.to_numpy()[None, :] / 7.0 * shares / sim.report_prob)
        policy, report = train_policy(cal.city, cal.estimate, sim, TrainingSettings(steps=args.steps, batch=16))
        for m in rows:
            plans = plan_shifts(make_scheduler(m, cal.city, sim, policy=policy, reported=cal.estimate), cal.estimate)
            rows[m].extend(harm_prevented(real, sim, plans))
            fair[m].append(coverage_fairness(cal.city, plans, cal.estimate)["max_ratio"])
        first = first or (real, cal, policy)
    assert first is not None
    out = {}
    for m in rows:
        sched = make_scheduler(m, first[1].city, sim, policy=first[2], reported=first[1].estimate)
        stab = feedback_run(first[0], first[1].estimate, sim, sched, police_initiated_weight=0.0 if m == "rl" else 1.0)
        out[m] = {"harm_prevented_per_shift": float(np.mean(rows[m])), "fairness_max_ratio": float(np.max(fair[m])),
                  "stability": stab.summary()}
        print(m, out[m])
    print(f"{len(weeks)} weeks of a synthetic city ({first[0].n} cells), last training {report.to_dict()}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")


def draw_map(data: pd.DataFrame, origin: pd.Timestamp, st: object, path: Path) -> None:
    """The evening shift of the week at ``origin``: forecast, fairness blocks, mclp and rl sites."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from crimelens.patrol.heldout import ScheduleSettings, week_city
    from crimelens.patrol.schedulers import make_scheduler
    from crimelens.patrol.training import train_policy

    assert isinstance(st, ScheduleSettings)
    cal = week_city(data, origin, st)
    city, s = cal.city, 1
    policy, _ = train_policy(city, cal.estimate, st.sim, st.training)
    xy = city.centres() / 1000.0
    fig, ax = plt.subplots(figsize=(9, 6.5), dpi=110)
    sc = ax.scatter(xy[:, 0], xy[:, 1], c=np.log10(cal.estimate[s] + 1e-4), s=2.5, marker="s", cmap="Greys",
                    linewidths=0)
    fig.colorbar(sc, ax=ax, label="log10 forecast incidents per evening shift")
    chosen = {}
    for m, mark, colour in (("mclp", "x", "tab:red"), ("rl", "o", "tab:blue")):
        sites = chosen[m] = make_scheduler(m, city, st.sim, policy=policy).plan(s, cal.estimate[s])
        ax.scatter(xy[sites, 0], xy[sites, 1], marker=mark, s=60, facecolors="none" if mark == "o" else colour,
                   edgecolors=colour if mark == "o" else None, c=None if mark == "o" else colour,
                   label=f"{m} ({len(sites)} units)")
    kappa = policy.effectiveness()[s]
    print("sites shared by mclp and rl:", len(set(chosen["mclp"].tolist()) & set(chosen["rl"].tolist())),
          "| fairness blocks with a unit: mclp", len(set(city.groups[chosen["mclp"]].tolist())),
          "rl", len(set(city.groups[chosen["rl"]].tolist())), "of", len(city.group_names),
          f"| learned effectiveness (posterior mean) at rl sites: {kappa[chosen['rl']].mean():.3f}, "
          f"at mclp sites: {kappa[chosen['mclp']].mean():.3f}")
    k = st.group_block_m / 1000.0
    for v in np.arange(np.floor(xy[:, 0].min() / k) * k, xy[:, 0].max() + k, k):
        ax.axvline(v, color="tab:green", lw=0.4, alpha=0.5)
    for v in np.arange(np.floor(xy[:, 1].min() / k) * k, xy[:, 1].max() + k, k):
        ax.axhline(v, color="tab:green", lw=0.4, alpha=0.5)
    ax.set_aspect("equal")
    ax.set_xlabel("easting, km (EPSG:32617)")
    ax.set_ylabel("northing, km")
    ax.set_title(f"Toronto, evening shift of the week of {origin.date()}: mclp vs rl (8 km fairness blocks)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    print(f"map -> {path}")


if __name__ == "__main__":
    main()
