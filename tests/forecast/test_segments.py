"""Street-segment forecasts on a synthetic network city with known segment rates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.forecast.evaluation import RollingOrigin, backtest, study_grid
from crimelens.forecast.segments import (
    StreetNetwork,
    backtest_segments,
    captured_by_length,
    read_network,
    segment_models,
    snap_incidents,
)
from crimelens.synth.network import NetworkCity, network_city


@pytest.fixture(scope="module")
def city() -> NetworkCity:
    return network_city(seed=1, size_m=2000.0, days=500, daily=30.0)


@pytest.fixture(scope="module")
def net(city: NetworkCity) -> StreetNetwork:
    return StreetNetwork.from_lines(city.lines, city.crs)


def test_snapping_finds_the_true_segment_within_tolerance(city: NetworkCity, net: StreetNetwork) -> None:
    inc = city.incidents
    snapped = snap_incidents(inc, net, tolerance=25.0)
    assert snapped.share_snapped == 1.0
    # near intersections a sideways displacement can reach the cross street: most, not all
    assert (snapped.segment == inc["true_segment"].to_numpy()).mean() > 0.9
    far = pd.DataFrame({"occurred_at": inc["occurred_at"][:3], "x": inc["x"][:3] + 5_000.0, "y": inc["y"][:3]})
    assert (snap_incidents(far, net, tolerance=25.0).segment == -1).all()
    with pytest.raises(InputError):
        net.snap(np.zeros(1), np.zeros(1), tolerance=0)


def test_adjacency_joins_segments_at_intersections(net: StreetNetwork) -> None:
    deg = np.asarray(net.adjacency().sum(axis=1)).ravel()
    # interior blocks meet 3 others at each end; blocks at the edge fewer
    assert deg.max() == 6 and deg.min() >= 2


def test_length_coverage_counts_the_crossing_segment_in_part() -> None:
    length = np.array([10.0, 30.0, 60.0])
    observed = np.array([5.0, 3.0, 6.0])
    score = np.array([10.0, 3.0, 1.0])  # densities 1, 0.1, 0.0167
    assert captured_by_length(score, length, observed, 0.1) == pytest.approx(5.0)
    assert captured_by_length(score, length, observed, 0.25) == pytest.approx(5.0 + 3.0 * 15 / 30)
    assert captured_by_length(score, length, observed, 1.0) == pytest.approx(14.0)


def test_network_forecast_approaches_the_truth_and_beats_the_grid(city: NetworkCity, net: StreetNetwork) -> None:
    inc = city.incidents
    snapped = snap_incidents(inc, net, tolerance=25.0)
    split = RollingOrigin("2023-03-06", "2023-05-08", horizon="28d", step="28d")
    rep = backtest_segments(segment_models("retro_count,network_kde"), snapped, split, coverages=(0.05,))
    hit = rep.folds.groupby("model")["hit_rate"].mean()
    # the truth's hit rate in the same windows: rank segments by their true rate
    truth = []
    for fold in split.folds():
        t = (inc["occurred_at"] >= fold.origin) & (inc["occurred_at"] < fold.end)
        obs = np.bincount(snapped.segment[t.to_numpy()], minlength=len(net)).astype(float)
        truth.append(captured_by_length(city.rate, net.length, obs, 0.05) / obs.sum())
    assert hit.max() >= 0.85 * np.mean(truth)
    # the grid at the same share of area, 100 m cells (one block)
    grid = study_grid(inc, 100.0)
    area = np.arange(grid.n_cells)
    grep = backtest({"retro_count": make("retro_count")}, inc, split, grid=grid, area=area, coverages=(0.05,))
    assert hit["retro_count"] > 1.1 * grep.folds["hit_rate"].mean()
    assert rep.settings["network_length_m"] == pytest.approx(net.length.sum())


def test_a_user_street_file_in_wgs84_is_read_and_projected(city: NetworkCity, tmp_path: Path) -> None:
    import geopandas as gpd

    frame = gpd.GeoDataFrame({"id": [f"s{i}" for i in range(len(city.lines))]}, geometry=list(city.lines),
                             crs=city.crs).to_crs("EPSG:4326")
    path = tmp_path / "streets.gpkg"
    frame.to_file(path, driver="GPKG")
    back = read_network(path, city.crs)
    assert len(back) == len(city.lines)
    assert back.length.sum() == pytest.approx(float(np.sum([ln.length for ln in city.lines])), rel=1e-4)
    gj = back.to_geojson(np.arange(len(back), dtype=float), np.ones(len(back)), top=3)
    assert [f["properties"]["rank"] for f in gj["features"]] == [1, 2, 3]
    json.dumps(gj)
    with pytest.raises(InputError, match="not found"):
        read_network(tmp_path / "missing.gpkg", city.crs)


def test_cli_forecast_and_evaluate_on_segments(city: NetworkCity, tmp_path: Path, toronto_store) -> None:  # type: ignore[no-untyped-def]
    import geopandas as gpd
    from typer.testing import CliRunner

    from crimelens.cli.app import app

    assert city.crs == "EPSG:32617"
    inc = city.incidents[city.incidents["occurred_at"] < "2022-09-01"]
    db = toronto_store(inc, tmp_path, shift=False)
    streets = tmp_path / "streets.gpkg"
    gpd.GeoDataFrame(geometry=list(city.lines), crs=city.crs).to_file(streets, driver="GPKG")
    runner = CliRunner()
    out = tmp_path / "seg.geojson"
    res = runner.invoke(app, ["forecast", "--segments", str(streets), "--out", str(out), "--top", "20",
                              "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output)
    assert payload["model"] == "network_kde" and payload["segments"] == len(city.lines)
    assert payload["share_snapped"] > 0.99
    feats = json.loads(out.read_text())["features"]
    assert len(feats) == 20 and feats[0]["geometry"]["type"] == "LineString"
    res = runner.invoke(app, ["evaluate", "--segments", str(streets), "--models", "retro_count,network_kde",
                              "--from", "2022-07-04", "--to", "2022-08-01", "--out", str(tmp_path / "lb"),
                              "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    board = json.loads(res.output)
    assert board["folds"] == 5 and set(board["models"]) >= {"retro_count", "network_kde"}
    res = runner.invoke(app, ["forecast", "--segments", str(tmp_path / "nope.gpkg"), "--out", str(out), "--db", db])
    assert res.exit_code == 2 and "not found" in res.output and "Traceback" not in res.output
