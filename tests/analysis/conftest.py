"""Small seeded canonical incident frames with planted structure, for the analysis tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import pytest

from crimelens.geo.crs import to_wgs84
from crimelens.geo.h3cells import h3_columns
from crimelens.schema import INCIDENT_COLUMNS, empty_incidents
from crimelens.taxonomy import BY_NAME

CRS = "EPSG:32617"  # UTM 17N (Toronto)
X0, Y0 = 620_000.0, 4_830_000.0
START = pd.Timestamp("2023-01-01", tz="UTC")


@dataclass(frozen=True)
class Cluster:
    """A planted cluster: centre offset (metres from the origin), spread and size."""

    x: float
    y: float
    sigma: float
    n: int


def canonical(
    x: np.ndarray,
    y: np.ndarray,
    t: pd.DatetimeIndex | pd.Series,
    *,
    categories: Sequence[str] | None = None,
    precision: str = "minute",
    source: str = "test",
) -> pd.DataFrame:
    """A valid canonical incident frame from coordinates (metres, local CRS) and times."""
    n = len(x)
    df = empty_incidents().reindex(range(n))
    lon, lat = to_wgs84(np.asarray(x, float), np.asarray(y, float), CRS)
    cats = list(categories) if categories is not None else ["burglary"] * n
    df["source"] = source
    df["incident_id"] = [f"i{i}" for i in range(n)]
    ts = pd.DatetimeIndex(t)
    df["occurred_at"] = ts.tz_localize("UTC") if ts.tz is None else ts.tz_convert("UTC")
    df["time_precision"] = precision
    df["category"] = cats
    df["category_group"] = [BY_NAME[c].group for c in cats]
    df["category_precision"] = [BY_NAME[c].precision for c in cats]
    df["crimes_against"] = [BY_NAME[c].crimes_against for c in cats]
    df["ucr_part1"] = [BY_NAME[c].ucr_part1 for c in cats]
    df["lat"], df["lon"] = lat, lon
    df["x"], df["y"] = np.asarray(x, float), np.asarray(y, float)
    for res, cells in h3_columns(np.asarray(lat), np.asarray(lon)).items():
        df[f"h3_{res}"] = cells.to_numpy()
    df["crs"] = CRS
    df["location_precision"] = "exact"
    df["discovery"] = "reported"
    df["has_narrative"] = False
    df["batch_id"] = "b0"
    df["ingested_at"] = pd.Timestamp("2024-06-01", tz="UTC")
    df["row_hash"] = np.arange(n, dtype=np.int64)
    return df[list(INCIDENT_COLUMNS)]


def make_points(
    rng: np.random.Generator,
    *,
    size: float = 5000.0,
    background: int = 2000,
    clusters: Sequence[Cluster] = (),
) -> tuple[np.ndarray, np.ndarray]:
    """Uniform background over a ``size`` × ``size`` square plus Gaussian clusters (clipped inside)."""
    xs = [rng.uniform(0, size, background)]
    ys = [rng.uniform(0, size, background)]
    for c in clusters:
        xs.append(rng.normal(c.x, c.sigma, c.n))
        ys.append(rng.normal(c.y, c.sigma, c.n))
    x = np.clip(np.concatenate(xs), 0, size - 1e-6)
    y = np.clip(np.concatenate(ys), 0, size - 1e-6)
    return X0 + x, Y0 + y


@pytest.fixture
def city() -> Callable[..., pd.DataFrame]:
    """Factory: ``city(seed, background=..., clusters=..., days=...)`` -> canonical frame."""

    def make(
        seed: int = 0,
        *,
        size: float = 5000.0,
        background: int = 2000,
        clusters: Sequence[Cluster] = (),
        days: int = 365,
    ) -> pd.DataFrame:
        rng = np.random.default_rng(seed)
        x, y = make_points(rng, size=size, background=background, clusters=clusters)
        t = START + pd.to_timedelta(rng.uniform(0, days * 86400, len(x)), unit="s")
        return canonical(x, y, pd.DatetimeIndex(t).floor("min"))

    return make


@pytest.fixture(scope="session")
def realistic_city() -> Any:
    """A seeded realistic synthetic city (hot spots, contagion) with its ground truth."""
    synth = pytest.importorskip("crimelens.synth")
    return synth.generate_city(synth.CityConfig(n_incidents=30_000, days=365, seed=2))


@pytest.fixture(scope="session")
def poisson_city() -> Any:
    """A homogeneous Poisson city: no hot spots, no seasonality, no contagion."""
    synth = pytest.importorskip("crimelens.synth")
    return synth.generate_city(synth.CityConfig(n_incidents=60_000, days=365, seed=7, kind="poisson"))
