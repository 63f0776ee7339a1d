"""Patrol allocation: optimal covering, constraints, scoring against what happened."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.forecast.surface import RiskSurface
from crimelens.geo.grid import SquareGrid
from crimelens.patrol import allocate, score_plan
from tests.forecast.conftest import make_incidents

CRS = "EPSG:32616"


def surface(n_side: int = 8, seed: int = 0, cell: float = 100.0) -> RiskSurface:
    rng = np.random.default_rng(seed)
    grid = SquareGrid(0.0, 0.0, cell, n_side, n_side, CRS)
    score = rng.gamma(0.5, 1.0, grid.n_cells)
    return RiskSurface(grid, score, pd.Timestamp("2024-01-01", tz="UTC"), pd.Timestamp("2024-01-08", tz="UTC"),
                       model="test", expected_total=float(score.sum()))


def covered_weight(s: RiskSurface, sites: list[int], radius: float) -> float:
    x, y = s.grid.centres()
    w = s.expected()
    reach = np.zeros(s.grid.n_cells, dtype=bool)
    for j in sites:
        reach |= np.hypot(x - x[j], y - y[j]) <= radius + 1e-6
    return float(w[reach].sum())


def test_without_reach_the_plan_is_the_top_cells() -> None:
    s = surface()
    for method in ("milp", "greedy"):
        plan = allocate(s, 5, method=method)  # type: ignore[arg-type]
        assert sorted(plan.sites.tolist()) == sorted(s.order()[:5].tolist())
        assert plan.expected_covered == pytest.approx(float(np.sort(s.expected())[-5:].sum()))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_milp_is_optimal_and_greedy_close(seed: int) -> None:
    s = surface(n_side=6, seed=seed)
    radius = 150.0  # a unit reaches its cell and the 8 around it... within 150 m: the 4 edge neighbours
    best = max(covered_weight(s, list(c), radius) for c in itertools.combinations(range(s.grid.n_cells), 3))
    plan = allocate(s, 3, radius_m=radius, method="milp")
    assert plan.method == "milp"
    assert plan.expected_covered == pytest.approx(best, rel=1e-6)
    assert plan.expected_covered == pytest.approx(covered_weight(s, plan.sites.tolist(), radius))
    greedy = allocate(s, 3, radius_m=radius, method="greedy")
    assert greedy.method == "greedy"
    assert best * (1 - 1 / np.e) <= greedy.expected_covered <= best + 1e-9
    # the covered cells are exactly those within reach of a site
    x, y = s.grid.centres()
    within = {int(i) for j in plan.sites for i in np.flatnonzero(np.hypot(x - x[j], y - y[j]) <= radius + 1e-6)}
    assert set(plan.covered.tolist()) == within


def test_separation_and_areas_are_respected() -> None:
    s = surface(n_side=10, seed=4)
    areas = {c: ("north" if c // 10 >= 5 else "south") for c in range(s.grid.n_cells)}
    for method in ("milp", "greedy"):
        plan = allocate(s, 6, radius_m=100.0, min_separation_m=300.0, areas=areas, min_per_area=2,
                        method=method)  # type: ignore[arg-type]
        x, y = s.grid.centres(plan.sites)
        d = np.hypot(x[:, None] - x[None, :], y[:, None] - y[None, :])
        assert d[np.triu_indices(len(plan.sites), 1)].min() >= 300.0 - 1e-6
        counts = pd.Series([areas[int(c)] for c in plan.sites]).value_counts()
        assert counts.get("north", 0) >= 2 and counts.get("south", 0) >= 2
        assert set(plan.site_area.values()) == {"north", "south"}


def test_area_minimum_changes_the_plan_when_risk_is_elsewhere() -> None:
    s = surface(n_side=10, seed=5)
    s.score[s.grid.rowcol(np.arange(100))[0] < 5] *= 0.01  # nearly all risk in the north
    areas = {c: ("north" if c // 10 >= 5 else "south") for c in range(100)}
    free = allocate(s, 4, areas=areas)
    assert all(areas[int(c)] == "north" for c in free.sites)
    bound = allocate(s, 4, areas=areas, min_per_area=1)
    assert sum(areas[int(c)] == "south" for c in bound.sites) == 1
    assert bound.expected_covered < free.expected_covered


def test_bad_input_is_refused_clearly() -> None:
    s = surface(n_side=3)
    with pytest.raises(InputError, match="only 9 cells"):
        allocate(s, 10)
    with pytest.raises(InputError, match="at least 1"):
        allocate(s, 0)
    with pytest.raises(InputError, match="needs 4 units"):
        allocate(s, 3, areas={c: str(c % 2) for c in range(9)}, min_per_area=2)
    with pytest.raises(InputError, match="relax"):
        allocate(s, 4, min_separation_m=1000.0, method="greedy")


def test_plan_from_a_forecast_beats_random_sites_on_the_next_week() -> None:
    frame = make_incidents(seed=3)
    origin = pd.Timestamp("2021-01-04", tz="UTC")
    est = make("retro_kde", cell_size=100.0, horizon="7d").fit(frame[frame["occurred_at"] < origin], until=origin)
    s = est.predict(horizon="7d")
    week = frame[(frame["occurred_at"] >= origin) & (frame["occurred_at"] < origin + pd.Timedelta(days=7))]
    plan = allocate(s, 8, radius_m=150.0, min_separation_m=250.0)
    got = score_plan(plan, week["x"].to_numpy(), week["y"].to_numpy())
    assert got["incidents"] == int(np.isin(s.grid.cell_of(week["x"].to_numpy(), week["y"].to_numpy()),
                                           s.cells()).sum())
    assert 0 < got["captured"] <= got["incidents"]
    rng = np.random.default_rng(0)
    random_hits = []
    for _ in range(20):
        sites = rng.choice(s.cells(), size=8, replace=False)
        rnd = RiskSurface(s.grid, np.isin(np.arange(s.grid.n_cells), sites).astype(float), s.start, s.end,
                          area=s.area)
        rplan = allocate(rnd, 8, radius_m=150.0, method="greedy")
        random_hits.append(score_plan(rplan, week["x"].to_numpy(), week["y"].to_numpy())["hit_rate"])
    assert got["hit_rate"] > 2 * float(np.mean(random_hits))
    assert got["pai"] > 2.0
    geo = plan.to_geojson()
    kinds = pd.Series([f["properties"]["kind"] for f in geo["features"]]).value_counts()
    assert kinds["site"] == 8 and kinds["covered"] == len(plan.covered)
    frame_out = plan.to_frame()
    assert frame_out["expected_added"].is_monotonic_decreasing or plan.radius_m > 0
    assert frame_out["expected_added"].sum() == pytest.approx(plan.expected_covered)


def test_max_per_area_is_a_hard_cap_in_milp_and_greedy() -> None:
    grid = SquareGrid(0.0, 0.0, 100.0, 10, 10, CRS)
    score = np.zeros(grid.n_cells)
    score[:50] = np.linspace(5.0, 4.0, 50)  # the south half holds all the risk
    score[50:] = 0.1
    t0 = pd.Timestamp("2021-01-04", tz="UTC")
    surface = RiskSurface(grid, score, t0, t0 + pd.Timedelta(days=7), model="t", expected_total=float(score.sum()),
                          area=np.arange(grid.n_cells))
    areas = {c: ("south" if c < 50 else "north") for c in range(grid.n_cells)}
    for method in ("milp", "greedy"):
        free = allocate(surface, 6, method=method)  # type: ignore[arg-type]
        assert all(c < 50 for c in free.sites)
        capped = allocate(surface, 6, areas=areas, max_per_area={"south": 2}, method=method)  # type: ignore[arg-type]
        assert sum(c < 50 for c in capped.sites) == 2 and len(set(capped.sites.tolist())) == 6
        assert capped.expected_covered < free.expected_covered
    with pytest.raises(InputError, match="allow"):
        allocate(surface, 6, areas={c: "all" for c in range(grid.n_cells)}, max_per_area={"all": 3})
