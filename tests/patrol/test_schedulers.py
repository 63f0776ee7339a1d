"""Schedulers, training and evaluation on planted-truth toys."""

from __future__ import annotations

import numpy as np
import pytest

from crimelens.exceptions import InputError
from crimelens.patrol.evaluation import coverage_fairness, feedback_run, harm_prevented, paired_interval, plan_shifts
from crimelens.patrol.schedulers import ThompsonPolicy, group_caps, make_scheduler, parse_methods
from crimelens.patrol.simulator import SimConfig
from crimelens.patrol.training import TrainingSettings, train_policy

from .toy import flat_city, planted_city


def test_rl_learns_a_planted_truth_it_is_not_told() -> None:
    truth, hot = planted_city()
    cfg = SimConfig(units=6, deterrence=0.5, displacement=0.2)
    flat = np.full(truth.rates.shape, truth.rates.mean())  # the estimate says nothing about where crime is
    policy, report = train_policy(truth, flat, cfg, TrainingSettings(steps=120, batch=8, tolerance=None, seed=2))
    assert report.simulated_shifts == 960 and report.shifts_per_s > 0
    learned = harm_prevented(truth, cfg, plan_shifts(policy, flat)).sum()
    rng = np.random.default_rng(0)
    random = np.mean([harm_prevented(truth, cfg, rng.choice(truth.n, size=(3, 6), replace=False)).sum()
                      for _ in range(50)])
    untrained = harm_prevented(truth, cfg, plan_shifts(ThompsonPolicy.prior(truth, cfg, tolerance=None), flat)).sum()
    best = harm_prevented(truth, cfg, plan_shifts(make_scheduler("greedy", truth, cfg), truth.rates)).sum()
    assert learned > 5 * random and learned > 5 * untrained
    assert learned > 0.8 * best  # close to the plan that knows the truth
    assert len(set(plan_shifts(policy, flat)[0].tolist()) & set(hot.tolist())) >= 5


def test_fairness_cap_holds_where_the_optimiser_breaks_it() -> None:
    truth, _ = planted_city()
    rates = truth.rates.copy()
    rates[:, truth.groups == 0] *= 8.0  # the south-west quadrant reports most crime, but not all of it
    city = truth.with_rates(rates)
    cfg = SimConfig(units=12, radius_m=0.0)
    est = rates * cfg.report_prob
    caps = group_caps(city.groups, 4, est.sum(axis=0), 12, 0.25)
    assert caps.sum() >= 12
    share = np.bincount(city.groups, weights=est.sum(axis=0)) / est.sum()
    assert (caps <= np.floor(1.25 * share * 12 + 1e-9) + 1).all()
    policy = ThompsonPolicy.prior(city, cfg, tolerance=0.25, reported=est)
    rl = coverage_fairness(city, plan_shifts(policy, est), est)
    mclp = coverage_fairness(city, plan_shifts(make_scheduler("mclp", city, cfg), est), est)
    assert rl["max_ratio"] <= 1.25 + 1e-9
    assert mclp["max_ratio"] > 1.25
    with pytest.raises(InputError):
        group_caps(city.groups, 4, est.sum(axis=0), 12, -0.1)


def test_feedback_loop_runs_away_under_greedy_and_not_under_rl() -> None:
    city = flat_city()
    cfg = SimConfig(units=8, radius_m=150.0)
    rng = np.random.default_rng(2)
    prior = rng.poisson(city.rates * cfg.report_prob * 7) / 7
    policy = ThompsonPolicy.prior(city, cfg, tolerance=0.25, reported=prior)
    naive, guarded, rl = [], [], []
    for seed in range(4):
        greedy = make_scheduler("greedy", city, cfg)
        naive.append(feedback_run(city, prior, cfg, greedy, weeks=52, seed=seed).top_share[-8:].mean())
        guarded.append(feedback_run(city, prior, cfg, greedy, weeks=52, police_initiated_weight=0.0,
                                    seed=seed).top_share[-8:].mean())
        run = feedback_run(city, prior, cfg, policy, weeks=52, police_initiated_weight=0.0, seed=seed)
        rl.append(run.top_share.max())
    assert np.mean(naive) > 1.5 * 0.25  # each quadrant has a quarter of the crime
    assert np.mean(naive) > np.mean(guarded) + 0.1
    assert max(rl) <= 0.25 * 1.25 + 1e-9


def test_names_and_intervals() -> None:
    assert parse_methods("greedy, rl") == ["greedy", "rl"]
    with pytest.raises(InputError, match="ppo"):
        parse_methods("greedy,ppo")
    with pytest.raises(InputError):
        make_scheduler("rl", flat_city(), SimConfig())
    a = np.array([3.0, 4, 5, 6, 7, 8])
    got = paired_interval(a, a - 1)
    assert got == {"mean_diff": 1.0, "low": 1.0, "high": 1.0}
    got = paired_interval(a, a[::-1])
    assert got["low"] < 0 < got["high"]


def test_mclp_fair_keeps_the_caps_and_beats_capped_greedy_covering() -> None:
    truth, _ = planted_city()
    rates = truth.rates.copy()
    rates[:, truth.groups == 0] *= 8.0
    city = truth.with_rates(rates)
    cfg = SimConfig(units=12, radius_m=150.0)
    est = rates * cfg.report_prob
    fair = make_scheduler("mclp-fair", city, cfg, tolerance=0.25, reported=est)
    assert fair.name == "mclp-fair"
    plans = plan_shifts(fair, est)
    caps = group_caps(city.groups, 4, est.sum(axis=0), 12, 0.25)
    for sites in plans:
        assert len(set(sites.tolist())) == 12
        assert (np.bincount(city.groups[sites], minlength=4) <= caps).all()
    # the exact capped optimum covers at least what the greedy capped cover of rl's oracle does
    from crimelens.patrol.evaluation import covered_cells
    from crimelens.patrol.schedulers import cover

    reach = city.reach(cfg.radius_m)
    for s in range(3):
        g = cover(reach, est[s], 12, city.groups, caps)
        assert est[s][covered_cells(city, cfg.radius_m, plans[s])].sum() >= \
            est[s][covered_cells(city, cfg.radius_m, g)].sum() - 1e-9
    # where the optimiser stacks units in the group reporting most crime, the capped one stays inside
    cfg0 = SimConfig(units=12, radius_m=0.0)
    unfair = plan_shifts(make_scheduler("mclp", city, cfg0), est)
    capped = plan_shifts(make_scheduler("mclp-fair", city, cfg0, tolerance=0.25, reported=est), est)
    assert coverage_fairness(city, unfair, est)["max_ratio"] > 1.25
    assert coverage_fairness(city, capped, est)["max_ratio"] <= 1.25 + 1e-9
