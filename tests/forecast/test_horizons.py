"""Shift-aligned forecast windows in local time (8h, 1d, 7d, 28d) and leaderboards per horizon."""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.exceptions import InputError
from crimelens.forecast import make
from crimelens.forecast.evaluation import backtest
from crimelens.forecast.horizons import ShiftOrigins, parse_shifts
from crimelens.geo.grid import SquareGrid

TZ = "America/Toronto"


def test_eight_hour_windows_follow_local_shifts_across_daylight_saving() -> None:
    folds = ShiftOrigins("2021-03-13", "2021-03-14", horizon="8h", tz=TZ).folds()
    local = [f.origin.tz_convert(TZ) for f in folds]
    assert [t.hour for t in local] == [6, 14, 22] * 2
    hours = [(f.end - f.origin).total_seconds() / 3600 for f in folds]
    # the night shift of 13 March loses an hour to the spring change (02:00 -> 03:00)
    assert hours == [8, 8, 7, 8, 8, 8]
    assert all(a.end == b.origin for a, b in itertools.pairwise(folds))


def test_day_and_week_windows_start_with_the_first_shift() -> None:
    days = ShiftOrigins("2021-06-01", "2021-06-07", horizon="1d", tz=TZ, shifts=("07:00", "19:00")).folds()
    assert len(days) == 7
    assert {f.origin.tz_convert(TZ).hour for f in days} == {7}
    weeks = ShiftOrigins("2021-01-04", "2021-03-01", horizon="7d", tz=TZ).folds()
    assert len(weeks) == 9 and all((f.end - f.origin) == pd.Timedelta(days=7) for f in weeks)
    month = ShiftOrigins("2021-01-04", "2021-03-01", horizon="28d", tz=TZ).folds()
    assert [f.origin.tz_convert(TZ).date().isoformat() for f in month] == ["2021-01-04", "2021-02-01",
                                                                           "2021-03-01"]


@pytest.mark.parametrize("bad", ["", "25:00", "6:00,6:00", "noon"])
def test_bad_shift_boundaries_are_refused(bad: str) -> None:
    with pytest.raises(InputError):
        parse_shifts(bad)


def test_unknown_zone_is_refused() -> None:
    with pytest.raises(InputError, match="time zone"):
        ShiftOrigins("2021-01-01", "2021-01-02", horizon="8h", tz="Mars/Olympus").folds()


def test_shift_backtest_counts_the_local_windows(incidents: pd.DataFrame, grid: SquareGrid) -> None:
    split = ShiftOrigins("2020-12-01", "2020-12-03", horizon="8h", tz=TZ)
    models = {"retro_count": make("retro_count"), "sepp": make("sepp"), "prospective": make("prospective")}
    rep = backtest(models, incidents, split, grid=grid, coverages=(0.05,), area=np.arange(grid.n_cells))
    assert rep.n_folds == 9
    local = incidents["occurred_at"].dt.tz_convert(TZ)
    per_fold = rep.folds[rep.folds["model"] == "retro_count"].set_index("fold")["n_total"]
    for fold in split.folds():
        lo, hi = fold.origin.tz_convert(TZ), fold.end.tz_convert(TZ)
        assert per_fold[fold.index] == ((local >= lo) & (local < hi)).sum()
    assert rep.settings["horizon_days"] == pytest.approx(1 / 3)


def test_cli_evaluate_per_horizon(tmp_path: Path, incident_factory, toronto_store) -> None:  # type: ignore[no-untyped-def]
    from crimelens.cli.app import app

    db = toronto_store(incident_factory(days=200, n_side=12, daily=8.0, seed=4), tmp_path)
    runner = CliRunner()
    boards = {}
    for horizon, end in (("8h", "2020-06-02"), ("1d", "2020-06-07"), ("7d", "2020-06-29")):
        out = tmp_path / horizon
        res = runner.invoke(app, ["evaluate", "--models", "retro_count,sepp", "--horizon", horizon, "--tz", TZ,
                                  "--from", "2020-06-01", "--to", end, "--out", str(out), "--db", db, "--json"])
        assert res.exit_code == 0, res.output
        boards[horizon] = json.loads(res.output)
        assert (out / "leaderboard.md").exists()
    assert boards["8h"]["folds"] == 6 and boards["1d"]["folds"] == 7 and boards["7d"]["folds"] == 5
    res = runner.invoke(app, ["evaluate", "--models", "retro_count", "--horizon", "8h", "--shifts", "25:00",
                              "--from", "2020-06-01", "--to", "2020-06-02", "--out", str(tmp_path / "x"),
                              "--db", db])
    assert res.exit_code == 2 and "Traceback" not in res.output and "shift" in res.output
