"""Small seeded incident tables for the forecasting tests (canonical columns the models read)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.geo.grid import SquareGrid

CRS = "EPSG:32616"
X0, Y0 = 440_000.0, 4_630_000.0
CATS = ("burglary", "robbery", "theft")


def make_incidents(days: int = 420, n_side: int = 24, cell: float = 100.0, seed: int = 0,
                   daily: float = 14.0, start: str = "2020-01-06") -> pd.DataFrame:
    """Incidents on an ``n_side``² block of ``cell``-metre squares: cell rates drawn from a
    Gamma (a few persistent hot cells), plus short near-repeat bursts, daily Poisson counts."""
    rng = np.random.default_rng(seed)
    n = n_side * n_side
    rate = rng.gamma(0.4, 1.0, n)
    rate /= rate.sum()
    t0 = pd.Timestamp(start, tz="UTC")
    per_day = rng.poisson(daily, days)
    day = np.repeat(np.arange(days), per_day)
    cells = rng.choice(n, size=len(day), p=rate)
    # near repeats: a share of incidents spawn one follow-up in the same cell within 10 days
    rep = rng.random(len(day)) < 0.15
    day = np.concatenate([day, day[rep] + rng.integers(1, 10, rep.sum())])
    cells = np.concatenate([cells, cells[rep]])
    keep = day < days
    day, cells = day[keep], cells[keep]
    col, row = cells % n_side, cells // n_side
    x = X0 + (col + rng.random(len(cells))) * cell
    y = Y0 + (row + rng.random(len(cells))) * cell
    when = t0 + pd.to_timedelta(day, unit="D") + pd.to_timedelta(rng.integers(0, 86_400, len(day)), unit="s")
    cat = np.asarray(CATS)[rng.choice(3, size=len(day), p=[0.5, 0.2, 0.3])]
    frame = pd.DataFrame({"occurred_at": when, "x": x, "y": y, "category": cat, "crs": CRS})
    return frame.sort_values("occurred_at", kind="stable").reset_index(drop=True)


@pytest.fixture(scope="session")
def incidents() -> pd.DataFrame:
    """About 6,500 incidents over 420 days on a 24 × 24 grid of 100 m cells."""
    return make_incidents()


@pytest.fixture(scope="session")
def grid() -> SquareGrid:
    """The 100 m grid the fixture incidents fall on."""
    return SquareGrid(X0, Y0, 100.0, 24, 24, CRS)


@pytest.fixture(scope="session")
def origin() -> pd.Timestamp:
    """A forecast origin well inside the fixture's period (a Monday)."""
    return pd.Timestamp("2021-01-04", tz="UTC")


@pytest.fixture(scope="session")
def incident_factory():  # type: ignore[no-untyped-def]
    """:func:`make_incidents`, for tests that need another seed or size."""
    return make_incidents


def ingest_toronto_format(frame: pd.DataFrame, root: Path, shift: bool = True) -> str:
    """Ingest canonical incidents (EPSG:32616 fixture layout, or already in UTM 17N when not
    ``shift``) through the real CLI as a Toronto-format file in UTM 17N; returns the store path."""
    from typer.testing import CliRunner

    from crimelens.cli.app import app
    from crimelens.geo.crs import to_wgs84

    x = frame["x"].to_numpy() + (628_000.0 - X0 if shift else 0.0)
    y = frame["y"].to_numpy() + (4_838_000.0 - Y0 if shift else 0.0)
    lon, lat = to_wgs84(x, y, "EPSG:32617")
    local = pd.DatetimeIndex(frame["occurred_at"]).tz_convert("America/Toronto")
    mci = {"burglary": "Break and Enter", "robbery": "Robbery", "theft": "Theft Over"}
    src = root / "toronto.csv"
    pd.DataFrame({"occurrencedate": local.strftime("%Y/%m/%d") + " 05:00:00+00", "occurrencehour": local.hour,
                  "premises_type": "House", "MCI": frame["category"].map(mci), "Neighbourhood": "N1",
                  "Lat": np.round(lat, 7), "Long": np.round(lon, 7)}).to_csv(src, index=False)
    db = str(root / "store.duckdb")
    res = CliRunner().invoke(app, ["ingest", str(src), "--preset", "toronto_mci", "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    return db


@pytest.fixture(scope="session")
def toronto_store():  # type: ignore[no-untyped-def]
    """:func:`ingest_toronto_format`, for tests that need incidents in a real store."""
    return ingest_toronto_format
