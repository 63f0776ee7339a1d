"""Why ``auto`` misses where it misses: its selection rules replayed on cached candidate scores.

    python bench/forecast_study.py cache [--datasets toronto,synthetic] [--weeks 52] [--inner 26]
    python bench/forecast_study.py replay [--variant 'NAME={"inner_folds": 26}' ...]
    python bench/forecast_study.py table DIR/*/folds.csv [--folds 0:26,26:52,:]

``cache`` fits every candidate of ``auto`` (and ``ensemble``'s members, and the synthetic city's
true intensity) at every weekly origin of the evaluation *and* at the ``--inner`` weeks before its
first origin, and keeps each score surface and each window's observed counts on the study area
(``/tmp/crimelens-forecast-study/<data>.npz``), with each surface's total over the whole grid. In a
weekly backtest with weekly inner folds, ``auto``'s inner fold ``j`` at origin ``T`` is exactly the
outer fold at ``T - j`` weeks (the memo in :mod:`crimelens.forecast.memo` relies on the same
identity), so a selection rule can be replayed on the cache in seconds and gives the PAI ``auto``
with that rule would get, without refitting anything. The replay uses
:meth:`crimelens.forecast.auto.Auto.weigh` itself, so the rule replayed is the code ``auto`` runs.
``ensemble`` (a single model here and a blend candidate of ``auto``) is the mean of its members'
shares (as in :mod:`crimelens.forecast.ensemble`), from the cached member surfaces, each divided by
its whole-grid total as ``auto`` and ``ensemble`` divide it (a cache written before the totals were
kept normalises on the study area instead, which moved blends by a few per cent). ``--weights FILE``
writes ``auto``'s weights and every model's PAI per fold (CSV). ``table`` reads the ``folds.csv``
of real backtests (``bench/forecast.py transfer`` writes one per data set) and gives the same
comparison for any part of the folds, e.g. the held-out half.
``--folds 0:26,26:52,:`` reports the first and second half of the folds and all of them, e.g. to
choose a rule on one half and report the other as held out.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from crimelens.forecast import make
from crimelens.forecast.auto import DEFAULT_BLENDS, DEFAULT_CANDIDATES, Auto, relative_scores
from crimelens.forecast.evaluation import block_bootstrap_mean, footprint, score_coverage, study_grid
from crimelens.forecast.history import Timeline
from crimelens.geo.grid import SquareGrid
from forecast import TORONTO, load_toronto

CACHE = Path(os.environ.get("CRIMELENS_STUDY_CACHE", "/tmp/crimelens-forecast-study"))
COVERAGES = (0.01, 0.05)


def _datasets(names: list[str], seed: int, only: list[str] | None = None
              ) -> list[tuple[str, pd.DataFrame, dict[str, object]]]:
    out: list[tuple[str, pd.DataFrame, dict[str, object]]] = []
    if "toronto" in names and TORONTO.exists():
        data = load_toronto()
        for cat in ("burglary", "assault", "robbery", "vehicle_theft", "theft"):
            if only and cat not in only:
                continue
            out.append((f"toronto_{cat}", data[data["category"] == cat], {}))
    if "synthetic" in names:
        from crimelens.synth import CityConfig, generate_city

        city = generate_city(CityConfig(n_incidents=60_000, days=3 * 365, seed=seed, kind="realistic"))
        out.append((f"synthetic_{seed}", city.incidents, {"grid": city.truth.grid,
                                                          "truth": city.truth.expected("all")}))
    return out


def cmd_cache(args: argparse.Namespace) -> None:
    CACHE.mkdir(parents=True, exist_ok=True)
    cats = args.categories.split(",") if args.categories else None
    for label, data, extra in _datasets(args.datasets.split(","), args.seed, cats):
        path = CACHE / f"{label}.npz"
        if path.exists() and not args.force:
            print(f"{label}: cached", file=sys.stderr)
            continue
        g = extra["grid"] if "grid" in extra else study_grid(data, 200.0)
        assert isinstance(g, SquareGrid)
        area = footprint(data, g)
        if "truth" in extra:  # truth weeks start on Mondays, 00:00 UTC
            last = (data["occurred_at"].max() - pd.Timedelta(days=7)).floor("D")
            last = last - pd.Timedelta(days=last.day_of_week)
        else:
            last = pd.Timestamp("2021-12-27", tz="UTC")
        origins = pd.date_range(end=last, periods=args.weeks + args.inner, freq="7D")
        tl = Timeline.build(data, g)
        cell = g.cell_of(data["x"].to_numpy(float), data["y"].to_numpy(float))
        when = data["occurred_at"]
        names = list(DEFAULT_CANDIDATES)
        scores = np.zeros((len(names), len(origins), len(area)))
        totals = np.zeros((len(names), len(origins)))  # each surface's sum over the whole grid
        truth = np.zeros((len(origins), len(area)), dtype=np.float32)
        observed = np.zeros((len(origins), len(area)), dtype=np.float32)
        seen = np.zeros((len(origins), len(area)), dtype=np.bool_)  # the history's footprint (auto's inner area)
        fit_s = np.zeros((len(names), len(origins)))
        t_start = time.perf_counter()
        for i, origin in enumerate(origins):
            hist = tl.before(origin)
            test = ((when >= origin) & (when < origin + pd.Timedelta(days=7))).to_numpy() & (cell >= 0)
            observed[i] = np.bincount(cell[test], minlength=g.n_cells)[area]
            mask = np.zeros(g.n_cells, dtype=np.bool_)
            mask[hist.footprint()] = True
            seen[i] = mask[area]
            for j, n in enumerate(names):
                est = make(n, grid=g, horizon=7.0, n_jobs=1)
                t0 = time.perf_counter()
                est._fit_history(hist)
                full = np.clip(np.nan_to_num(est.predict(horizon=7.0).score), 0.0, None)
                scores[j, i] = full[area]
                totals[j, i] = full.sum()
                fit_s[j, i] = time.perf_counter() - t0
            if "truth" in extra:
                tab = extra["truth"]
                week = tab[tab["week_start"] == origin]  # type: ignore[index]
                full = np.zeros(g.n_cells)
                full[week["cell_id"].to_numpy()] = week["expected"].to_numpy()
                truth[i] = full[area]
            print(f"{label} {i + 1}/{len(origins)} {origin.date()} {time.perf_counter() - t_start:.0f} s",
                  file=sys.stderr, flush=True)
        np.savez_compressed(path, names=np.array(names), origins=origins.asi8, scores=scores, totals=totals,
                            observed=observed, seen=seen, truth=truth, fit_s=fit_s, has_truth="truth" in extra)
        print(f"{label}: {len(origins)} origins, {len(area)} cells, fit s per origin "
              + ", ".join(f"{n} {fit_s[j].mean():.2f}" for j, n in enumerate(names)), flush=True)


# -- replay -----------------------------------------------------------------------------------
def _shares(s: np.ndarray) -> np.ndarray:
    s = np.clip(np.nan_to_num(s.astype(np.float64)), 0.0, None)
    t = s.sum()
    return s / t if t > 0 else s


class Cached:
    """One data set's cached surfaces."""

    def __init__(self, path: Path) -> None:
        z = np.load(path)
        self.label = path.stem
        self.names = [str(n) for n in z["names"]]
        self.observed = z["observed"]
        self.seen = z["seen"]
        self.truth = z["truth"] if bool(z["has_truth"]) else None
        self.n = self.observed.shape[0]
        if "totals" in z:  # shares of the whole grid, as auto and ensemble compute them
            tot = z["totals"]
            self.shares = np.clip(np.nan_to_num(z["scores"].astype(np.float64)), 0.0, None) / np.where(
                tot > 0, tot, 1.0)[:, :, None]
        else:  # an older cache: shares of the study area only (approximate for blends)
            self.shares = np.stack([[_shares(z["scores"][j, i]) for i in range(self.n)]
                                    for j in range(len(self.names))])
        # the blends auto tries (the equal-share mean of their parts), as further candidates
        blends = [(b, [self.names.index(p) for p in parts]) for b, parts in DEFAULT_BLENDS]
        self.shares = np.concatenate([self.shares, np.stack([self.shares[idx].mean(axis=0) for _, idx in blends])])
        self.scores = self.shares
        self.names += [b for b, _ in blends]
        self.singles = [str(n) for n in z["names"]]
        self._inner: dict[tuple[int, int], np.ndarray] = {}

    def inner_hits(self, i: int, k: int) -> np.ndarray:
        """Incidents captured (coverages x candidates) in the fold at origin ``k`` on the footprint
        of the history at origin ``i`` (the area ``auto`` scores its inner folds on at ``i``)."""
        key = (i, k)
        if key not in self._inner:
            m = self.seen[i]
            y = self.observed[k][m]
            out = np.full((len(COVERAGES), len(self.names)), np.nan)
            if y.sum() > 0:
                for c, cov in enumerate(COVERAGES):
                    for j in range(len(self.names)):
                        out[c, j] = score_coverage(self.scores[j, k][m], y, cov).n
            self._inner[key] = out
        return self._inner[key]

    def outer(self, surface: np.ndarray, i: int, cov: float) -> float:
        return score_coverage(surface, self.observed[i], cov).pai


def replay(d: Cached, est: Auto, weeks: int, log: list[dict[str, object]] | None = None) -> dict[str, np.ndarray]:
    """Outer PAI per coverage (rows) and fold of each single model, ``ensemble`` and ``auto`` (with
    ``est``'s rule and inner folds), over the last ``weeks`` origins; ``log`` gets ``auto``'s
    weights per fold."""
    folds = range(d.n - weeks, d.n)
    inner = int(est.inner_folds)
    out: dict[str, np.ndarray] = {}
    for j, n in enumerate(d.names):  # the single models and ``ensemble``
        out[n] = np.array([[d.outer(d.shares[j, i], i, c) for i in folds] for c in COVERAGES])
    members = list(dict.fromkeys(est.candidates))
    names = [*members, *est.active_blends(members)]
    cand = [d.names.index(n) for n in names]
    if d.truth is not None:
        out["truth"] = np.array([[d.outer(d.truth[i], i, c) for i in folds] for c in COVERAGES])
    cov_idx = [COVERAGES.index(c) for c in est.coverages]
    auto = np.zeros((len(COVERAGES), len(folds)))
    for k, i in enumerate(folds):
        rows = []
        for jj in range(1, min(inner, i) + 1):  # the cache holds the origins before the first
            p = d.inner_hits(i, i - jj)[cov_idx][:, cand]  # coverages x candidates
            if not np.isnan(p).any():
                rows.append(p)
        z = relative_scores(np.asarray(rows).reshape(len(rows), len(cov_idx), len(names)), est.normalise)
        w, _, _ = est.weigh(z, names)
        s = sum(w[n] * d.shares[j, i] for j, n in zip(cand, names, strict=True) if w[n] > 0)
        for c, cov in enumerate(COVERAGES):
            auto[c, k] = d.outer(np.asarray(s), i, cov)
        if log is not None:
            log.append({"data": d.label, "fold": k, **{f"w_{n}": round(w[n], 3) for n in names}})
    out["auto"] = auto
    return out


def _rel(a: np.ndarray, b: np.ndarray) -> str:
    mean, lo, hi = block_bootstrap_mean(a - b, n_boot=2000)
    base = float(b.mean())
    return f"{mean / base:+.1%} [{lo / base:+.1%}, {hi / base:+.1%}]"


def cmd_replay(args: argparse.Namespace) -> None:
    paths = sorted(CACHE.glob("*.npz"))
    only = [o for o in (args.only or "").split(",") if o]
    data = [Cached(p) for p in paths if not only or any(o in p.stem for o in only)]
    variants: dict[str, dict[str, object]] = {"default": {}}
    for v in args.variants or []:
        key, _, spec = v.partition("=")
        params = json.loads(spec)
        if "coverages" in params:
            params["coverages"] = tuple(params["coverages"])
        variants[key] = params
    parts = fold_parts(args.folds)
    rows = []
    per_fold: list[pd.DataFrame] = []
    for d in data:
        for vname, params in variants.items():
            est = Auto(**params)  # type: ignore[arg-type]
            log: list[dict[str, object]] = []
            full = replay(d, est, args.weeks, log)
            if args.weights:
                frame = pd.DataFrame(log).assign(variant=vname)
                for n, v in full.items():
                    for c, cov in enumerate(COVERAGES):
                        frame[f"pai{cov:g}_{n}"] = v[c]
                per_fold.append(frame)
            for text, part in parts.items():
                res = {k: v[:, part] for k, v in full.items()}
                rows.extend(_rows(d.label, vname, text, res))
    if per_fold:
        pd.concat(per_fold, ignore_index=True).to_csv(args.weights, index=False)
    frame = pd.DataFrame(rows)
    frame.to_csv(CACHE / "replay.csv", index=False)
    for text in parts:
        sub = frame[frame["folds"] == text].groupby("variant", sort=False)["rel"]
        summary = sub.agg(["mean", "min"])
        summary["within_2pct"] = sub.apply(lambda r: int((r >= -0.02).sum()))
        summary["rows"] = sub.size()
        print(f"auto vs best single model (relative PAI), folds {text} of the last {args.weeks}:")
        print(summary.round(4).to_string(), flush=True)


def _rows(label: str, variant: str, folds: str, res: dict[str, np.ndarray]) -> list[dict[str, object]]:
    """One row per coverage: the best single model and ``auto`` against it and ``retro_count``."""
    singles = [n for n in res if n != "truth" and not n.startswith("auto")]
    rows: list[dict[str, object]] = []
    for c, cov in enumerate(COVERAGES):
        best = max(singles, key=lambda n: res[n][c].mean())
        row: dict[str, object] = {
            "data": label, "variant": variant, "folds": folds, "cov": cov, "best": best,
            "best_pai": round(float(res[best][c].mean()), 2), "auto_pai": round(float(res["auto"][c].mean()), 2),
            "auto_vs_best": _rel(res["auto"][c], res[best][c]),
            "rel": float(res["auto"][c].mean() / res[best][c].mean() - 1),
            "auto_vs_retro": _rel(res["auto"][c], res["retro_count"][c])}
        if "truth" in res:
            gain = res["truth"][c].mean() - res["retro_count"][c].mean()
            row["share_truth_gain"] = round(float((res["auto"][c].mean() - res["retro_count"][c].mean()) / gain), 2)
        rows.append(row)
        print(row, flush=True)
    return rows


def fold_parts(text: str | None) -> dict[str, slice]:
    """``--folds`` ("0:26,26:52,:") as named slices of the fold axis."""
    return {t: slice(*(int(v) if v else None for v in t.partition(":")[::2])) for t in (text or ":").split(",")}


def cmd_table(args: argparse.Namespace) -> None:
    """Best single model, ``auto`` against it and against ``retro_count``, per part of real folds."""
    parts = fold_parts(args.folds)
    rows = []
    for path in args.paths:
        f = pd.read_csv(path)
        res = {str(m): np.stack([g[np.isclose(g["coverage"], c)].sort_values("fold")["pai"].to_numpy()
                                 for c in COVERAGES]) for m, g in f.groupby("model")}
        for text, part in parts.items():
            rows.extend(_rows(Path(path).parent.name, "real", text, {k: v[:, part] for k, v in res.items()}))
    print(pd.DataFrame(rows).drop(columns=["variant", "rel"]).to_string(index=False))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("command", choices=["cache", "replay", "table"])
    p.add_argument("paths", nargs="*", help="table: folds.csv files of real backtests")
    p.add_argument("--datasets", default="toronto,synthetic")
    p.add_argument("--weeks", type=int, default=52)
    p.add_argument("--inner", type=int, default=26, help="cache: weekly origins before the first")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--force", action="store_true")
    p.add_argument("--folds", default=None,
                   help="replay: report these parts of the folds, slices 'a:b' (0-based), comma-separated")
    p.add_argument("--only", default=None, help="replay: only cached data sets whose name contains one of these")
    p.add_argument("--categories", default=None, help="cache: only these Toronto categories")
    p.add_argument("--weights", default=None, help="replay: write auto's weights and each model's PAI per fold here")
    p.add_argument("--variant", dest="variants", action="append",
                   help='replay: NAME={"param": value, ...} (Auto parameters as JSON), repeatable')
    args = p.parse_args()
    {"cache": cmd_cache, "replay": cmd_replay, "table": cmd_table}[args.command](args)


if __name__ == "__main__":
    main()
