"""Risk surfaces rank the same way in every export."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast import RiskSurface, make
from crimelens.geo.grid import SquareGrid


def _surface(score: np.ndarray, area: np.ndarray | None = None) -> RiskSurface:
    grid = SquareGrid(440_000.0, 4_630_000.0, 100.0, 3, 2, "EPSG:32616")
    t = pd.Timestamp("2021-01-04", tz="UTC")
    return RiskSurface(grid, score, t, t + pd.Timedelta(days=7), "test", {}, 12.0, area)


def test_rank_one_is_the_riskiest_and_ties_go_to_the_lower_id() -> None:
    s = _surface(np.array([0.5, 2.0, 0.5, 0.0, 3.0, 2.0]))
    frame = s.to_frame()
    assert frame["cell_id"].tolist() == [4, 1, 5, 0, 2, 3]
    assert frame["rank"].tolist() == [1, 2, 3, 4, 5, 6]
    assert frame["score"].is_monotonic_decreasing
    assert frame["expected"].sum() == pytest.approx(12.0)


def test_geojson_and_csv_agree_with_the_frame(tmp_path: Path) -> None:
    s = _surface(np.array([1.0, 4.0, 0.0, 2.0, 3.0, 0.5]), area=np.array([0, 1, 3, 4]))
    gj = s.to_geojson()
    props = [f["properties"] for f in gj["features"]]
    assert [p["cell_id"] for p in props] == s.to_frame()["cell_id"].tolist() == [1, 4, 3, 0]
    assert [p["rank"] for p in props] == [1, 2, 3, 4]
    ring = gj["features"][0]["geometry"]["coordinates"][0]
    assert ring[0] == ring[-1] and len(ring) == 5
    lon, lat = zip(*ring, strict=True)
    assert all(-90 < v < -80 for v in lon) and all(40 < v < 45 for v in lat)  # WGS84, UTM 16N
    assert gj["metadata"]["cell_size_m"] == 100.0
    s.write(tmp_path / "s.geojson", top=2)
    back = json.loads((tmp_path / "s.geojson").read_text())
    assert [f["properties"]["rank"] for f in back["features"]] == [1, 2]
    s.write(tmp_path / "s.csv")
    csv = pd.read_csv(tmp_path / "s.csv")
    assert csv["cell_id"].tolist() == [1, 4, 3, 0] and {"lon", "lat", "rank", "score"} <= set(csv.columns)
    with pytest.raises(InputError):
        s.write(tmp_path / "s.shp")


def test_model_surface_ranks_match_metrics_order(incidents: pd.DataFrame, grid: SquareGrid,
                                                 origin: pd.Timestamp) -> None:
    surface = make("retro_count", grid=grid).fit(incidents, until=origin).predict(horizon="7d")
    frame = surface.to_frame()
    assert set(frame["cell_id"]) == set(surface.area.tolist())  # type: ignore[union-attr]
    top = frame.head(10)
    assert (top["score"].to_numpy() >= frame["score"].iloc[10:].max()).all()


def test_score_shape_is_checked() -> None:
    with pytest.raises(InputError):
        _surface(np.zeros(5))
