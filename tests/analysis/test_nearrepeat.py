"""Knox / near-repeat: detects planted contagion, stays near alpha on Poisson data, labels like the
Near Repeat Calculator."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis import KnoxTest
from crimelens.analysis.nearrepeat import spatial_labels, temporal_labels
from crimelens.exceptions import InputError

from .conftest import START


def test_labels_follow_the_near_repeat_calculator() -> None:
    assert spatial_labels(100, 3) == ["Same location", "1 to 100", "101 to 200", "201 to 300", "More than 300"]
    assert temporal_labels(14, 3) == ["0 to 14 days", "15 to 28 days", "29 to 42 days", "More than 42 days"]


def _points(rng: np.random.Generator, n: int, contagion: int = 0) -> pd.DataFrame:
    x, y = rng.uniform(0, 10_000, n), rng.uniform(0, 10_000, n)
    d = rng.integers(0, 365, n)
    if contagion:
        parent = rng.integers(0, n, contagion)
        x = np.concatenate([x, x[parent] + rng.normal(0, 60, contagion)])
        y = np.concatenate([y, y[parent] + rng.normal(0, 60, contagion)])
        d = np.concatenate([d, d[parent] + rng.integers(1, 10, contagion)])
    t = START + pd.to_timedelta(d, unit="D") + pd.to_timedelta(rng.integers(0, 1440, len(d)), unit="min")
    return pd.DataFrame({"x": x, "y": y, "occurred_at": t, "time_precision": "minute"})


def test_tables_account_for_every_pair() -> None:
    df = _points(np.random.default_rng(0), 800, contagion=80)
    res = KnoxTest(n_permutations=49, random_state=0).fit(df).result_
    n = len(df)
    assert res.observed.to_numpy().sum() == n * (n - 1) / 2
    assert res.expected.to_numpy().sum() == pytest.approx(n * (n - 1) / 2)
    # the permutation keeps the number of pairs per time band (columns) exactly
    np.testing.assert_allclose(res.observed.sum(axis=0), res.expected.sum(axis=0))
    assert list(res.ratio.index) == spatial_labels(100, 5)
    assert list(res.ratio.columns) == temporal_labels(14, 5)
    assert ((res.p > 0) & (res.p <= 1)).all().all()
    long = res.to_frame()
    assert len(long) == 7 * 6 and {"distance", "time", "ratio", "p"} <= set(long.columns)


def test_planted_contagion_is_detected(realistic_city: Any) -> None:
    inc = realistic_city.incidents
    assert realistic_city.truth.contagion["branching_ratio"] > 0
    burglary = inc[inc["category"] == "burglary"]
    knox = KnoxTest(n_permutations=199, random_state=0).fit(burglary)
    assert knox.p_ < 0.01
    res = knox.result_
    assert res.ratio.iloc[1, 0] > 1.5  # 1-100 m, 0-14 days: well above expectation


def test_false_positive_rate_on_poisson_cities_is_near_alpha(poisson_city: Any) -> None:
    """Independent thinnings of a Poisson city are independent Poisson cities (one per seed)."""
    inc = poisson_city.incidents
    rng = np.random.default_rng(11)
    part = rng.integers(0, 30, len(inc))
    rejections = sum(KnoxTest(n_permutations=99, random_state=s).fit(inc[part == s]).p_ <= 0.05 for s in range(30))
    # Binomial(30, 0.05): P(X >= 6) ≈ 0.008
    assert rejections <= 5


def test_imprecise_times_are_left_out() -> None:
    df = _points(np.random.default_rng(2), 300)
    df.loc[:99, "time_precision"] = "month"
    res = KnoxTest(n_permutations=9, random_state=0).fit(df).result_
    assert res.parameters["excluded_imprecise"] == 100
    assert res.observed.to_numpy().sum() == 200 * 199 / 2
    with pytest.raises(InputError):
        KnoxTest().fit(df[["x", "y"]])
