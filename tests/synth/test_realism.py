"""The planted structure is really in the data: seasonality, hot spots, drift, contagion, homogeneity.

Every test compares the data with what the ground truth or the configuration says, or a
realistic city with a homogeneous Poisson one; none compares with a stored answer.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import cKDTree

from crimelens.synth import CityConfig, RecordingBias, SyntheticCity, generate_city
from tests.synth.conftest import cell_counts, local_times


def _hour_share(frame: pd.DataFrame, category: str, lo: int, hi: int) -> float:
    h = local_times(frame[frame["category"] == category]).dt.hour
    return float(h.between(lo, hi).mean())


def _weekend_share(frame: pd.DataFrame, category: str) -> float:
    return float((local_times(frame[frame["category"] == category]).dt.day_of_week >= 4).mean())


def test_hour_of_day_profiles_differ_by_category(city: SyntheticCity) -> None:
    inc = city.incidents
    # burglary is a daytime crime, aggravated assault and robbery night-time ones
    assert _hour_share(inc, "burglary", 8, 17) > _hour_share(inc, "aggravated_assault", 8, 17) + 0.15
    assert _hour_share(inc, "robbery", 8, 17) < 0.4 < _hour_share(inc, "shoplifting", 8, 17)


def test_hour_profile_follows_the_configured_curve(city: SyntheticCity) -> None:
    for cat in ("burglary", "aggravated_assault", "shoplifting"):
        p = city.truth.params["categories"][cat]
        hours = np.arange(24)
        curve = p["hour_floor"] + np.exp(p["hour_kappa"] * np.cos(2 * np.pi * (hours + 0.5 - p["hour_peak"]) / 24))
        seen = np.bincount(local_times(city.incidents[city.incidents["category"] == cat]).dt.hour, minlength=24)
        assert stats.pearsonr(curve, seen)[0] > 0.8, cat


def test_weekly_profiles_differ_by_category(city: SyntheticCity) -> None:
    inc = city.incidents
    assert _weekend_share(inc, "aggravated_assault") > _weekend_share(inc, "burglary") + 0.05
    days = local_times(inc[inc["category"] == "drugs"]).dt.day_of_week.value_counts()
    assert days[1] > days[6]  # police-initiated drug arrests: weekdays


def test_annual_cycle_in_violence_but_not_in_poisson(city: SyntheticCity, poisson_city: SyntheticCity) -> None:
    def summer_over_winter(frame: pd.DataFrame) -> float:
        m = local_times(frame).dt.month
        return float(m.isin([6, 7, 8]).sum() / m.isin([12, 1, 2]).sum())

    violent = city.incidents[city.incidents["category"].isin(["aggravated_assault", "simple_assault", "robbery"])]
    assert summer_over_winter(violent) > 1.2
    assert 0.9 < summer_over_winter(poisson_city.incidents) < 1.12


def test_poisson_city_is_homogeneous_in_space_and_time(poisson_city: SyntheticCity) -> None:
    counts = cell_counts(poisson_city)
    expected = poisson_city.truth.expected("all").groupby("cell_id")["expected"].sum().to_numpy()
    assert np.ptp(expected) / expected.mean() < 0.01  # the truth itself is flat
    assert stats.chisquare(counts, expected * counts.sum() / expected.sum()).pvalue > 0.001
    hours = np.bincount(local_times(poisson_city.incidents).dt.hour, minlength=24)
    assert stats.chisquare(hours).pvalue > 0.001


def test_realistic_city_is_not_homogeneous(city: SyntheticCity) -> None:
    counts = cell_counts(city)
    assert stats.chisquare(counts).pvalue < 1e-12


def test_hotspot_cells_have_clearly_more_incidents(city: SyntheticCity) -> None:
    inc = city.incidents
    hot = city.truth.hotspot_cells
    static = hot[hot["kind"].isin(["persistent", "street"])]
    assert set(static["kind"]) == {"persistent", "street"}
    for cat, rows in static.groupby("category"):
        counts = cell_counts(city, inc[inc["category"] == cat])
        if counts.sum() < 300:
            continue
        assert counts[rows["cell_id"].unique()].mean() > 3 * counts.mean(), cat


def test_truth_intensity_matches_the_data(city: SyntheticCity) -> None:
    truth = city.truth.expected("all")
    assert abs(truth["expected"].sum() / len(city.incidents) - 1) < 0.03
    by_cell = truth.groupby("cell_id")["expected"].sum().to_numpy()
    assert stats.pearsonr(by_cell, cell_counts(city))[0] > 0.8
    weeks = city.incidents["occurred_at"].dt.tz_convert("UTC").dt.tz_localize(None).dt.to_period("W-SUN")
    seen = weeks.dt.start_time.value_counts()
    want = truth.groupby(truth["week_start"].dt.tz_localize(None))["expected"].sum()
    both = pd.concat([seen, want], axis=1, join="inner").iloc[1:-1]  # partial first and last weeks
    assert stats.pearsonr(both.iloc[:, 0], both.iloc[:, 1])[0] > 0.6
    for cat in ("theft", "burglary", "robbery"):
        n = int((city.incidents["category"] == cat).sum())
        assert abs(city.truth.expected(cat)["expected"].sum() / n - 1) < 0.1, cat


def test_drifting_hotspot_moves(city: SyntheticCity) -> None:
    spots = city.truth.hotspots
    drift = spots[spots["kind"] == "drifting"].iloc[0]
    lin = city.truth.lineage
    mine = (lin["component"] == "hotspot") & (lin["hotspot_id"] == drift["hotspot_id"]).fillna(False)
    ev = city.incidents[mine.to_numpy()]
    early = ev[ev["occurred_at"] < ev["occurred_at"].quantile(0.2)]
    late = ev[ev["occurred_at"] > ev["occurred_at"].quantile(0.8)]
    move = np.array([late["x"].mean() - early["x"].mean(), late["y"].mean() - early["y"].mean()])
    path = np.array([drift["x_end"] - drift["x"], drift["y_end"] - drift["y"]])
    assert np.linalg.norm(move) > 0.5 * np.linalg.norm(path)
    assert move @ path / (np.linalg.norm(move) * np.linalg.norm(path)) > 0.9
    cells = city.truth.hotspot_cells
    d = cells[cells["kind"] == "drifting"]
    assert (d["start"] > d["start"].min()).any() and (d["end"] < d["end"].max()).any()


def _knox_ratio(frame: pd.DataFrame, metres: float = 200.0, days: float = 7.0, shuffles: int = 5) -> float:
    """Pairs close in space and time over the mean of time-shuffled copies (within category)."""
    xy = frame[["x", "y"]].to_numpy()
    t = (frame["occurred_at"] - frame["occurred_at"].min()).dt.total_seconds().to_numpy() / 86_400
    cat = frame["category"].to_numpy()
    pairs = cKDTree(xy).query_pairs(metres, output_type="ndarray")
    same = cat[pairs[:, 0]] == cat[pairs[:, 1]]
    pairs = pairs[same]

    def close(times: np.ndarray) -> int:
        return int((np.abs(times[pairs[:, 0]] - times[pairs[:, 1]]) <= days).sum())

    rng = np.random.default_rng(0)
    shuffled = []
    for _ in range(shuffles):
        tt = t.copy()
        for c in np.unique(cat):
            m = cat == c
            tt[m] = rng.permutation(t[m])
        shuffled.append(close(tt))
    return close(t) / float(np.mean(shuffled))


def test_contagion_is_measurable_in_realistic_not_in_poisson(city: SyntheticCity,
                                                              poisson_city: SyntheticCity) -> None:
    inc = city.incidents
    burglary = _knox_ratio(inc[inc["category"] == "burglary"])
    fraud = _knox_ratio(inc[inc["category"] == "fraud"])
    assert burglary > 1.5
    assert burglary > fraud  # near-repeat strongest for burglary
    assert 0.9 < _knox_ratio(poisson_city.incidents) < 1.1
    c = city.truth.contagion
    assert c["by_category"]["burglary"] == max(c["by_category"].values())
    assert abs(c["offspring_share_recorded"] - c["branching_ratio"]) < 0.05


def test_recording_bias_lowers_recorded_rates_inside_the_region() -> None:
    bias = RecordingBias(dx_m=0.0, dy_m=0.0, radius_m=2_500.0, inside=0.5)
    c = generate_city(CityConfig(n_incidents=20_000, days=120, seed=4, size_m=10_000.0, kind="poisson",
                                 recording_bias=bias))
    cx, cy = c.truth.params["origin"][0] + 5_000.0, c.truth.params["origin"][1] + 5_000.0
    inside = np.hypot(c.incidents["x"] - cx, c.incidents["y"] - cy) < 2_500.0
    area_in = np.pi * 2_500.0**2
    density_ratio = (inside.sum() / area_in) / ((~inside).sum() / (1e8 - area_in))
    assert 0.42 < density_ratio < 0.58
    cov = c.truth.covariates
    central = np.hypot(cov["x"] - cx, cov["y"] - cy) < 2_000.0
    assert np.allclose(cov.loc[central, "recording_prob"], 0.5)
    truth = c.truth.expected("all").groupby("cell_id")["expected"].sum()
    assert abs(truth[central.to_numpy()].sum() / truth[~central.to_numpy()].sum()
               - (cov.loc[central].shape[0] * 0.5) / cov.loc[~central].shape[0]) < 0.01
