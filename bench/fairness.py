"""Figures of docs/fairness.md: urn simulation, recording bias, bias audits, drift noise floor.

    python bench/fairness.py [urn|recording|audit|drift|all]

* urn: the two-area patrol experiment (Ensign et al. 2018), naive vs guarded, 50 seeds each.
* recording: a synthetic city with equal true rates and a disc recorded twice as often (BIA-04),
  and its unbiased twin; zone share of the top cells of each model against the truth's.
* audit: bias audits of `retro_count` by community area (synthetic) and by neighbourhood
  (Toronto MCI, when ../shared/datasets has it).
* drift: PSI of random halves (the noise floor) and of shifted copies (synthetic); Toronto's
  year-on-year drift when the data is there.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from crimelens.forecast import make
from crimelens.governance.drift import incident_drift
from crimelens.governance.fairness import GroupMembership, audit_selection, cell_labels
from crimelens.governance.feedback import UrnConfig, compare_guard
from crimelens.governance.recording_bias import recording_bias_audit, synthetic_truth
from crimelens.synth import CityConfig, RecordingBias, generate_city

sys.path.insert(0, str(Path(__file__).parent))


def urn() -> None:
    print("## Urn simulation (365 days, 5 crimes/day in each area, 50 seeds)\n")
    print("| policy | report prob | police-initiated weight | top area's patrol share (2nd half) "
          "| forecast share gap to truth, mean [min, max] |")
    print("|---|---:|---:|---:|---|")
    for policy in ("max", "proportional"):
        for report in (0.3, 0.1, 0.0):
            for weight in (1.0, 0.5, 0.0):
                res = compare_guard(UrnConfig(policy=policy, report_prob=report), replications=50,
                                    guard_weight=weight)["guarded"]
                top, gap = res["patrol_share_top"], res["forecast_gap"]
                print(f"| {policy} | {report} | {weight} | {top['mean']:.3f} | "
                      f"{gap['mean']:.3f} [{gap['min']:.3f}, {gap['max']:.3f}] |")
    print()


def recording() -> None:
    bias = RecordingBias(radius_m=2_500, inside=1.0, outside=0.5)
    cfg = {"n_incidents": 20_000, "days": 365, "seed": 3, "size_m": 10_000, "kind": "poisson"}
    biased = generate_city(CityConfig(recording_bias=bias, **cfg))  # type: ignore[arg-type]
    fair = generate_city(CityConfig(**cfg))  # type: ignore[arg-type]
    layer = synthetic_truth(biased.truth)
    prob = biased.truth.covariates["recording_prob"].to_numpy(float)
    origin = pd.Timestamp("2022-11-01", tz="UTC")
    print("## Recording bias (BIA-04): equal true rates, disc recorded with p = 1.0, elsewhere 0.5\n")
    print(f"{len(layer.cells)} unmixed 250 m cells, zone share of the area "
          f"{layer.zone[layer.cells].mean():.3f}; forecasts at {origin.date()}, 28 days\n")
    print("| city | model | coverage | zone share of selection | truth | excess | lift | pass (±0.10) |")
    print("|---|---|---:|---:|---:|---:|---:|---|")
    for label, city in (("biased", biased), ("biased, scores / recording prob", biased), ("unbiased twin", fair)):
        for model in ("retro_count", "retro_kde", "sepp", "gbm"):
            t0 = time.time()
            surf = make(model, grid=city.truth.grid, n_jobs=2).fit(city.incidents, until=origin).predict(horizon="28d")
            score = surf.score / prob if "prob" in label else surf.score
            for cov in (0.01, 0.05, 0.10):
                a = recording_bias_audit(score, layer.intensity, layer.zone, cells=layer.cells, coverage=cov)
                print(f"| {label} | {model} | {cov:.0%} | {a.selected_zone_share:.3f} | {a.truth_zone_share:.3f} | "
                      f"{a.excess:+.3f} | {a.lift:.2f} | {'yes' if a.passed else 'no'} |")
            print(f"  ({model} {time.time() - t0:.1f} s)", file=sys.stderr)
    print()


def audit() -> None:
    city = generate_city(CityConfig(n_incidents=30_000, days=730, seed=7, size_m=15_000))
    grid = city.truth.grid
    origin = pd.Timestamp("2023-06-05", tz="UTC")
    inc = city.incidents
    surf = make("retro_count", grid=grid).fit(inc, until=origin).predict(horizon="28d")
    test = inc[(inc["occurred_at"] >= origin) & (inc["occurred_at"] < surf.end)]
    tc = grid.cell_of(test["x"].to_numpy(), test["y"].to_numpy())
    observed = np.bincount(tc[tc >= 0], minlength=grid.n_cells).astype(float)
    cells = surf.cells()
    labels = cell_labels(inc[inc["occurred_at"] < origin], grid, "community_area", cells)
    cov = city.truth.covariates.set_index("cell_id")
    residents = cov["residents"].reindex(cells).to_numpy(float)
    print("## Bias audit, synthetic city (seed 7, 30,000 incidents, 15 km, 250 m cells), retro_count, 5 %\n")
    for name, m in (("community area, by cells", GroupMembership.from_labels(cells, labels.to_numpy())),
                    ("community area, by residents",
                     GroupMembership.from_labels(cells, labels.to_numpy(), population=residents)),
                    ("deprivation > 0 vs rest, by residents", GroupMembership.from_labels(
                        cells, np.where(cov["deprivation"].reindex(cells).to_numpy() > 0, "deprived", "other"),
                        population=residents))):
        a = audit_selection(surf, m, coverage=0.05, observed=observed)
        _print_audit(name, a)
    toronto()


def _print_audit(name: str, a: object) -> None:
    from crimelens.governance.fairness import BiasAudit

    assert isinstance(a, BiasAudit)
    c = a.concentration
    print(f"**{name}**: {len(a.groups)} groups, flagged {len(a.flagged)} "
          f"(under {sum(g.flag == 'under' for g in a.groups)}, over {sum(g.flag == 'over' for g in a.groups)}, "
          f"small {sum(g.flag == 'small' for g in a.groups)}); Gini {c['gini_selection_rate']:.3f}; "
          f"top group {c['top_group']} with {c['top_group_allocation_share']:.3f} of the selection for "
          f"{c['top_group_population_share']:.3f} of the population; hit rate {a.overall.get('hit_rate', 0):.3f}, "
          f"PAI {a.overall.get('pai', 0):.2f}, observed/expected {a.overall.get('calibration_ratio') or 0:.3f}\n")
    if len(a.groups) <= 6:
        print("| group | population share | allocation share | ratio | flag | incident share | obs/exp | PAI |")
        print("|---|---:|---:|---:|---|---:|---:|---:|")
        for g in a.groups:
            print(f"| {g.group} | {g.population_share:.3f} | {g.allocation_share:.3f} | {g.ratio:.2f} | {g.flag} | "
                  f"{g.incident_share or 0:.3f} | {g.calibration_ratio or 0:.3f} | {g.pai or 0:.2f} |")
        print()


def toronto() -> None:
    try:
        from forecast import TORONTO, load_toronto
    except ImportError:
        return
    if not Path(TORONTO).exists():
        print("(Toronto data absent: skipped)\n")
        return
    data = load_toronto()
    origin = pd.Timestamp("2021-01-04", tz="UTC")
    surf = make("retro_count", cell_size=200.0).fit(data, until=origin).predict(horizon="28d")
    grid, cells = surf.grid, surf.cells()
    test = data[(data["occurred_at"] >= origin) & (data["occurred_at"] < surf.end)]
    tc = grid.cell_of(test["x"].to_numpy(), test["y"].to_numpy())
    observed = np.bincount(tc[tc >= 0], minlength=grid.n_cells).astype(float)
    labels = cell_labels(data[data["occurred_at"] < origin], grid, "neighbourhood", cells)
    for cov in (0.01, 0.05):
        a = audit_selection(surf, GroupMembership.from_labels(cells, labels.to_numpy()), coverage=cov,
                            observed=observed)
        _print_audit(f"Toronto MCI, retro_count, 200 m, origin 2021-01-04, 28 days, by neighbourhood (cells), "
                     f"{cov:.0%}", a)
        frame = a.to_frame()
        share_zero = (frame["selected_cells"] == 0).mean()
        print(f"neighbourhoods with no selected cell: {share_zero:.1%}; largest ratio {frame['ratio'].max():.2f}\n")


def drift() -> None:
    inc = generate_city(CityConfig(n_incidents=8_000, days=240, seed=2, size_m=8_000)).incidents
    rows = []
    for seed in range(20):
        m = np.random.default_rng(seed).random(len(inc)) < 0.5
        r = incident_drift(inc[m], inc[~m], timezone="America/Chicago")
        rows.append({f.name: f.psi for f in r.features})
    floor = pd.DataFrame(rows)
    print("## Drift: PSI of random halves (4,000 vs 4,000 incidents, 20 splits)\n")
    print("| feature | mean PSI | max PSI |\n|---|---:|---:|")
    for col in floor.columns:
        print(f"| {col} | {floor[col].mean():.4f} | {floor[col].max():.4f} |")
    m = np.random.default_rng(0).random(len(inc)) < 0.5
    ref, cur = inc[m], inc[~m]
    print("\n| shift of the current half | feature | PSI | JS | p-value | flag |\n|---|---|---:|---:|---:|---|")
    cases = {
        "x + 250 m": cur.assign(x=cur["x"] + 250), "x + 500 m": cur.assign(x=cur["x"] + 500),
        "x + 1,500 m": cur.assign(x=cur["x"] + 1500),
        "times + 1 h": cur.assign(occurred_at=cur["occurred_at"] + pd.Timedelta(hours=1)),
        "times + 6 h": cur.assign(occurred_at=cur["occurred_at"] + pd.Timedelta(hours=6)),
        "30 % of theft recoded as fraud": _recode(cur, 0.3), "60 % of theft recoded": _recode(cur, 0.6),
    }
    feature = {"x": "x", "t": "hour", "3": "category", "6": "category"}
    for name, frame in cases.items():
        f = {g.name: g for g in incident_drift(ref, frame, timezone="America/Chicago").features}
        key = feature["x" if name.startswith("x") else "t" if name.startswith("times") else name[0]]
        g = f[key]
        print(f"| {name} | {key} | {g.psi:.3f} | {g.js_distance:.3f} | {g.p_value:.2g} | {g.flag} |")
    print()
    try:
        from forecast import TORONTO, load_toronto
    except ImportError:
        return
    if not Path(TORONTO).exists():
        return
    data = load_toronto().assign(time_precision="hour")
    year = pd.DatetimeIndex(data["occurred_at"]).tz_convert("America/Toronto").year
    print("## Drift on Toronto MCI, year on year (local time)\n")
    print("| reference → current | category | hour | weekday | x | y | status |\n|---|---:|---:|---:|---:|---:|---|")
    for a, b in ((2016, 2017), (2017, 2018), (2018, 2019), (2019, 2020), (2020, 2021)):
        r = incident_drift(data[year == a], data[year == b], timezone="America/Toronto")
        f = {g.name: g for g in r.features}
        vals = " | ".join(f"{f[n].psi:.3f} ({f[n].flag})" for n in ("category", "hour", "weekday", "x", "y"))
        print(f"| {a} → {b} | {vals} | {r.status} |")
    print()


def _recode(frame: pd.DataFrame, share: float) -> pd.DataFrame:
    out = frame.copy()
    theft = out.index[out["category"] == "theft"]
    out.loc[theft[: int(share * len(theft))], "category"] = "fraud"
    return out


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "all"
    for name, fn in (("urn", urn), ("recording", recording), ("audit", audit), ("drift", drift)):
        if what in (name, "all"):
            fn()
