"""Seeded synthetic count panels and canonical frames with a known base rate, for the alert tests.

A stand-in until :mod:`crimelens.synth` offers ``generate_city``: areas × categories with
heterogeneous weekly rates, a day-of-week profile, annual seasonality and optional overdispersion
(a gamma-distributed multiplier per series and day), so the true daily rate of every series is
known and spikes can be planted on top of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pytest

from crimelens.alerts.panel import CountPanel
from crimelens.schema import INCIDENT_COLUMNS, empty_incidents
from crimelens.taxonomy import BY_NAME

CATEGORIES = ("theft", "burglary", "simple_assault", "robbery", "vehicle_theft", "criminal_damage",
              "drugs", "homicide")
START = pd.Timestamp("2022-01-03", tz="UTC")  # a Monday
WEEKDAY = np.array([0.95, 0.95, 0.95, 1.0, 1.1, 1.1, 0.95])


@dataclass(frozen=True)
class SimCity:
    """A simulated panel and the true daily rate of each series."""

    panel: CountPanel
    rate: np.ndarray  # (series, days) true mean per day (before overdispersion)


def simulate(seed: int, *, n_areas: int = 25, days: int = 546, categories: tuple[str, ...] = CATEGORIES,
             season_amp: float = 0.2, dispersion_shape: float | None = None,
             weekly_mean: tuple[float, float] = (0.3, 25.0)) -> SimCity:
    """Counts from Poisson (or gamma-Poisson when ``dispersion_shape`` is given) series."""
    rng = np.random.default_rng(seed)
    keys = pd.DataFrame([(f"{a + 1:03d}", c) for a in range(n_areas) for c in categories],
                        columns=["area", "category"])
    lo, hi = np.log(weekly_mean[0]), np.log(weekly_mean[1])
    weekly = np.exp(rng.uniform(lo, hi, len(keys)))
    t = np.arange(days)
    dates = START + pd.to_timedelta(t, unit="D")
    season = 1 + season_amp * np.sin(2 * np.pi * (dates.day_of_year.to_numpy() - 80) / 365.25)
    dow = WEEKDAY[dates.day_of_week.to_numpy()] / WEEKDAY.mean()
    rate = (weekly[:, None] / 7.0) * season[None, :] * dow[None, :]
    lam = rate
    if dispersion_shape is not None:
        lam = rate * rng.gamma(dispersion_shape, 1 / dispersion_shape, rate.shape)
    counts = rng.poisson(lam).astype(np.int64)
    return SimCity(CountPanel(keys, START, counts, area_level="district"), rate)


def incidents_from_panel(panel: CountPanel, seed: int = 0) -> pd.DataFrame:
    """A valid canonical frame with exactly the panel's counts (random times within each day)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.nonzero(panel.counts)
    reps = panel.counts[rows, cols]
    r = np.repeat(rows, reps)
    c = np.repeat(cols, reps)
    n = len(r)
    df = empty_incidents().reindex(range(n))
    cats = panel.keys["category"].to_numpy()[r]
    df["source"] = "sim"
    df["incident_id"] = [f"s{i}" for i in range(n)]
    df["occurred_at"] = panel.start_at + pd.to_timedelta(c, unit="D") + pd.to_timedelta(
        rng.integers(0, 86_400, n), unit="s")
    df["time_precision"] = "minute"
    df["category"] = cats
    df["category_group"] = [BY_NAME[x].group for x in cats]
    df["category_precision"] = [BY_NAME[x].precision for x in cats]
    df["crimes_against"] = [BY_NAME[x].crimes_against for x in cats]
    df["ucr_part1"] = [BY_NAME[x].ucr_part1 for x in cats]
    df["district"] = panel.keys["area"].to_numpy()[r]
    x = 440_000.0 + rng.uniform(0, 5000, n)
    y = 4_630_000.0 + rng.uniform(0, 5000, n)
    df["x"], df["y"], df["crs"] = x, y, "EPSG:32616"
    df["lat"], df["lon"] = 41.8 + (y - 4_630_000.0) / 111_000, -87.7 + (x - 440_000.0) / 83_000
    df["location_precision"] = "exact"
    df["discovery"] = "reported"
    df["has_narrative"] = False
    df["batch_id"] = "b0"
    df["ingested_at"] = pd.Timestamp("2024-01-01", tz="UTC")
    df["row_hash"] = np.arange(n, dtype=np.int64)
    return df[list(INCIDENT_COLUMNS)].sort_values("occurred_at", ignore_index=True)


@pytest.fixture(scope="session")
def null_city() -> SimCity:
    """No spikes: Poisson series with seasonality, 25 areas × 8 categories, 78 weeks."""
    return simulate(11)


@pytest.fixture(scope="session")
def overdispersed_city() -> SimCity:
    """No spikes, but clustered days (gamma-Poisson, shape 2): a realistic null."""
    return simulate(12, dispersion_shape=2.0)
