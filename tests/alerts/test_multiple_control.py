"""Benjamini–Hochberg, control charts and the CUSUM threshold calibration."""

from __future__ import annotations

import numpy as np
import pytest

from crimelens.alerts.control import cusum, cusum_threshold, ewma, ewma_p_value, siegmund_arl
from crimelens.alerts.multiple import adjust, reject
from crimelens.exceptions import InputError


def test_bh_agrees_with_statsmodels() -> None:
    from statsmodels.stats.multitest import multipletests

    rng = np.random.default_rng(1)
    p = np.concatenate([rng.uniform(size=200), rng.uniform(0, 1e-3, 20)])
    for ours, theirs in (("bh", "fdr_bh"), ("by", "fdr_by"), ("bonferroni", "bonferroni")):
        assert np.allclose(adjust(p, ours), multipletests(p, method=theirs)[1])


def test_bh_ignores_nan_and_controls_fdr_by_simulation() -> None:
    rng = np.random.default_rng(2)
    fdp = []
    for _ in range(300):
        null = rng.uniform(size=180)
        alt = rng.uniform(0, 0.002, 20)
        rej = reject(np.concatenate([null, alt, [np.nan]]), 0.1)
        assert not rej[-1]
        false, total = rej[:180].sum(), rej.sum()
        fdp.append(false / total if total else 0.0)
    assert np.mean(fdp) <= 0.1 * 180 / 200 + 0.02


def test_bh_rejects_nothing_under_the_global_null_most_of_the_time() -> None:
    rng = np.random.default_rng(3)
    any_rej = np.mean([reject(rng.uniform(size=500), 0.05).any() for _ in range(400)])
    assert any_rej <= 0.05 + 0.03


def test_ewma_is_standard_normal_under_no_change() -> None:
    rng = np.random.default_rng(4)
    u = rng.standard_normal((20_000, 10))
    z, sd = ewma(u, 0.3)
    assert abs(np.std(z / sd) - 1) < 0.03
    p = ewma_p_value(u, 0.3)
    assert abs(np.mean(p <= 0.05) - 0.05) < 0.01


def test_siegmund_threshold_gives_the_asked_run_length() -> None:
    """Simulated in-control ARL of a k=0.5 CUSUM at the calibrated h is within 25 % of the target."""
    h = cusum_threshold(200.0, 0.5)
    assert siegmund_arl(h, 0.5) == pytest.approx(200.0, rel=1e-6)
    rng = np.random.default_rng(5)
    n, steps = 4000, 1200
    s = np.zeros(n)
    first = np.full(n, steps)
    for t in range(steps):
        s = np.maximum(0, s + rng.standard_normal(n) - 0.5)
        newly = (s > h) & (first == steps)
        first[newly] = t + 1
    assert 150 <= np.mean(first) <= 250


def test_cusum_accumulates_a_sustained_shift() -> None:
    shifted = np.r_[np.zeros(5), np.full(5, 1.5)][None, :]
    assert cusum(shifted, 0.5)[0] == pytest.approx(5.0)
    with pytest.raises(InputError):
        cusum_threshold(0.5)
