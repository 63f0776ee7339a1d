"""Protection and distortion of public releases on a synthetic city (the figures in docs/privacy.md).

For k = 5, 10, 20 on one seeded city:

* donut masking (adaptive) against a fixed-radius donut of the same median displacement:
  displacement, Allshouse spatial k-anonymity, share of points below k, and the share an attacker
  re-identifies by taking the nearest incident location to the published point;
* snapping to anonymous anchors: anchors, displacement, smallest catchment;
* cell suppression of beat × month and district × month tables (primary, complementary, share of
  incidents hidden) and grid counts at 250 m (merge vs suppress).

Run: ``python bench/privacy.py [--n 20000] [--size 10000] [--seed 1]``. Prints Markdown tables.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd

from crimelens.governance.anchors import snap_to_anchors
from crimelens.governance.geomask import donut_candidates, donut_mask, verify_mask
from crimelens.governance.mapcounts import protect_grid
from crimelens.governance.release import area_period_counts
from crimelens.governance.suppression import suppress_table
from crimelens.synth import CityConfig, generate_city


def _points(x: np.ndarray, y: np.ndarray, seed: int) -> None:
    ref = np.column_stack([x, y])
    print("| method | k | median displacement (m) | p95 (m) | min k-anon | below k | min candidates | "
          "candidates below k | NN re-id | min catchment | seconds |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for k in (5, 10, 20):
        rows = []
        t = time.perf_counter()
        m = donut_mask(x, y, k=k, seed=seed)
        rows.append(("adaptive donut", m, time.perf_counter() - t, {"k": k}))
        t = time.perf_counter()
        naive = donut_mask(x, y, k=k, seed=seed, min_candidates=0)
        rows.append(("adaptive donut, no redraws", naive, time.perf_counter() - t, {"k": k}))
        med = float(np.median(m.displacement))
        fixed = {"k": 0, "min_radius": 0.5 * med, "max_radius": 1.5 * med}
        rows.append(("fixed donut", donut_mask(x, y, seed=seed, min_candidates=0, **fixed), 0.0, fixed))
        t = time.perf_counter()
        s = snap_to_anchors(x, y, k=k, cell_size=100)
        rows.append((f"snap ({s.params['anchors']} anchors)", s, time.perf_counter() - t, None))
        for name, mask, secs, params in rows:
            v = verify_mask(x, y, mask.x, mask.y, k=k).summary()
            d = v["displacement_m"]
            if params is None:
                cand = "–"
            else:
                c = donut_candidates(mask.x, mask.y, ref, **params)
                cand = f"{c.min()} | {np.mean(c < k):.1%}"
            print(f"| {name} | {k} | {d['median']:.0f} | {d['p95']:.0f} | {v['min_k_anonymity']} | "
                  f"{v['share_below_k']:.1%} | {cand if params else '– | –'} | "
                  f"{v['nearest_reference_is_true_share']:.2%} | {v['min_catchment']} | {secs:.2f} |")


def _tables(frame: pd.DataFrame) -> None:
    print("\n| table | k | cells | primary | complementary | incidents hidden | seconds |")
    print("|---|---|---|---|---|---|---|")
    for area in ("district", "beat"):
        counts = area_period_counts(frame, area=area, period="month", tz="America/Chicago")
        table = counts.pivot_table(index=area, columns="month", values="count", aggfunc="sum", fill_value=0)
        for k in (5, 10, 20):
            t = time.perf_counter()
            s = suppress_table(table, k=k).summary()
            print(f"| {area} × month ({table.shape[0]} × {table.shape[1]}) | {k} | {s['cells']} | "
                  f"{s['primary_suppressed']} | {s['complementary_suppressed']} | "
                  f"{s['suppressed_incidents'] / len(frame):.1%} | {time.perf_counter() - t:.2f} |")
    print("\n| 250 m grid | k | published cells | cells by size (m) | suppressed | seconds |")
    print("|---|---|---|---|---|---|")
    keys = pd.DataFrame({"cell_x": np.floor(frame["x"] / 250).astype(int),
                         "cell_y": np.floor(frame["y"] / 250).astype(int)})
    cells = keys.value_counts().rename("count").reset_index()
    crs = str(frame["crs"].iloc[0])
    for method in ("merge", "suppress"):
        for k in (5, 10, 20):
            t = time.perf_counter()
            g = protect_grid(cells, cell_size=250, crs=crs, k=k, levels=3, method=method)  # type: ignore[arg-type]
            s = g.summary()
            print(f"| {method} | {k} | {s['published_cells']} | {s['cells_by_size_m']} | "
                  f"{s['primary_suppressed'] + s['complementary_suppressed']} | {time.perf_counter() - t:.2f} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--size", type=float, default=10_000.0)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    city = generate_city(CityConfig(n_incidents=args.n, days=args.days, seed=args.seed, size_m=args.size))
    frame = city.incidents.dropna(subset=["x"])
    x, y = frame["x"].to_numpy(float), frame["y"].to_numpy(float)
    n_loc = len(np.unique(np.round(np.column_stack([x, y]), 2), axis=0))
    print(f"{len(frame):,} located incidents at {n_loc:,} distinct locations, {args.size / 1000:g} km city, "
          f"{args.days} days, seed {args.seed}\n")
    _points(x, y, args.seed)
    _tables(frame)


if __name__ == "__main__":
    main()
