"""Fixtures for the classifier tests: a synthetic incident table with a known signal, and a
small canonical loader of the Toronto MCI extract (until the store's ingest is used)."""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd
import pytest

from tests.conftest import SHARED

TORONTO = SHARED / "toronto_mci" / "toronto_mci_2014_2021.csv"

TORONTO_CATEGORIES = {
    "Assault": "assault",
    "Break and Enter": "burglary",
    "Auto Theft": "vehicle_theft",
    "Robbery": "robbery",
    "Theft Over": "theft",
}


def canonical_frame(
    occurred_at: pd.Series | pd.DatetimeIndex,
    category: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    *,
    premises: np.ndarray | None = None,
    neighbourhood: np.ndarray | None = None,
    source: str = "test",
    time_precision: str = "hour",
) -> pd.DataFrame:
    """A canonical incident frame with the columns the classifier reads (others left empty)."""
    from crimelens.schema import INCIDENT_COLUMNS
    from crimelens.taxonomy import BY_NAME

    n = len(category)
    occ = pd.to_datetime(pd.Series(np.asarray(occurred_at)), utc=True)
    ids = [hashlib.sha1(f"{i}".encode()).hexdigest()[:16] for i in range(n)]
    frame = pd.DataFrame({
        "source": source,
        "incident_id": ids,
        "occurred_at": occ,
        "time_precision": time_precision,
        "offense": category,
        "category": category,
        "category_group": [BY_NAME[c].group for c in category],
        "category_precision": [BY_NAME[c].precision for c in category],
        "crimes_against": [BY_NAME[c].crimes_against for c in category],
        "ucr_part1": [BY_NAME[c].ucr_part1 for c in category],
        "lat": lat,
        "lon": lon,
        "location_precision": np.where(np.isfinite(lat), "block", "none"),
        "premises": premises,
        "neighbourhood": neighbourhood,
        "discovery": "reported",
        "has_narrative": False,
        "batch_id": "b0",
        "ingested_at": pd.Timestamp("2024-01-01", tz="UTC"),
        "row_hash": ids,
    })
    for col in INCIDENT_COLUMNS:
        if col not in frame:
            frame[col] = pd.Series([None] * n, dtype="object")
    for col in ("occurred_until", "reported_at"):
        frame[col] = pd.Series(pd.NaT, index=frame.index, dtype="datetime64[us, UTC]")
    return frame


def load_toronto(nrows: int | None = None) -> pd.DataFrame:
    """Toronto MCI rows as canonical incidents (local date + local hour → UTC)."""
    raw = pd.read_csv(TORONTO, nrows=nrows)
    day = pd.to_datetime(raw["occurrencedate"].str[:10], format="%Y/%m/%d")
    local = day + pd.to_timedelta(raw["occurrencehour"], unit="h")
    occ = local.dt.tz_localize("America/Toronto", ambiguous="NaT", nonexistent="shift_forward")
    ok = occ.notna()
    raw, occ = raw[ok], occ[ok]
    return canonical_frame(
        occ.dt.tz_convert("UTC"),
        raw["MCI"].map(TORONTO_CATEGORIES).to_numpy(),
        raw["Lat"].to_numpy(float),
        raw["Long"].to_numpy(float),
        premises=raw["premises_type"].to_numpy(),
        neighbourhood=raw["Neighbourhood"].to_numpy(),
        source="toronto_mci",
    )


def synthetic_incidents(n: int = 4000, seed: int = 0) -> pd.DataFrame:
    """Incidents whose category depends on hour, premises and a place-specific mix.

    Fifty "places" each have their own category distribution; the hour and premises shift it
    further. A model that learns time, premises and place context beats the class prior.
    """
    rng = np.random.default_rng(seed)
    cats = np.array(["assault", "burglary", "vehicle_theft", "robbery"])
    n_places = 50
    place_xy = rng.uniform([-79.5, 43.6], [-79.3, 43.8], size=(n_places, 2))
    place_mix = rng.dirichlet(np.full(len(cats), 0.4), size=n_places)
    place = rng.integers(0, n_places, n)
    start = pd.Timestamp("2020-01-01", tz="UTC")
    t = start + pd.to_timedelta(np.sort(rng.uniform(0, 730, n)), unit="D")
    hour = t.hour.to_numpy()
    premises = rng.choice(np.array(["house", "outside", "commercial"]), n)
    logits = np.log(place_mix[place] + 1e-3)
    logits[:, 0] += 1.2 * ((hour >= 21) | (hour <= 3))  # assault at night
    logits[:, 1] += 1.5 * (premises == "house")  # burglary at houses
    logits[:, 2] += 1.0 * (premises == "outside")
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    y = np.array([rng.choice(len(cats), p=row) for row in p])
    jitter = rng.normal(0, 2e-4, size=(n, 2))
    xy = place_xy[place] + jitter * (rng.random((n, 1)) < 0.3)
    return canonical_frame(
        t, cats[y], xy[:, 1], xy[:, 0], premises=premises,
        neighbourhood=np.array([f"n{k % 10}" for k in place]),
    )


@pytest.fixture(scope="session")
def synth() -> pd.DataFrame:
    """A seeded synthetic incident table with learnable signal."""
    return synthetic_incidents()


@pytest.fixture(scope="session")
def toronto_sample() -> pd.DataFrame:
    """The first 40,000 Toronto MCI rows as canonical incidents (skips without shared data)."""
    if not TORONTO.exists():
        pytest.skip("shared datasets absent (../shared/datasets)")
    return load_toronto(nrows=40_000)
