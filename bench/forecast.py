"""Forecasting benchmarks and leaderboards.

    python bench/forecast.py timing [--cells 10000] [--years 3]     fit/predict seconds per model
    python bench/forecast.py toronto [--category burglary] [--out DIR] [--models all]
    python bench/forecast.py synthetic [--out DIR]                   vs the city's true intensity
    python bench/forecast.py ceiling                                 how far any stationary map can go
    python bench/forecast.py counts                                  area count forecasts (MAE, MASE)
    python bench/forecast.py transfer [--weeks 13] [--step 28d]      auto vs the best model per city/category
    python bench/forecast.py horizons [--category burglary]          leaderboards at 8h, 1d, 7d, 28d (local shifts)
    python bench/forecast.py segments                                street segments vs grid, synthetic network city

Toronto is read straight from ../shared/datasets/toronto_mci with a small loader that produces
the canonical columns the forecasters read (``crimelens ingest FILE --preset toronto_mci`` gives
the same): ``occurrencedate`` holds the local date written as local midnight in UTC, so its
date part is the America/Toronto date and ``occurrencehour`` the local hour; MCI is the
category; Lat/Long are WGS84 and are projected to UTM 17N (EPSG:32617).
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd

from crimelens.forecast import Forecaster, available, make
from crimelens.forecast.auto import Auto
from crimelens.forecast.evaluation import RollingOrigin, backtest, footprint, score_coverage, study_grid
from crimelens.forecast.evaluation.leaderboard import write_leaderboard
from crimelens.forecast.history import FloatArray, History, Timeline
from crimelens.geo.crs import to_local
from crimelens.geo.grid import SquareGrid

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CRIMELENS_SHARED", REPO.parent / "shared")) / "datasets"
TORONTO = SHARED / "toronto_mci" / "toronto_mci_2014_2021.csv"
MCI = {"Assault": "assault", "Break and Enter": "burglary", "Auto Theft": "vehicle_theft",
       "Robbery": "robbery", "Theft Over": "theft"}


def load_toronto(path: Path = TORONTO) -> pd.DataFrame:
    """Toronto MCI as canonical ``occurred_at`` (UTC), ``x``/``y`` (EPSG:32617), ``category``,
    ``neighbourhood``, ``crs``."""
    raw = pd.read_csv(path, usecols=["occurrencedate", "occurrencehour", "MCI", "Neighbourhood", "Lat", "Long"])
    local = pd.to_datetime(raw["occurrencedate"].str[:10], format="%Y/%m/%d") + pd.to_timedelta(
        raw["occurrencehour"], unit="h")
    when = local.dt.tz_localize("America/Toronto", ambiguous=True, nonexistent="shift_forward").dt.tz_convert("UTC")
    x, y = to_local(raw["Long"].to_numpy(float), raw["Lat"].to_numpy(float), "EPSG:32617")
    return pd.DataFrame({"occurred_at": when, "x": x, "y": y, "category": raw["MCI"].map(MCI),
                         "neighbourhood": raw["Neighbourhood"], "crs": "EPSG:32617"})


#: ``auto`` variants by bench name: one set of weights for all categories; the rule before the blend
#: candidates (no ``ensemble`` candidate, weights ``exp(t)``)
VARIANTS: dict[str, dict[str, object]] = {"auto_pooled": {"per_category": False},
                                          "auto_old": {"blends": {}, "sharpness": 1.0}}


def _models(names: str, jobs: int) -> dict[str, Forecaster]:
    """Models by name, and the ``auto`` variants of :data:`VARIANTS`."""
    asked = names.split(",")
    out = {n: make(n, n_jobs=jobs) for n in available(",".join(n for n in asked if n not in VARIANTS))}
    for v, params in VARIANTS.items():
        if v in asked:
            out[v] = make("auto", n_jobs=jobs, **params)
    return out


def _progress(done: int, total: int, msg: str) -> None:
    if done % 25 == 0 or done == total:
        print(f"  {done}/{total} {msg}", file=sys.stderr, flush=True)


def cmd_toronto(args: argparse.Namespace) -> None:
    data = load_toronto()
    label = "Toronto MCI, all incidents"
    if args.category:
        data = data[data["category"] == args.category]
        label = f"Toronto MCI, {args.category}"
    t0 = time.perf_counter()
    report = backtest(_models(args.models, args.jobs), data,
                      RollingOrigin(args.start, args.end, horizon=args.horizon, step=args.step),
                      cell_size=args.cell, coverages=args.coverage, label=label, progress=_progress)
    elapsed = time.perf_counter() - t0
    report.settings["wall_s"] = elapsed
    paths = write_leaderboard(report, args.out)
    print(report.to_markdown())
    print(f"wall {elapsed:.0f} s; written {', '.join(str(p) for p in paths.values())}")


class TrueIntensity(Forecaster):
    """Not a forecaster: the synthetic city's true expected counts for the week (bench only)."""

    name = "truth"

    def __init__(self, *, table: pd.DataFrame | None = None, cell_size: float = 250.0,
                 grid: SquareGrid | None = None) -> None:
        self.table = table
        self.cell_size = cell_size
        self.grid = grid

    def _score(self, history: History, horizon_days: float) -> FloatArray:
        assert self.table is not None
        week = self.table[self.table["week_start"] == history.until]
        if week.empty:
            raise ValueError(f"no true intensity for the week starting {history.until}")
        out = np.zeros(history.grid.n_cells)
        out[week["cell_id"].to_numpy()] = week["expected"].to_numpy()
        return out


def cmd_synthetic(args: argparse.Namespace) -> None:
    from crimelens.synth import CityConfig, generate_city

    cfg = CityConfig(n_incidents=args.incidents, days=args.days, seed=args.seed, kind="realistic")
    t0 = time.perf_counter()
    city = generate_city(cfg)
    inc = city.incidents
    truth = city.truth.expected("all")  # expected recorded incidents per cell and UTC week
    print(f"city: {len(inc)} incidents, {city.truth.grid.n_cells} truth cells, {time.perf_counter() - t0:.0f} s",
          file=sys.stderr)
    last = (inc["occurred_at"].max() - pd.Timedelta(days=7)).floor("D")  # truth weeks start Monday 00:00 UTC
    mondays = pd.date_range(last - pd.Timedelta(days=7 * args.weeks), last, freq="W-MON")[-args.weeks:]
    models = _models(args.models, args.jobs)
    models["truth"] = TrueIntensity(table=truth)
    report = backtest(models, inc, RollingOrigin(mondays[0], mondays[-1], horizon="7d"),
                      grid=city.truth.grid, coverages=args.coverage, label=f"synthetic city (seed {args.seed})",
                      baseline="retro_count", progress=_progress)
    paths = write_leaderboard(report, args.out)
    print(report.to_markdown())
    print(f"written {', '.join(str(p) for p in paths.values())}")


def cmd_ceiling(args: argparse.Namespace) -> None:
    """PAI of maps no forecaster can have: clairvoyant counts around the test week."""
    data = load_toronto()
    g = study_grid(data, args.cell)
    area = footprint(data, g)
    tl = Timeline.build(data, g)
    cell = g.cell_of(data["x"].to_numpy(float), data["y"].to_numpy(float))
    when = data["occurred_at"]
    out: dict[str, dict[str, list[float]]] = {}
    for origin in pd.date_range(args.start, args.end, freq="7D", tz="UTC"):
        test = ((when >= origin) & (when < origin + pd.Timedelta(days=7))).to_numpy()
        y = np.bincount(cell[test], minlength=g.n_cells)[area].astype(float)
        past = tl.before(origin).counts(max_age=365)[area]
        for half in (182, 365):
            around = ((when >= origin - pd.Timedelta(days=half)) & (when < origin + pd.Timedelta(days=7 + half))
                      ).to_numpy() & ~test
            s = np.bincount(cell[around], minlength=g.n_cells)[area].astype(float)
            for c in args.coverage:
                out.setdefault(f"clairvoyant ±{half} d", {}).setdefault(f"{c:g}", []).append(
                    score_coverage(s, y, c).pai)
        for c in args.coverage:
            out.setdefault("retro_count", {}).setdefault(f"{c:g}", []).append(score_coverage(past, y, c).pai)
            out.setdefault("oracle", {}).setdefault(f"{c:g}", []).append(score_coverage(y, y, c).pai)
    # a generous ceiling for any map that is constant through the test year: rank cells by their
    # own 2021 totals (test weeks included, so the winner's curse flatters it) and take the
    # expected share of incidents in the top cells
    year = ((when >= pd.Timestamp(args.start, tz="UTC")) &
            (when < pd.Timestamp(args.end, tz="UTC") + pd.Timedelta(days=7))).to_numpy()
    lam = np.bincount(cell[year], minlength=g.n_cells)[area].astype(float)
    for c in args.coverage:
        k = max(1, round(c * len(area)))
        share = np.sort(lam)[::-1][:k].sum() / lam.sum()
        out.setdefault("stationary ceiling (in-sample rates)", {})[f"{c:g}"] = [share / (k / len(area))]
    print(json.dumps({k: {c: round(float(np.mean(v)), 2) for c, v in d.items()} for k, d in out.items()},
                     indent=1))


def cmd_timing(args: argparse.Namespace) -> None:
    """Fit and predict seconds per model on a synthetic city of ~``cells`` cells × ``years``."""
    from crimelens.synth import CityConfig, generate_city

    side = float(np.sqrt(args.cells) * args.cell)
    city = generate_city(CityConfig(n_incidents=args.incidents, days=int(365 * args.years), seed=1,
                                    size_m=side, kind="realistic"))
    inc = city.incidents
    until = inc["occurred_at"].max().floor("D")
    for module in ("lightgbm", "torch"):  # import time is not fit time
        if importlib.util.find_spec(module) is not None:
            importlib.import_module(module)
    rows = []
    for name, model in _models(args.models, args.jobs).items():
        t0 = time.perf_counter()
        model.fit(inc, until=until)  # first fit in the process (library warm-up included)
        first = time.perf_counter() - t0
        tracemalloc.start()
        t0 = time.perf_counter()
        model.fit(inc, until=until)
        t1 = time.perf_counter()
        model.predict(horizon="7d")
        t2 = time.perf_counter()
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        rows.append({"model": name, "first_fit_s": round(first, 2), "fit_s": round(t1 - t0, 2),
                     "predict_s": round(t2 - t1, 3),
                     "peak_MiB": round(peak / 2**20), "cells": model.grid_.n_cells, "incidents": model.n_train_})
        print(rows[-1], flush=True)
    print(_markdown(pd.DataFrame(rows)))


def cmd_counts(args: argparse.Namespace) -> None:
    from crimelens.forecast.counts import ARIMA, ETS, GlobalGBM, SeasonalNaive, count_series, evaluate_counts

    data = load_toronto()
    series = count_series(data, "neighbourhood", freq="W", start="2018-01-01", end="2022-01-03")
    found = series.index.get_indexer(pd.date_range("2021-01-04", "2021-12-06", freq=f"{args.count_step}D"))
    if (found < 0).any():
        raise SystemExit("counts: an origin is not a week of the series")
    origins = [int(i) for i in found]
    models = {"seasonal_naive": SeasonalNaive(), "ets": ETS(), "arima": ARIMA(), "global_gbm": GlobalGBM()}
    parts = []
    for name, model in models.items():
        t0 = time.perf_counter()
        part = evaluate_counts({name: model}, series, origins=origins, h=4)
        parts.append(part.assign(seconds=round(time.perf_counter() - t0, 1)))
        print(parts[-1].round(3).to_dict("records"), flush=True)
    print(_markdown(pd.concat(parts, ignore_index=True).round(3)))
    print(f"{series.shape[1]} neighbourhoods, {len(origins)} origins, h=4 weeks")


def _cities(args: argparse.Namespace) -> list[tuple[str, pd.DataFrame, dict[str, object]]]:
    """Every data set here with coordinates and two years or more, per category, and the synthetic city."""
    from crimelens.synth import CityConfig, generate_city

    only = [c.strip() for c in (args.datasets or "").split(",") if c.strip()]
    out: list[tuple[str, pd.DataFrame, dict[str, object]]] = []
    label = f"synthetic (seed {args.seed}) / all"
    if not only or any(o in label for o in only):
        city = generate_city(CityConfig(n_incidents=args.incidents, days=args.days, seed=args.seed,
                                        kind="realistic"))
        out.append((label, city.incidents, {"grid": city.truth.grid, "truth": city.truth.expected("all")}))
    if TORONTO.exists():
        data = load_toronto()
        for cat in ("burglary", "assault", "robbery", "vehicle_theft", "theft"):
            out.append((f"toronto / {cat}", data[data["category"] == cat], {}))
        out.append(("toronto / all", data, {}))
    else:
        print(f"skipping Toronto: {TORONTO} not found", file=sys.stderr)
    return [c for c in out if not only or any(o in c[0] for o in only)]


def cmd_transfer(args: argparse.Namespace) -> None:
    """Same settings on every city and category: best model, auto's pick, auto's PAI relative to it."""
    from crimelens.forecast.evaluation import block_bootstrap_mean

    rows: list[dict[str, object]] = []
    for label, data, extra in _cities(args):
        models = _models(args.models, args.jobs)
        step_text = args.step or "28d"
        step = pd.Timedelta(days=float(step_text.rstrip("d")))
        if "truth" in extra:  # truth weeks start on Mondays, 00:00 UTC
            last = (data["occurred_at"].max() - pd.Timedelta(days=7)).floor("D")
            last = last - pd.Timedelta(days=last.day_of_week)
            start = last - step * (args.weeks - 1)
            truth = extra["truth"]
            assert isinstance(truth, pd.DataFrame)
            models["truth"] = TrueIntensity(table=truth)
        else:
            start = pd.Timestamp(args.start, tz="UTC")
        splitter = RollingOrigin(start, start + step * (args.weeks - 1), horizon="7d", step=step_text)
        t0 = time.perf_counter()
        report = backtest(models, data, splitter, cell_size=args.cell, grid=extra.get("grid"),  # type: ignore[arg-type]
                          coverages=args.coverage, label=label, progress=_progress)
        wall = time.perf_counter() - t0
        f = report.folds
        per_fold = f[np.isclose(f["coverage"], args.coverage[0])].groupby("model")[["fit_s", "predict_s"]].mean()
        auto_cost = float(per_fold.loc["auto"].to_numpy().sum()) if "auto" in per_fold.index else float("nan")
        pick = ""
        if "auto" in models:
            est = make("auto", n_jobs=args.jobs, grid=extra.get("grid"), cell_size=args.cell)
            assert isinstance(est, Auto)
            est.fit(data, until=splitter.folds()[-1].origin)
            pick = "; ".join(
                f"{'+'.join(g['categories']) if len(g['categories']) < 3 else 'pooled'}: "
                + ", ".join(f"{m} {w:.2f}" for m, w in sorted(g["weights"].items(), key=lambda kv: -kv[1]) if w >= 0.05)
                for g in est.explain()["groups"])
        for cov in args.coverage:
            sub = f[np.isclose(f["coverage"], cov)].pivot_table(index="fold", columns="model", values="pai")
            autos = ("auto", *VARIANTS)
            singles = [m for m in sub.columns if m not in (*autos, "truth")]
            best = max(singles, key=lambda m: sub[m].mean())
            row: dict[str, object] = {"data": label, "coverage": cov, "folds": len(sub), "best": best,
                                      "best_pai": round(float(sub[best].mean()), 2), "pick": pick,
                                      "wall_s": round(wall), "auto_s_per_fold": round(auto_cost, 2)}
            for a in autos:
                for ref, key in ((best, f"{a}_vs_best"), ("retro_count", f"{a}_vs_retro")):
                    if a in sub and ref in sub:
                        mean, lo, hi = block_bootstrap_mean((sub[a] - sub[ref]).to_numpy(), n_boot=2000)
                        base = float(sub[ref].mean())
                        row[key] = f"{mean / base:+.1%} [{lo / base:+.1%}, {hi / base:+.1%}]"
                if "truth" in sub and a in sub:
                    gain_truth = float(sub["truth"].mean() - sub["retro_count"].mean())
                    row[f"{a}_share_of_truth_gain"] = round(float(sub[a].mean() - sub["retro_count"].mean())
                                                            / gain_truth, 2) if gain_truth > 0 else None
            rows.append(row)
            print(row, flush=True)
        Path(args.out).mkdir(parents=True, exist_ok=True)
        write_leaderboard(report, Path(args.out) / label.replace(" / ", "_").replace(" ", "_"), n_boot=500)
    table = pd.DataFrame(rows)
    print(_markdown(table))
    (Path(args.out) / "transfer.md").write_text(_markdown(table) + "\n", encoding="utf-8")


def cmd_horizons(args: argparse.Namespace) -> None:
    """One leaderboard per horizon on Toronto, windows aligned to local shifts."""
    from crimelens.forecast.horizons import ShiftOrigins

    data = load_toronto()
    if args.category:
        data = data[data["category"] == args.category]
    spans = {"8h": ("2021-06-07", "2021-06-13"), "1d": ("2021-06-07", "2021-07-04"),
             "7d": ("2021-01-04", "2021-06-28"), "28d": ("2021-01-04", "2021-12-06")}
    for horizon, (first, last) in spans.items():
        if horizon not in args.horizons.split(","):
            continue
        split = ShiftOrigins(first, last, horizon=horizon, tz="America/Toronto")
        models = {n: make(n, n_jobs=args.jobs, horizon=horizon) for n in available(args.models)}
        t0 = time.perf_counter()
        report = backtest(models, data, split, cell_size=args.cell, coverages=args.coverage,
                          label=f"Toronto {args.category or 'all'}, {horizon} windows (06/14/22 h local)")
        print(report.to_markdown(n_boot=500))
        print(f"{horizon}: {report.n_folds} folds, wall {time.perf_counter() - t0:.0f} s", flush=True)
        write_leaderboard(report, Path(args.out) / f"horizon_{horizon}", n_boot=500)


def cmd_segments(args: argparse.Namespace) -> None:
    """Street segments against 100 m and 200 m cells on the synthetic network city, and the truth."""
    from crimelens.forecast.segments import (
        StreetNetwork,
        backtest_segments,
        captured_by_length,
        segment_models,
        snap_incidents,
    )
    from crimelens.synth.network import network_city

    city = network_city(seed=args.seed)
    inc = city.incidents
    net = StreetNetwork.from_lines(list(city.lines), city.crs)
    snapped = snap_incidents(inc, net, tolerance=30.0)
    split = RollingOrigin("2023-01-02", "2023-12-25", horizon="7d")
    rep = backtest_segments(segment_models("all"), snapped, split, coverages=args.coverage,
                            label="synthetic network city, street segments")
    rows = []
    for cov in args.coverage:
        truth = []
        for fold in split.folds():
            t = ((inc["occurred_at"] >= fold.origin) & (inc["occurred_at"] < fold.end)).to_numpy()
            obs = np.bincount(snapped.segment[t & (snapped.segment >= 0)], minlength=len(net)).astype(float)
            truth.append(captured_by_length(city.rate, net.length, obs, cov) / obs.sum())
        sub = rep.folds[np.isclose(rep.folds["coverage"], cov)].groupby("model")["hit_rate"].mean()
        row = {"coverage": cov, "truth (segments)": round(float(np.mean(truth)), 3),
               **{f"{m} (segments)": round(float(v), 3) for m, v in sub.items()}}
        for cell in (100.0, 200.0):
            g = study_grid(inc, cell)
            grep = backtest({"retro_count": make("retro_count"), "retro_kde": make("retro_kde")}, inc, split,
                            grid=g, area=footprint(inc, g), coverages=(cov,))
            for m, v in grep.folds.groupby("model")["hit_rate"].mean().items():
                row[f"{m} ({cell:.0f} m cells)"] = round(float(v), 3)
        rows.append(row)
        print(row, flush=True)
    print(f"{len(net)} segments, {net.length.sum() / 1000:.0f} km; {snapped.share_snapped:.1%} snapped within 30 m; "
          f"{(snapped.segment == inc['true_segment'].to_numpy()).mean():.1%} to the true segment")
    print(_markdown(pd.DataFrame(rows)))


def _markdown(frame: pd.DataFrame) -> str:
    """A Markdown table (without the optional ``tabulate`` dependency)."""
    head = "| " + " | ".join(map(str, frame.columns)) + " |"
    rule = "|" + "|".join("---" for _ in frame.columns) + "|"
    body = ["| " + " | ".join(map(str, row)) + " |" for row in frame.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["timing", "toronto", "synthetic", "ceiling", "counts", "transfer",
                                           "horizons", "segments"])
    p.add_argument("--models", default="all")
    p.add_argument("--category", default=None)
    p.add_argument("--cell", type=float, default=200.0)
    p.add_argument("--horizon", default="7d")
    p.add_argument("--step", default=None)
    p.add_argument("--from", dest="start", default="2021-01-04")
    p.add_argument("--to", dest="end", default="2021-12-27")
    p.add_argument("--coverage", type=lambda s: [float(v) for v in s.split(",")], default=[0.01, 0.02, 0.05, 0.1])
    p.add_argument("--out", default="/tmp/crimelens-forecast")
    p.add_argument("--jobs", type=int, default=1)
    p.add_argument("--cells", type=int, default=10_000)
    p.add_argument("--years", type=float, default=3.0)
    p.add_argument("--incidents", type=int, default=60_000)
    p.add_argument("--days", type=int, default=3 * 365)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--count-step", type=int, default=91, help="counts: days between origins")
    p.add_argument("--weeks", type=int, default=52, help="synthetic: weekly origins in the last year; transfer: folds")
    p.add_argument("--datasets", default=None, help="transfer: only data sets whose label contains one of these")
    p.add_argument("--horizons", default="8h,1d,7d,28d", help="horizons: which horizons to run (comma-separated)")
    args = p.parse_args()
    {"timing": cmd_timing, "toronto": cmd_toronto, "synthetic": cmd_synthetic, "ceiling": cmd_ceiling,
     "counts": cmd_counts, "transfer": cmd_transfer, "horizons": cmd_horizons,
     "segments": cmd_segments}[args.command](args)


if __name__ == "__main__":
    main()
