"""Benchmark of the spatial and temporal analyses on one million incidents over a 30 × 30 km city.

Measures, in one run and on one machine:

* counting pushed down to DuckDB (``store.counts``: 50 m and 100 m cells, hour × weekday, day × category);
* KDE at 50 m by binned FFT convolution, against scipy's ``gaussian_kde`` evaluated on the same grid
  for a subsample and scaled linearly to one million points (its cost is points × cells);
* Gi* on 100 m cells (~90,000 cells) end to end (band search + statistic + classes), against esda's
  ``G_Local`` on exactly the same weights;
* hour × weekday and CompStat tables from store counts;
* the Knox test on 20,000 incidents with 99 permutations.

Run: ``python bench/analysis.py [--n 1000000] [--seed 0]``. Prints a Markdown table of seconds and ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from crimelens import analysis as an
from crimelens.geo.crs import to_wgs84
from crimelens.schema import INCIDENT_COLUMNS, PERSONAL_SCHEMA, QUARANTINE_SCHEMA, empty_incidents, to_arrow
from crimelens.taxonomy import BY_NAME

CRS = "EPSG:32616"
X0, Y0, SIZE = 430_000.0, 4_617_000.0, 30_000.0
CATS = ("theft", "burglary", "robbery", "aggravated_assault", "vehicle_theft", "criminal_damage")


def timed(fn: Callable[[], Any], repeat: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeat`` runs, and the last result."""
    best, out = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def city(n: int, seed: int) -> pd.DataFrame:
    """A canonical frame: 60% uniform background, 40% in 40 Gaussian hot spots, three years."""
    rng = np.random.default_rng(seed)
    n_hot = int(0.4 * n)
    centres = rng.uniform(2_000, SIZE - 2_000, (40, 2))
    which = rng.integers(0, 40, n_hot)
    sd = rng.uniform(80, 400, 40)[which]
    x = np.concatenate([rng.uniform(0, SIZE, n - n_hot), centres[which, 0] + rng.normal(0, 1, n_hot) * sd])
    y = np.concatenate([rng.uniform(0, SIZE, n - n_hot), centres[which, 1] + rng.normal(0, 1, n_hot) * sd])
    x, y = X0 + np.clip(x, 0, SIZE - 1), Y0 + np.clip(y, 0, SIZE - 1)
    t = pd.Timestamp("2021-01-01", tz="UTC") + pd.to_timedelta(rng.integers(0, 3 * 365 * 1440, n), unit="min")
    cats = np.asarray(CATS, dtype=object)[rng.integers(0, len(CATS), n)]
    df = empty_incidents().reindex(range(n))
    lon, lat = to_wgs84(x, y, CRS)
    df["source"] = "bench"
    df["incident_id"] = np.char.add("b", np.arange(n).astype(str)).astype(object)
    df["occurred_at"] = t
    df["time_precision"] = "minute"
    df["category"] = cats
    for col, attr in (
        ("category_group", "group"),
        ("category_precision", "precision"),
        ("crimes_against", "crimes_against"),
        ("ucr_part1", "ucr_part1"),
    ):
        df[col] = pd.Series(cats).map({c: getattr(BY_NAME[c], attr) for c in CATS}).to_numpy()
    df["lat"], df["lon"], df["x"], df["y"] = lat, lon, x, y
    df["crs"] = CRS
    df["location_precision"] = "exact"
    df["discovery"] = "reported"
    df["has_narrative"] = False
    df["batch_id"] = "b0"
    df["ingested_at"] = pd.Timestamp("2024-01-15", tz="UTC")
    df["row_hash"] = np.arange(n, dtype=np.int64)
    return df[list(INCIDENT_COLUMNS)]


def load_store(df: pd.DataFrame, path: Path) -> Any:
    from crimelens.store import connect
    from crimelens.store.base import IngestReport

    store = connect(str(path))
    store.set_source_crs("bench", CRS)
    with store.batch("bench", "bench.csv", "0" * 64, "b0") as w:
        w.add(to_arrow(df), PERSONAL_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
        w.commit(IngestReport(source="bench", file="bench.csv", sha256="0" * 64, batch_id="b0", read=len(df)))
    return store


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kde-sample", type=int, default=2_000, help="gaussian_kde subsample size")
    args = ap.parse_args()
    rows: list[tuple[str, str, str]] = []

    def row(what: str, value: float, note: str = "") -> None:
        unit = "x" if note == "ratio (x)" else "" if note == "agreement" else "s"
        shown = f"{value:,.0f}" if unit == "x" and value >= 100 else f"{value:.3g}" if unit != "s" else f"{value:.3f}"
        rows.append((what, f"{shown} {unit}".strip(), "" if unit == "x" else note))
        print(f"{what:<58}{shown:>12} {unit}  {note}", flush=True)

    t, df = timed(lambda: city(args.n, args.seed))
    row(f"generate {args.n:,} incidents (not part of any figure)", t)
    with tempfile.TemporaryDirectory() as tmp:
        t, store = timed(lambda: load_store(df, Path(tmp) / "bench.duckdb"))
        row("load into DuckDB (not part of any figure)", t)

        # ---------------------------------------------------------------- KDE at 50 m
        t_count50, c50 = timed(lambda: store.counts(["cell:50"]), repeat=3)
        row("store.counts cell:50 (GROUP BY)", t_count50, f"{len(c50):,} occupied cells")
        t_kde, kde = timed(
            lambda: an.KernelDensity(kernel="gaussian", bandwidth=250.0).fit(an.grid_counts(c50, 50.0, CRS)).result_,
            repeat=3,
        )
        g = kde.grid
        row("KDE 50 m, Gaussian h=250 m (binned FFT)", t_kde, f"{g.nx} x {g.ny} = {g.n_cells:,} cells")
        from scipy.stats import gaussian_kde

        rng = np.random.default_rng(1)
        sub = rng.choice(len(df), args.kde_sample, replace=False)
        xs, ys = df["x"].to_numpy()[sub], df["y"].to_numpy()[sub]
        ref = gaussian_kde(np.vstack([xs, ys]))
        cx, cy = g.centres()
        t_ref, _ = timed(lambda: ref(np.vstack([cx, cy])))
        scaled = t_ref * args.n / args.kde_sample
        row(f"gaussian_kde on {args.kde_sample:,} points, same grid", t_ref, f"scaled to {args.n:,}: {scaled:,.0f} s")
        row("  KDE speed-up vs gaussian_kde (statistic only)", scaled / t_kde, "ratio (x)")
        row("  KDE speed-up incl. the store GROUP BY", scaled / (t_kde + t_count50), "ratio (x)")
        assert abs(kde.values.sum() - args.n) < 1e-6 * args.n

        # ---------------------------------------------------------------- Gi* at 100 m
        def gistar() -> Any:
            units = an.grid_counts(store.counts(["cell:100"]), 100.0, CRS)
            return an.GetisOrd().fit(units)

        t_gi, est = timed(gistar, repeat=2)
        units = est.result_.units
        row(
            "Gi* 100 m end to end (GROUP BY, band search, z, FDR)",
            t_gi,
            f"{units.n:,} cells, band {est.distance_band_:g} m, {est.result_.class_counts().get('hot_99', 0)} hot_99",
        )
        t_fixed, est_fixed = timed(lambda: an.GetisOrd(distance_band=est.distance_band_).fit(units), repeat=3)
        row("Gi* 100 m, statistic only (band given)", t_fixed)
        t_perm, _ = timed(
            lambda: an.GetisOrd(
                distance_band=est.distance_band_, inference="permutation", n_permutations=99, random_state=0
            ).fit(units)
        )
        row("Gi* 100 m, 99 permutations", t_perm)
        try:
            import esda
            import libpysal

            t_w, w = timed(lambda: libpysal.weights.WSP(est_fixed.weights_.to_sparse()).to_W(silence_warnings=True))
            row("libpysal W from the same sparse weights", t_w)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                t_esda, ref_gi = timed(lambda: esda.G_Local(units.counts, w, transform="B", star=True, permutations=0))
            row("esda G_Local (analytical), same weights", t_esda)
            row("  Gi* speed-up vs esda (statistic only)", t_esda / t_fixed, "ratio (x)")
            row("  Gi* speed-up vs esda incl. building W", (t_esda + t_w) / t_fixed, "ratio (x)")
            err = float(np.abs(ref_gi.Zs - est_fixed.z_).max())
            row("  max abs(z - z_esda)", err, "agreement")
        except ImportError:
            print("esda/libpysal not installed: no Gi* baseline")

        # ---------------------------------------------------------------- temporal
        t_hw, hw = timed(lambda: an.hour_weekday(store.counts(["hour", "weekday", "time_precision"])), repeat=3)
        row("hour x weekday (GROUP BY + table)", t_hw, f"{int(hw.table.to_numpy().sum()):,} incidents")
        t_cs, cs = timed(lambda: an.compstat(store.counts(["day", "category", "time_precision"])), repeat=3)
        row("CompStat 7d/28d/YTD by category (GROUP BY + tests)", t_cs, f"{len(cs.table)} rows")
        t_ts, _ = timed(lambda: an.time_series(store.counts(["day", "time_precision"]), "week", stl=True))
        row("weekly series + STL (GROUP BY + STL)", t_ts)

        # ---------------------------------------------------------------- near repeat
        sub20 = df.sample(20_000, random_state=0)[["x", "y", "occurred_at", "time_precision"]]
        t_knox, _ = timed(lambda: an.KnoxTest(n_permutations=99, random_state=0).fit(sub20))
        row("Knox test, 20,000 incidents, 99 permutations", t_knox)
        store.close()

    print()
    print(
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.1f}; n = {args.n:,}"
    )
    print("| step | time or ratio | note |\n|---|---:|---|")
    for what, secs, note in rows:
        print(f"| {what.strip()} | {secs} | {note} |")


if __name__ == "__main__":
    main()
