"""``crimelens forecast`` and ``crimelens evaluate`` end to end on a small ingested store."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from crimelens.geo.crs import to_wgs84

MCI = {"burglary": "Break and Enter", "robbery": "Robbery", "theft": "Theft Over"}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, incident_factory) -> str:  # type: ignore[no-untyped-def]
    """A store loaded through the real ingest path from a Toronto-format file."""
    from crimelens.cli.app import app

    inc = incident_factory(days=400, n_side=16, daily=10.0, seed=5)
    x = 628_000.0 + (inc["x"].to_numpy() - 440_000.0)
    y = 4_838_000.0 + (inc["y"].to_numpy() - 4_630_000.0)
    lon, lat = to_wgs84(x, y, "EPSG:32617")
    local = pd.DatetimeIndex(inc["occurred_at"]).tz_convert("America/Toronto")
    raw = pd.DataFrame({
        "occurrencedate": local.strftime("%Y/%m/%d") + " 05:00:00+00",
        "occurrencehour": local.hour,
        "premises_type": "House",
        "MCI": inc["category"].map(MCI),
        "Neighbourhood": "N" + (np.arange(len(inc)) % 4).astype(str),
        "Lat": np.round(lat, 7),
        "Long": np.round(lon, 7),
    })
    root = tmp_path_factory.mktemp("cli")
    src = root / "toronto.csv"
    raw.to_csv(src, index=False)
    path = str(root / "t.duckdb")
    res = CliRunner().invoke(app, ["ingest", str(src), "--preset", "toronto_mci", "--db", path, "--json"])
    assert res.exit_code == 0, res.output
    return path


def test_forecast_writes_ranked_geojson_and_csv(db: str, tmp_path: Path) -> None:
    from crimelens.cli.app import app

    out = tmp_path / "f.geojson"
    res = CliRunner().invoke(app, ["forecast", "--model", "retro_count", "--cell", "200", "--horizon", "7d",
                                   "--at", "2020-12-07", "--out", str(out), "--db", db, "--json",
                                   "--save", str(tmp_path / "m.pkl")])
    assert res.exit_code == 0, res.output
    gj = json.loads(out.read_text())
    ranks = [f["properties"]["rank"] for f in gj["features"]]
    scores = [f["properties"]["score"] for f in gj["features"]]
    assert ranks == list(range(1, len(ranks) + 1))
    assert scores == sorted(scores, reverse=True)
    assert gj["metadata"]["cell_size_m"] == 200.0
    assert (tmp_path / "m.pkl.json").exists()
    csv = tmp_path / "f.csv"
    res = CliRunner().invoke(app, ["forecast", "--model", "sepp", "--cell", "200", "--at", "2020-12-07",
                                   "--out", str(csv), "--db", db])
    assert res.exit_code == 0, res.output
    assert pd.read_csv(csv)["rank"].iloc[0] == 1


def test_evaluate_json_contract(db: str, tmp_path: Path) -> None:
    from crimelens.cli.app import app

    res = CliRunner().invoke(app, ["evaluate", "--models", "recent,retro_count", "--cell", "200",
                                   "--horizon", "7d", "--coverage", "0.05,0.1", "--from", "2020-11-02",
                                   "--to", "2020-12-28", "--out", str(tmp_path / "lb"), "--db", db, "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout.strip().splitlines()[-1])
    assert payload["folds"] == 9 and payload["cells"] > 0
    assert set(payload["models"]) == {"recent", "retro_count", "oracle"}
    assert set(payload["models"]["retro_count"]) == {"0.05", "0.1"}
    assert set(payload["models"]["recent"]["0.05"]) == {"pai", "hit_rate", "pei"}
    assert (tmp_path / "lb" / "leaderboard.md").exists() and (tmp_path / "lb" / "pai_by_coverage.png").exists()


def test_bad_options_exit_non_zero_with_one_line(db: str, tmp_path: Path) -> None:
    from crimelens.cli.app import app

    bad = [
        ["forecast", "--model", "nope", "--out", str(tmp_path / "x.geojson"), "--db", db],
        ["forecast", "--model", "recent", "--out", str(tmp_path / "x.shp"), "--db", db],
        ["evaluate", "--models", "recent", "--coverage", "2", "--from", "2020-11-02", "--to", "2020-12-28",
         "--db", db],
        ["evaluate", "--models", "recent", "--db", db],
    ]
    for args in bad:
        res = CliRunner().invoke(app, args)
        assert res.exit_code != 0, args
        assert res.output.strip().startswith("error:"), res.output
