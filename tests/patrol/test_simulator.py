"""The simulator's mechanics measured against their configured values."""

from __future__ import annotations

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from crimelens.exceptions import InputError
from crimelens.patrol.simulator import PatrolEnv, SimConfig, VecPatrolSim, shift_structure

from .toy import GRID, flat_city


def _se(var: float, n: int) -> float:
    return float(np.sqrt(var / n))


def test_deterrence_displacement_and_discovery_match_their_settings() -> None:
    lam = 2.0
    city = flat_city(lam)
    cfg = SimConfig(units=1, radius_m=0.0, deterrence=0.4, displacement=0.5, report_prob=0.3, discover_prob=0.7)
    b = 4000
    sim = VecPatrolSim(city, cfg, batch=b, seed=7)
    site = 8 * GRID.nx + 8  # an interior cell: 8 uncovered neighbours
    out = sim.step(np.full((b, 1), site))
    nbrs = city.adjacency()[site].indices
    assert len(nbrs) == 8
    crimes = out.crimes.astype(float)
    covered_rate = lam * (1 - cfg.deterrence)
    nbr_rate = lam + cfg.displacement * cfg.deterrence * lam / 8
    assert abs(crimes[:, site].mean() - covered_rate) < 4 * _se(covered_rate, b)
    assert abs(crimes[:, nbrs].mean() - nbr_rate) < 4 * _se(nbr_rate, 8 * b)
    far = 2 * GRID.nx + 2
    assert abs(crimes[:, far].mean() - lam) < 4 * _se(lam, b)
    # discovery only where the unit is, at discover_prob of the unreported crimes
    unreported = crimes[:, site] - out.reported[:, site]
    assert abs(out.discovered[:, site].sum() / unreported.sum() - cfg.discover_prob) < 0.02
    assert out.discovered[:, nbrs].sum() == 0 and out.discovered[:, far].sum() == 0
    assert abs(out.reported.sum() / out.crimes.sum() - cfg.report_prob) < 0.01
    # harm prevented: the deterred crime that was not displaced
    expect = cfg.deterrence * lam * (1 - cfg.displacement)
    assert np.allclose(out.prevented, expect)
    assert sim.expected_prevented(np.array([site]), 0) == pytest.approx(expect)
    assert abs(out.net[:, site].mean() - expect) < 4 * _se(lam, b)


def test_displaced_crime_with_no_uncovered_neighbour_is_prevented() -> None:
    city = flat_city(1.0)
    cfg = SimConfig(units=1, radius_m=150.0, deterrence=0.5, displacement=1.0)
    sim = VecPatrolSim(city, cfg, batch=1)
    site = np.array([8 * GRID.nx + 8])
    # the 3x3 block is covered; only its 8 edge cells displace (all of their deterred crime), the centre prevents
    assert sim.expected_prevented(site, 0) == pytest.approx(0.5)


def test_travel_limit_and_seeding() -> None:
    city = flat_city()
    cfg = SimConfig(units=2, travel_m=150.0)
    sim = VecPatrolSim(city, cfg, batch=1, seed=3)
    sim.step(np.array([[0, 255]]))
    sim.step(np.array([[255, 0]]))  # swapped request: matched to the unit already there, no move needed
    assert sorted(sim.positions[0].tolist()) == [0, 255]
    sim.step(np.array([[0, 128]]))  # the unit at 255 may move one cell (<= 150 m) toward 128
    xy = city.centres()
    moved = next(p for p in sim.positions[0] if p != 0)
    assert np.hypot(*(xy[moved] - xy[255])) <= 150.0 + 1e-6 and moved != 255
    a = VecPatrolSim(city, cfg, batch=3, seed=11).step(np.array([[1, 2]] * 3)).crimes
    b = VecPatrolSim(city, cfg, batch=3, seed=11).step(np.array([[1, 2]] * 3)).crimes
    assert np.array_equal(a, b)


def test_gymnasium_env_passes_the_checker_and_bad_actions_are_refused() -> None:
    env = PatrolEnv(flat_city(), SimConfig(units=3), episode_shifts=6)
    check_env(env, skip_render_check=True)
    obs, _ = env.reset(seed=1)
    total, done = 0.0, False
    while not done:
        obs, reward, _, done, info = env.step(env.action_space.sample())
        total += reward
        assert obs["units"].sum() == 3 and info["discovered"] <= info["crimes"]
    assert total > 0
    with pytest.raises(InputError):
        env.step(np.array([0, 1]))
    with pytest.raises(InputError):
        shift_structure(5)
    with pytest.raises(InputError):
        SimConfig(deterrence=1.5)
