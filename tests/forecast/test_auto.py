"""``auto``: nested selection without leakage, weights that follow the evidence, registration."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.forecast import available, make
from crimelens.forecast.auto import Auto, clear_cache, earlier
from crimelens.forecast.evaluation import RollingOrigin, backtest
from crimelens.forecast.history import History
from crimelens.geo.grid import SquareGrid

CHEAP = ("retro_count", "retro_kde", "prospective", "sepp", "recent")
BLENDS = {"mix": ("retro_kde", "sepp")}  # a cheap stand-in for the default ensemble blend (gbm is slow)
X0, Y0, CELL, SIDE = 440_000.0, 4_630_000.0, 100.0, 20


def moving_hotspots(seed: int = 3, weeks: int = 70) -> pd.DataFrame:
    """Hot spots that last about two weeks and then move: last week's map is the right one."""
    rng = np.random.default_rng(seed)
    n = SIDE * SIDE
    t0 = pd.Timestamp("2020-01-06", tz="UTC")
    rows = []
    hot = rng.choice(n, 8, replace=False)
    for w in range(weeks):
        if w % 2 == 0:
            hot = rng.choice(n, 8, replace=False)
        cells = np.concatenate([rng.choice(hot, 60), rng.choice(n, 20)])
        secs = rng.integers(0, 7 * 86_400, len(cells))
        rows.append(pd.DataFrame({"cell": cells, "when": t0 + pd.to_timedelta(w * 7 * 86_400 + secs, unit="s")}))
    f = pd.concat(rows, ignore_index=True)
    col, row = f["cell"].to_numpy() % SIDE, f["cell"].to_numpy() // SIDE
    return pd.DataFrame({
        "occurred_at": f["when"], "x": X0 + (col + rng.random(len(f))) * CELL,
        "y": Y0 + (row + rng.random(len(f))) * CELL, "category": "theft", "crs": "EPSG:32616",
    }).sort_values("occurred_at", kind="stable").reset_index(drop=True)


def _auto(**kw: object) -> Auto:
    params: dict[str, object] = {"candidates": CHEAP, "blends": BLENDS, "inner_folds": 8,
                                 "min_category_incidents": 500, "cell_size": CELL}
    params.update(kw)
    est = make("auto", **params)
    assert isinstance(est, Auto)
    return est


def _rewrite_after(frame: pd.DataFrame, when: pd.Timestamp, seed: int = 9) -> pd.DataFrame:
    """Everything at or after ``when`` moved to random places and categories, plus extra rows."""
    rng = np.random.default_rng(seed)
    late = frame["occurred_at"] >= when
    out = frame.copy()
    out.loc[late, "x"] = rng.uniform(frame["x"].min(), frame["x"].max(), late.sum())
    out.loc[late, "y"] = rng.uniform(frame["y"].min(), frame["y"].max(), late.sum())
    out.loc[late, "category"] = rng.permutation(out.loc[late, "category"].to_numpy())
    extra = out[late].sample(frac=0.5, random_state=1)
    return pd.concat([out, extra], ignore_index=True)


def test_earlier_cuts_the_past_and_the_inner_window(incidents: pd.DataFrame, grid: SquareGrid,
                                                   origin: pd.Timestamp) -> None:
    hist = History.build(incidents, grid, origin)
    past, observed = earlier(hist, 14.0, 7.0)
    inner = origin - pd.Timedelta(days=14)
    direct = History.build(incidents, grid, inner)
    assert past.until == inner and len(past) == len(direct)
    assert np.allclose(np.sort(past.age), np.sort(direct.age))
    when = incidents["occurred_at"]
    window = incidents[(when >= inner) & (when < inner + pd.Timedelta(days=7))]
    assert observed.sum() == len(window)


def test_nothing_at_or_after_the_origin_moves_the_forecast(incidents: pd.DataFrame, origin: pd.Timestamp) -> None:
    clear_cache()
    a = _auto().fit(incidents, until=origin)
    clear_cache()  # recompute every inner fold from the rewritten data
    b = _auto().fit(_rewrite_after(incidents, origin), until=origin)
    assert np.array_equal(a.predict(horizon="7d").score, b.predict(horizon="7d").score)
    assert a.explain() == b.explain()
    assert any(g["weights"]["mix"] > 0 for g in a.explain()["groups"])  # the blend is in the forecast
    # and the rewrite does move a forecast that is allowed to see it
    c = _auto().fit(_rewrite_after(incidents, origin - pd.Timedelta(days=7)), until=origin)
    assert not np.array_equal(a.predict(horizon="7d").score, c.predict(horizon="7d").score)


def test_backtest_folds_before_a_rewrite_do_not_move(incidents: pd.DataFrame, grid: SquareGrid) -> None:
    split = RollingOrigin("2020-12-07", "2021-01-04", horizon="7d")
    cut = pd.Timestamp("2020-12-21", tz="UTC")  # folds 0 and 1 end by this date
    models = {"auto": _auto(per_category=False)}
    area = np.arange(grid.n_cells)  # a fixed study area: the default footprint would see the rewrite
    clear_cache()
    a = backtest(models, incidents, split, grid=grid, area=area).folds
    clear_cache()
    b = backtest(models, _rewrite_after(incidents, cut), split, grid=grid, area=area).folds
    before = a["origin"] + pd.Timedelta(days=7) <= cut
    cols = ["pai", "hit_rate", "n", "log_score"]
    pd.testing.assert_frame_equal(a.loc[before, cols], b.loc[before.to_numpy(), cols])
    assert not a.loc[~before, cols].equals(b.loc[~before.to_numpy(), cols])


def test_auto_follows_the_evidence_to_the_short_memory_model() -> None:
    data = moving_hotspots()
    origins = RollingOrigin("2021-03-01", "2021-04-19", horizon="7d")
    est = _auto(per_category=False)
    models = {"auto": est, "retro_count": make("retro_count", cell_size=CELL), "recent": make("recent", cell_size=CELL)}
    rep = backtest(models, data, origins, cell_size=CELL, coverages=(0.05,))
    mean = rep.folds.groupby("model")["pai"].mean()
    assert mean["recent"] > 1.3 * mean["retro_count"]  # the data are what the test says they are
    assert mean["auto"] > 1.3 * mean["retro_count"]
    assert mean["auto"] >= 0.9 * mean["recent"]
    fitted = est.fit(data, until=pd.Timestamp("2021-04-19", tz="UTC"))
    weights = fitted.explain()["groups"][0]["weights"]
    assert max(weights, key=weights.get) in ("recent", "prospective", "sepp")  # short-memory models
    assert weights["retro_count"] + weights["retro_kde"] < 0.3


def test_memo_reuses_the_outer_fits(incidents: pd.DataFrame, grid: SquareGrid) -> None:
    """In a weekly backtest the inner folds of auto are the outer fits of earlier origins."""
    from crimelens.forecast import memo

    clear_cache()
    split = RollingOrigin("2020-10-05", "2020-12-28", horizon="7d")
    models: dict[str, object] = {n: make(n) for n in CHEAP}
    models["auto"] = _auto(per_category=False, inner_folds=4)
    backtest(models, incidents, split, grid=grid)  # type: ignore[arg-type]
    assert len(memo._MEMO) < len(split.folds()) * (len(CHEAP) + 1) + 4 * len(CHEAP) + 1
    # every fit auto needs is now in the memo: backtesting it again fits nothing new (counted, not timed)
    held = len(memo._MEMO)
    assert held > 0
    backtest({"auto": _auto(per_category=False, inner_folds=4)}, incidents, split, grid=grid)  # type: ignore[arg-type]
    assert len(memo._MEMO) == held


def test_thin_evidence_gives_equal_weights(incidents: pd.DataFrame, origin: pd.Timestamp) -> None:
    est = _auto(inner_folds=2, per_category=False).fit(incidents, until=origin)
    (group,) = est.explain()["groups"]
    assert list(group["weights"]) == [*CHEAP, "mix"]
    assert list(group["weights"].values()) == pytest.approx([1 / (len(CHEAP) + 1)] * (len(CHEAP) + 1))
    assert "equal weights" in group["reason"]


def test_per_category_groups_and_calibrated_total(incidents: pd.DataFrame, origin: pd.Timestamp) -> None:
    est = _auto(min_category_incidents=1500).fit(incidents, until=origin)
    groups = est.explain()["groups"]
    recent = incidents[(incidents["occurred_at"] < origin)
                       & (incidents["occurred_at"] >= origin - pd.Timedelta(days=365))]
    big = {c for c, n in recent["category"].value_counts().items() if n >= 1500}
    cats = [tuple(g["categories"]) for g in groups]
    assert 0 < len(big) < 3
    assert {(c,) for c in big} <= set(cats)
    assert sorted(c for g in cats for c in g) == sorted(incidents["category"].unique())
    assert len(cats) == len(big) + 1  # the small categories share one set of weights
    surf = est.predict(horizon="7d")
    week = incidents[(incidents["occurred_at"] >= origin) & (incidents["occurred_at"] < origin + pd.Timedelta(days=7))]
    assert surf.expected().sum() == pytest.approx(len(week), rel=0.25)


def test_registered_and_in_the_default_set() -> None:
    assert "auto" in available("all")
    with pytest.raises(Exception, match="candidate"):
        make("auto", candidates=("auto",), cell_size=CELL).fit(moving_hotspots(weeks=10))


def test_cli_forecast_defaults_to_auto_and_says_why(tmp_path: Path, toronto_store) -> None:  # type: ignore[no-untyped-def]
    from crimelens.cli.app import app
    db = toronto_store(moving_hotspots(weeks=30), tmp_path)
    runner = CliRunner()
    out = tmp_path / "f.csv"
    res = runner.invoke(app, ["forecast", "--cell", "100", "--out", str(out), "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["model"] == "auto"
    assert payload["chosen"] and "reason" in payload["chosen"][0]
    assert abs(sum(payload["chosen"][0]["weights"].values()) - 1) < 1e-9
    assert out.exists()


def test_relative_scores_fold_and_all() -> None:
    from crimelens.forecast.auto import relative_scores

    rng = np.random.default_rng(4)
    hits = rng.poisson(5.0, size=(10, 2, 4)).astype(float) + 1.0  # folds x coverages x candidates
    hits[0] *= 20.0  # one busy fold
    by_fold = relative_scores(hits, "fold")
    by_all = relative_scores(hits, "all")
    assert by_fold.shape == by_all.shape == (10, 4)
    assert np.allclose(by_fold.mean(axis=1), 1.0)  # every fold averages 1 over the candidates
    # "all": the busy fold's differences between candidates count about 20 times more
    spread = lambda z: np.ptp(z, axis=1)  # noqa: E731
    assert spread(by_all)[0] > 5 * np.median(spread(by_all)[1:])
    assert spread(by_fold)[0] < 5 * np.median(spread(by_fold)[1:])
    with pytest.raises(Exception, match="normalise"):
        relative_scores(hits, "median")


def test_thin_evidence_shrinks_towards_the_prior() -> None:
    names = ["retro_count", "retro_kde", "recent"]
    z = np.ones((12, 3))  # no candidate differs from another in any fold: no evidence
    est = _auto(candidates=names, prior={"retro_kde": 3.0, "recent": 0.5}, sharpness=1.0)
    w, t, _ = est.weigh(z, names)
    assert all(v == 0.0 for v in t.values())
    assert [w[n] for n in names] == pytest.approx(np.array([1.0, 3.0, 0.5]) / 4.5)
    # clear evidence for one candidate overrides the prior, more so with a higher sharpness
    rng = np.random.default_rng(0)
    z = 1.0 + rng.normal(0.0, 0.05, (12, 3))
    z[:, 0] += 0.03
    soft, t, _ = est.weigh(z, names)
    assert -2.0 < min(t.values()) < -0.5  # some evidence, nobody dropped
    sharp = _auto(candidates=names, prior={"retro_kde": 3.0, "recent": 0.5}, sharpness=3.0).weigh(z, names)[0]
    assert sharp["retro_count"] > soft["retro_count"] + 0.2
    assert sharp["retro_count"] > 0.5


def test_a_blend_is_the_ensemble_of_its_parts(incidents: pd.DataFrame, grid: SquareGrid,
                                              origin: pd.Timestamp) -> None:
    """The blend candidate is ``ensemble`` of its parts, from the same fits, weighted like any candidate."""
    from crimelens.forecast.ensemble import Ensemble
    from crimelens.forecast.retro_kde import RetroKDE
    from crimelens.forecast.sepp import SEPP

    names = ("retro_kde", "sepp")
    est = _auto(candidates=names, per_category=False, power=False, grid=grid).fit(incidents, until=origin)
    (group,) = est.explain()["groups"]
    w = group["weights"]
    assert set(w) == {"retro_kde", "sepp", "mix"} and abs(sum(w.values()) - 1) < 1e-9
    assert "mix" in group["relative_pai"] and "mix" in group["t_vs_leader"]
    share = {n: _share(make(n, grid=grid).fit(incidents, until=origin).predict(horizon="7d").score) for n in names}
    ens = Ensemble(members=(RetroKDE(), SEPP()), grid=grid).fit(incidents, until=origin)
    mix = _share(ens.predict(horizon="7d").score)
    assert np.allclose(mix, (share["retro_kde"] + share["sepp"]) / 2)
    expected = w["retro_kde"] * share["retro_kde"] + w["sepp"] * share["sepp"] + w["mix"] * mix
    assert np.allclose(_share(est.predict(horizon="7d").score), expected)


def _share(score: np.ndarray) -> np.ndarray:
    return score / score.sum()


def test_blends_need_their_parts_and_a_free_name() -> None:
    est = _auto()
    assert est.active_blends(list(CHEAP)) == {"mix": ("retro_kde", "sepp")}
    assert est.active_blends(["retro_kde", "recent"]) == {}  # sepp missing: the blend is skipped
    assert Auto().active_blends(list(CHEAP)) == {}  # the default ensemble blend needs gbm
    assert Auto().active_blends([*CHEAP, "gbm"]) == {"ensemble": ("retro_kde", "sepp", "gbm")}
    with pytest.raises(Exception, match="clashes"):
        _auto(blends={"sepp": ("retro_kde", "recent")}).active_blends(list(CHEAP))


def test_leader_selection_puts_all_weight_on_the_leader() -> None:
    names = ["retro_count", "retro_kde", "mix"]
    rng = np.random.default_rng(1)
    z = 1.0 + rng.normal(0.0, 0.05, (12, 3))
    z[:, 2] += 0.02
    w, _, reason = _auto(select="leader").weigh(z, names)
    lead = names[int(np.argmax(z.mean(axis=0)))]
    assert w == {n: float(n == lead) for n in names}
    assert f"leader {lead}" in reason and "all weight on the leader" in reason
    soft, _, _ = _auto().weigh(z, names)
    assert sum(v > 0 for v in soft.values()) > 1  # the default weights several
    with pytest.raises(Exception, match="select"):
        _auto(select="best").weigh(z, names)


def test_recalibration_floor_carries_incidents_where_the_map_put_nothing() -> None:
    """Counts drawn from a known mixture: 80 % from a sharp map, 20 % spread evenly. The fit recovers
    the floor near 0.2 and keeps the power near 1, so the busiest cells get what the truth gives
    them; without a floor the log score flattens the map instead (power well below 1)."""
    from crimelens.forecast.auto import _POWERS, _recalibrate

    rng = np.random.default_rng(3)
    cells = 400
    sharp = rng.gamma(0.3, size=cells)
    sharp[rng.choice(cells, 150, replace=False)] = 0.0  # where the map puts nothing
    share = sharp / sharp.sum()
    truth = 0.8 * share + 0.2 / cells
    folds = [(rng.poisson(truth * 300.0).astype(np.float64), 300.0) for _ in range(12)]
    parts = [{"m": share} for _ in folds]
    power, floor, scale = _recalibrate({"m": 1.0}, ["m"], parts, folds)
    assert 0.1 <= floor <= 0.3 and 0.85 <= power <= 1.15 and 0.9 < scale < 1.1
    power0, floor0, _ = _recalibrate({"m": 1.0}, ["m"], parts, folds, floors=(0.001,))
    assert floor0 == 0.001 and power0 < 0.8 and power0 >= float(_POWERS[0])
    # the busiest tenth of cells: with the floor, expected ≈ the truth; flattened, too little
    top = np.argsort(share)[-cells // 10:]

    def expected(b: float, f: float) -> float:
        sb = share ** b / (share ** b).sum()
        return float(((1 - f) * sb + f / cells)[top].sum())

    assert abs(expected(power, floor) / truth[top].sum() - 1) < 0.05


def test_the_floor_keeps_the_ranks_in_the_footprint(incidents: pd.DataFrame, origin: pd.Timestamp) -> None:
    est = _auto(per_category=False).fit(incidents, until=origin)
    (group,) = est.explain()["groups"]
    rec = group["recalibration"]
    assert set(rec) == {"power", "floor", "scale"} and 0 < rec["floor"] <= 0.3
    raw = _auto(per_category=False, power=False).fit(incidents, until=origin)
    a, b = est.predict(horizon="7d").score, raw.predict(horizon="7d").score
    for share in (0.01, 0.05, 0.2):  # the cells flagged at each coverage are the same cells
        k = max(1, int(share * len(a)))
        assert set(np.argsort(-a, kind="stable")[:k]) == set(np.argsort(-b, kind="stable")[:k])
