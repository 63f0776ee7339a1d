"""CompStat on a constructed case: windows Monday-Sunday, same period last year, exact tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from crimelens.analysis import compstat, compstat_windows
from crimelens.analysis.compstat import change_test


def test_windows_end_on_sunday_and_compare_like_with_like() -> None:
    w = compstat_windows("2024-03-13")  # a Wednesday
    assert w["7d"].end == pd.Timestamp("2024-03-10") and w["7d"].end.weekday() == 6
    assert w["7d"].start.weekday() == 0
    assert w["28d"].start == pd.Timestamp("2024-02-12")
    for name in ("7d", "28d"):
        assert (w[name].end - w[name].ly_end).days == 364
        assert w[name].ly_start.weekday() == w[name].start.weekday()
    assert w["ytd"].start == pd.Timestamp("2024-01-01") and w["ytd"].ly_start == pd.Timestamp("2023-01-01")
    assert w["ytd"].ly_end == pd.Timestamp("2023-03-10")
    leap = compstat_windows("2024-03-03")  # Sunday; YTD spans 29 February
    assert leap["ytd"].days == (63, 62)
    assert compstat_windows("2024-03-10")["7d"].end == pd.Timestamp("2024-03-10")


def _daily(day: str, n: int, cat: str, area: str = "north") -> list[dict[str, object]]:
    return [{"day": pd.Timestamp(day), "category": cat, "district": area, "count": n, "time_precision": "minute"}]


def test_constructed_case() -> None:
    rows = []
    rows += _daily("2024-03-05", 6, "burglary")  # in the week of 4-10 March 2024
    rows += _daily("2023-03-07", 2, "burglary")  # same weekday window a year earlier (6-12 March 2023)
    rows += _daily("2024-02-20", 10, "burglary")  # in the 28 days, not in the week
    rows += _daily("2023-02-21", 3, "burglary")
    rows += _daily("2024-01-15", 5, "robbery")  # year to date only
    rows += _daily("2023-01-16", 5, "robbery")
    rows += _daily("2023-06-01", 40, "robbery")  # outside every window
    rows += _daily("2024-03-12", 99, "robbery")  # after the report week: not counted
    res = compstat(pd.DataFrame(rows), as_of="2024-03-13")
    t = res.table
    assert t.loc["burglary", "7d_current"] == 6 and t.loc["burglary", "7d_last_year"] == 2
    assert t.loc["burglary", "7d_diff"] == 4 and t.loc["burglary", "7d_pct_change"] == pytest.approx(200.0)
    assert t.loc["burglary", "28d_current"] == 16 and t.loc["burglary", "28d_last_year"] == 5
    assert t.loc["robbery", "7d_current"] == 0 and t.loc["robbery", "ytd_current"] == 5
    assert t.loc["robbery", "ytd_last_year"] == 5 and t.loc["robbery", "ytd_pct_change"] == 0
    assert t.loc["Total", "ytd_current"] == 21 and t.loc["Total", "ytd_last_year"] == 10
    assert np.isnan(t.loc["robbery", "7d_pct_change"])  # 0 -> 0: no percentage
    # the exact test: 6 vs 2 in equal weeks is Binomial(8, 1/2)
    assert t.loc["burglary", "7d_p"] == pytest.approx(stats.binomtest(6, 8, 0.5).pvalue)
    assert t.loc["burglary", "7d_z"] == pytest.approx(4 / np.sqrt(8))


def test_small_counts_are_not_significant_but_large_changes_are() -> None:
    assert change_test(4, 2, 7, 7)[1] > 0.5  # "+100%" on tiny counts means little
    assert change_test(400, 200, 7, 7)[1] < 1e-10
    z, p = change_test(0, 0, 7, 7)
    assert (z, p) == (0.0, 1.0)
    # unequal exposure (leap-year YTD) changes the null proportion
    assert change_test(63, 62, 63, 62)[1] == pytest.approx(1.0, abs=1e-9)


def test_per_area_tables_and_imprecise_rows() -> None:
    rows = _daily("2024-03-05", 6, "burglary", "north") + _daily("2024-03-06", 1, "burglary", "south")
    rows += [
        {
            "day": pd.Timestamp("2024-03-01"),
            "category": "burglary",
            "district": "north",
            "count": 50,
            "time_precision": "month",
        }
    ]
    res = compstat(pd.DataFrame(rows), as_of="2024-03-10", by=("district", "category"))
    t = res.table
    assert t.loc[("north", "burglary"), "7d_current"] == 6
    assert t.loc[("north", "Total"), "7d_current"] == 6 and t.loc[("south", "Total"), "7d_current"] == 1
    assert res.parameters["excluded_imprecise"] == 50


@pytest.mark.parametrize(("days_now", "days_then"), [(7, 7), (28, 28), (63, 62), (5, 9)])
def test_change_tests_on_arrays_give_scipys_binomtest_row_by_row(days_now: int, days_then: int) -> None:
    from crimelens.analysis.compstat import change_tests

    rng = np.random.default_rng(days_now * 100 + days_then)
    cur = np.concatenate([rng.integers(0, 30, 150), rng.integers(0, 5000, 60), [0, 0, 4, 1]]).astype(float)
    last = np.concatenate([rng.integers(0, 30, 150), rng.integers(0, 5000, 60), [0, 3, 0, 1]]).astype(float)
    z, p = change_tests(cur, last, days_now, days_then)
    for a, b, zz, pp in zip(cur, last, z, p, strict=True):
        n = round(a + b)
        want_p = 1.0 if n == 0 else stats.binomtest(round(a), n, days_now / (days_now + days_then)).pvalue
        assert pp == pytest.approx(want_p, rel=1e-12, abs=1e-300)
        assert zz == (0.0 if n == 0 else pytest.approx((a - b) / np.sqrt(a + b)))
