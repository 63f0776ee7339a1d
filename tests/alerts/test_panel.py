"""Count panels: built from incidents or store counts alike, grown in place on arrival."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from crimelens.alerts.panel import CountPanel
from crimelens.exceptions import InputError

from .conftest import incidents_from_panel, simulate


def test_incidents_and_counts_give_the_same_panel() -> None:
    city = simulate(1, n_areas=3, days=60)
    frame = incidents_from_panel(city.panel)
    a = CountPanel.from_incidents(frame, area_level="district", start=city.panel.start, end=city.panel.end)
    counts = frame.assign(day=frame["occurred_at"].dt.floor("D")).groupby(
        ["district", "category", "day", "time_precision"]).size().rename("count").reset_index()
    b = CountPanel.from_counts(counts, area_level="district", start=city.panel.start, end=city.panel.end)
    for p in (a, b):
        for i, (area, cat) in enumerate(zip(p.keys["area"], p.keys["category"], strict=True)):
            j = city.panel.series_index(area, cat)
            assert j is not None
            assert np.array_equal(p.counts[i], city.panel.counts[j])
    assert a.counts.sum() == len(frame)


def test_coarse_times_and_missing_areas_are_left_out_and_counted() -> None:
    city = simulate(2, n_areas=2, days=30)
    frame = incidents_from_panel(city.panel)
    frame.loc[frame.index[:5], "time_precision"] = "month"
    frame.loc[frame.index[5:8], "district"] = None
    p = CountPanel.from_incidents(frame, area_level="district")
    assert p.counts.sum() == len(frame) - 8
    assert p.dropped == 8
    city_wide = CountPanel.from_incidents(frame, area_level="city")
    assert set(city_wide.keys["area"]) == {"all"}
    assert city_wide.counts.sum() == len(frame) - 5


def test_add_incidents_grows_rows_and_days_in_place() -> None:
    city = simulate(3, n_areas=2, days=40)
    frame = incidents_from_panel(city.panel)
    cut = city.panel.day_at(30)
    p = CountPanel.from_incidents(frame[frame["occurred_at"] < cut], area_level="district",
                                  start=city.panel.start, end=cut)
    late = frame[frame["occurred_at"] >= cut].copy()
    late.loc[late.index[0], "district"] = "999"  # a new area
    rows = p.add_incidents(late)
    assert p.n_days == city.panel.n_days
    assert p.series_index("999", late.iloc[0]["category"]) is not None
    assert p.counts.sum() == len(frame)
    assert len(rows) == len(set(zip(late["district"], late["category"], strict=True)))


def test_unknown_level_is_an_input_error() -> None:
    with pytest.raises(InputError):
        CountPanel.from_incidents(pd.DataFrame(), area_level="galaxy")


def test_days_are_local_calendar_days_of_the_panel_time_zone() -> None:
    """A 23:30 incident in Chicago counts on its local day; windows start at local midnight."""
    from crimelens.alerts import SpikeDetector

    city = simulate(4, n_areas=1, days=120)
    frame = incidents_from_panel(city.panel)
    late = frame.iloc[[0]].copy()
    late["occurred_at"] = pd.Timestamp("2022-03-01 23:30", tz="America/Chicago").tz_convert("UTC")
    late["incident_id"] = "late"
    both = pd.concat([frame, late], ignore_index=True)
    utc_panel = CountPanel.from_incidents(both, area_level="district")
    local = CountPanel.from_incidents(both, area_level="district", tz="America/Chicago")
    row = local.series_index(late.iloc[0]["district"], late.iloc[0]["category"])
    assert row is not None
    assert local.day_index(late.iloc[0]["occurred_at"]) == local.day_index(pd.Timestamp("2022-03-01"))
    assert utc_panel.day_index(late.iloc[0]["occurred_at"]) == utc_panel.day_index(pd.Timestamp("2022-03-02"))
    assert local.day_at(10).tz_convert("America/Chicago").hour == 0
    # across the spring DST change the days stay calendar days
    assert local.day_index(pd.Timestamp("2022-03-14 00:30", tz="America/Chicago")) - local.day_index(
        pd.Timestamp("2022-03-12 23:30", tz="America/Chicago")) == 2
    res = SpikeDetector(stl_score=False).scan(local)
    assert (res.tests["window_start"].iloc[0].tz_convert("America/Chicago").hour,
            res.tests["window_end"].iloc[0].tz_convert("America/Chicago").hour) == (0, 0)
