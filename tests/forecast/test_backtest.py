"""Backtests score every model the same way and write a leaderboard."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from crimelens.forecast import make
from crimelens.forecast.evaluation import RollingOrigin, backtest, footprint, write_leaderboard
from crimelens.geo.grid import SquareGrid


@pytest.fixture(scope="module")
def report(incidents: pd.DataFrame, grid: SquareGrid):  # type: ignore[no-untyped-def]
    models = {"recent": make("recent"), "retro_count": make("retro_count"), "sepp": make("sepp")}
    return backtest(models, incidents, RollingOrigin("2020-11-02", "2021-02-15", horizon="7d", step="14d"),
                    grid=grid, coverages=(0.02, 0.1))


def test_report_shape_and_json_contract(report, incidents: pd.DataFrame, grid: SquareGrid) -> None:  # type: ignore[no-untyped-def]
    assert report.n_folds == 8
    assert report.area_cells == len(footprint(incidents, grid))
    d = report.to_dict(n_boot=200)
    assert d["folds"] == 8 and d["cells"] == report.area_cells
    for name in ("recent", "retro_count", "sepp", "oracle"):
        for cov in ("0.02", "0.1"):
            entry = d["models"][name][cov]
            assert {"pai", "hit_rate", "pei"} <= set(entry)
            assert entry["pai"] <= d["models"]["oracle"][cov]["pai"] + 1e-9
    json.dumps(d, default=str)


def test_baseline_difference_is_zero_for_itself_and_intervals_bracket(report) -> None:  # type: ignore[no-untyped-def]
    s = report.summary(n_boot=300)
    base = s[s["model"] == "retro_count"]
    assert np.allclose(base["pai_diff"], 0.0)
    other = s[s["model"].isin(["recent", "sepp"])]
    assert (other["pai_diff_lo"] <= other["pai_diff"]).all() and (other["pai_diff"] <= other["pai_diff_hi"]).all()


def test_per_fold_values_match_hit_rate_definition(report) -> None:  # type: ignore[no-untyped-def]
    f = report.folds
    assert np.allclose(f["hit_rate"], f["n"] / f["n_total"])
    assert np.allclose(f["pai"], f["hit_rate"] / (f["k"] / f["area_cells"]))
    assert np.allclose(f["pei"], f["n"] / f["n_star"])


def test_write_leaderboard(report, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    paths = write_leaderboard(report, tmp_path / "lb", n_boot=100)
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"
    md = paths["markdown"].read_text()
    assert "retro_count" in md and "oracle" in md
    assert json.loads(paths["json"].read_text())["folds"] == 8
    assert len(pd.read_csv(paths["folds"])) == len(report.folds)


def test_study_area_can_be_given(incidents: pd.DataFrame, grid: SquareGrid) -> None:
    area = np.arange(0, grid.n_cells, 2)
    rep = backtest({"retro_count": make("retro_count")}, incidents,
                   RollingOrigin("2021-01-04", "2021-01-11"), grid=grid, area=area)
    assert rep.area_cells == len(area)
    assert rep.settings["study_area"] == "given"
