"""Hit rate, PAI, PEI* and the oracle on hand-worked cases, and their invariants."""

from __future__ import annotations

import numpy as np
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast.evaluation import (
    best_possible,
    block_bootstrap_mean,
    captured,
    n_flagged,
    oracle_pai,
    poisson_log_score,
    score_coverage,
)


def test_hand_worked_case() -> None:
    # A = 4 cells, flag 1 (25 %); the top-scored cell holds 1 of 4 incidents, the best holds 2.
    score = np.array([3.0, 2.0, 1.0, 0.0])
    observed = np.array([1.0, 0.0, 2.0, 1.0])
    s = score_coverage(score, observed, 0.25)
    assert (s.k, s.area_cells, s.n, s.n_total, s.n_star) == (1, 4, 1.0, 4.0, 2.0)
    assert s.hit_rate == pytest.approx(0.25)
    assert s.pai == pytest.approx((1 / 4) / (1 / 4))
    assert s.pei == pytest.approx(1 / 2)
    assert s.oracle_pai == pytest.approx((2 / 4) / (1 / 4))


def test_two_of_ten_cells() -> None:
    score = np.arange(10, dtype=float)  # cells 9 and 8 are flagged at 20 %
    observed = np.array([0, 0, 0, 0, 0, 0, 0, 3, 1, 2], dtype=float)
    s = score_coverage(score, observed, 0.2)
    assert s.k == 2 and s.n == 3.0
    assert s.pai == pytest.approx((3 / 6) / 0.2)
    assert s.n_star == 5.0 and s.pei == pytest.approx(3 / 5)


def test_ties_at_the_cut_are_shared_by_expectation() -> None:
    score = np.array([1.0, 1.0, 0.0, 0.0])
    observed = np.array([2.0, 0.0, 0.0, 0.0])
    assert captured(score, observed, 1) == pytest.approx(1.0)  # either tied cell, equally likely
    assert captured(score, observed, 2) == pytest.approx(2.0)
    assert captured(np.zeros(4), observed, 2) == pytest.approx(1.0)  # a flat map is a coin toss


def test_oracle_is_a_ceiling_and_perfect_map_reaches_it() -> None:
    rng = np.random.default_rng(3)
    observed = rng.poisson(0.3, 500).astype(float)
    for cov in (0.01, 0.05, 0.2):
        best = score_coverage(observed, observed, cov)
        assert best.pei == pytest.approx(1.0)
        assert best.pai == pytest.approx(oracle_pai(observed, cov))
        for _ in range(5):
            s = score_coverage(rng.random(500), observed, cov)
            assert s.pai <= best.pai + 1e-12
            assert 0.0 <= s.pei <= 1.0


def test_random_map_has_pai_near_one() -> None:
    rng = np.random.default_rng(0)
    observed = rng.poisson(1.0, 20_000).astype(float)
    pais = [score_coverage(rng.random(20_000), observed, 0.1).pai for _ in range(5)]
    assert np.mean(pais) == pytest.approx(1.0, abs=0.05)


def test_best_possible_and_flagged_counts() -> None:
    assert best_possible(np.array([5.0, 1.0, 3.0]), 2) == 8.0
    assert best_possible(np.array([5.0, 1.0]), 5) == 6.0
    assert n_flagged(0.01, 9431) == 94
    assert n_flagged(0.001, 10) == 1
    with pytest.raises(InputError):
        n_flagged(0.0, 10)
    with pytest.raises(InputError):
        n_flagged(1.5, 10)


def test_poisson_log_score_prefers_the_true_intensity() -> None:
    rng = np.random.default_rng(1)
    lam = rng.gamma(0.5, 2.0, 2_000)
    observed = rng.poisson(lam).astype(float)
    truth = poisson_log_score(lam, observed)
    assert truth > poisson_log_score(np.full_like(lam, lam.mean()), observed)
    assert truth > poisson_log_score(rng.permutation(lam), observed)
    assert np.isfinite(poisson_log_score(np.zeros_like(lam), observed))


def test_block_bootstrap_interval_covers_the_mean_and_collapses_on_constants() -> None:
    mean, lo, hi = block_bootstrap_mean(np.full(30, 2.5))
    assert mean == lo == hi == 2.5
    values = np.random.default_rng(2).normal(1.0, 1.0, 52)
    mean, lo, hi = block_bootstrap_mean(values)
    assert lo < mean < hi
    assert block_bootstrap_mean(values) == block_bootstrap_mean(values)  # seeded
