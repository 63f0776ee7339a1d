"""Temporal analysis: zero-filled series, STL, hour × weekday and month × year respecting precision."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest

from crimelens.analysis import TimePrecisionError, count_incidents, hour_weekday, month_year, time_series


def test_daily_series_is_zero_filled_and_sums_to_the_count(city: Callable[..., pd.DataFrame]) -> None:
    df = city(0, background=300, days=90)
    df = df[~df["occurred_at"].dt.day.isin([5, 6])]  # days without incidents must still appear
    res = time_series(count_incidents(df, ["day", "time_precision"]), "day")
    s = res.series
    assert s.sum() == len(df)
    assert (s.index.to_series().diff().dropna() == pd.Timedelta(days=1)).all()
    assert (s[s.index.day.isin([5, 6])] == 0).all()


def test_weekly_series_starts_on_monday_and_drops_partial_weeks() -> None:
    days = pd.date_range("2024-01-03", "2024-03-20")  # a Wednesday to a Wednesday
    counts = pd.DataFrame({"day": days, "count": 1, "time_precision": "minute"})
    res = time_series(counts, "week")
    assert (res.series.index.day_of_week == 0).all()
    assert (res.series == 7).all()  # every reported week is complete
    assert res.parameters["partial_periods_left_out"] == 2
    keep = time_series(counts, "week", complete_periods=False)
    assert keep.series.sum() == len(days)


def test_stl_recovers_a_weekly_cycle() -> None:
    rng = np.random.default_rng(0)
    days = pd.date_range("2023-01-02", periods=7 * 30)
    weekend = np.isin(days.day_of_week, [5, 6])
    counts = pd.DataFrame({"day": days, "count": rng.poisson(np.where(weekend, 30, 10))})
    res = time_series(counts, "day", stl=True)
    seasonal = res.components["seasonal"]  # type: ignore[index]
    assert seasonal[weekend].mean() - seasonal[~weekend].mean() == pytest.approx(20, abs=3)
    np.testing.assert_allclose(res.components.sum(axis=1), res.series, atol=1e-8)  # type: ignore[union-attr]


def test_hour_weekday_matches_a_direct_count(city: Callable[..., pd.DataFrame]) -> None:
    df = city(1, background=2000, days=60)
    res = hour_weekday(count_incidents(df, ["hour", "weekday", "time_precision"]))
    t = res.table
    assert t.shape == (7, 24) and next(iter(t.index)) == "Monday"
    monday_9 = ((df["occurred_at"].dt.day_of_week == 0) & (df["occurred_at"].dt.hour == 9)).sum()
    assert t.loc["Monday", 9] == monday_9
    assert t.to_numpy().sum() == len(df)


def test_month_only_data_gives_no_hour_chart_but_a_month_chart(city: Callable[..., pd.DataFrame]) -> None:
    df = city(2, background=500, days=400)
    df["occurred_at"] = df["occurred_at"].dt.tz_localize(None).dt.to_period("M").dt.start_time.dt.tz_localize("UTC")
    df["time_precision"] = "month"
    with pytest.raises(TimePrecisionError, match="hour"):
        hour_weekday(count_incidents(df, ["hour", "weekday", "time_precision"]))
    with pytest.raises(TimePrecisionError):
        time_series(count_incidents(df, ["day", "time_precision"]), "week")
    monthly = time_series(count_incidents(df, ["day", "time_precision"]), "month")
    assert monthly.series.sum() == len(df)
    my = month_year(count_incidents(df, ["month", "time_precision"]))
    assert my.table.to_numpy().sum() == len(df)
    assert list(my.table.columns)[:2] == ["Jan", "Feb"]


def test_mixed_precision_drops_and_reports_the_coarse_rows(city: Callable[..., pd.DataFrame]) -> None:
    df = city(3, background=400, days=60)
    df.loc[df.index[:50], "time_precision"] = "day"
    res = hour_weekday(count_incidents(df, ["hour", "weekday", "time_precision"]))
    assert res.excluded == 50
    assert res.table.to_numpy().sum() == len(df) - 50
