"""``crimelens drift`` end to end on a temporary DuckDB store."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.synth import CityConfig, generate_city, write_portal

runner = CliRunner()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> str:
    city = generate_city(CityConfig(n_incidents=5_000, days=365, seed=6, size_m=8_000))
    root = tmp_path_factory.mktemp("drift")
    src = root / "city.csv"
    write_portal(city, src, fmt="chicago")
    path = str(root / "d.duckdb")
    res = runner.invoke(app, ["ingest", str(src), "--preset", "chicago", "--db", path, "--json"])
    assert res.exit_code == 0, res.output
    return path


def test_drift_between_two_windows(db: str, tmp_path: Path) -> None:
    out = tmp_path / "drift.json"
    res = runner.invoke(app, ["drift", "--reference", "2022-01-01:2022-07-01", "--current", "2022-07-01:2023-01-01",
                              "--cell", "500", "--db", db, "--json", "--out", str(out),
                              "--metric-reference", "7.0", "--metric-current", "5.0"])
    assert res.exit_code == 0, res.output
    slim = json.loads(res.stdout)
    assert set(slim["features"]) == {"category", "hour", "weekday", "x", "y", "cell"}
    assert slim["status"] in ("ok", "warn", "alert")
    assert slim["decision"]["retrain"] is True  # the metric fell by 29 %
    assert slim["decision"]["metric_drop"] == pytest.approx(2 / 7)
    doc = json.loads(out.read_text())
    assert doc["kind"] == "crimelens-drift-report/1" and doc["metadata"]["timezone"] == "America/Chicago"
    assert all(len(f["bins"]) == len(f["current_share"]) for f in doc["features"])
    human = runner.invoke(app, ["drift", "--reference", "2022-01-01:2022-07-01",
                                "--current", "2022-07-01:2023-01-01", "--db", db])
    assert human.exit_code == 0 and "status:" in human.stdout and "PSI" in human.stdout


@pytest.mark.parametrize(("reference", "current", "message"), [
    ("2022-01-01", "2022-07-01:2023-01-01", "FROM:TO"),
    ("2022-07-01:2022-01-01", "2022-07-01:2023-01-01", "not after"),
    ("2022-01-01:2022-07-01", "2030-01-01:2030-02-01", "no located incidents in the current window"),
])
def test_drift_bad_input_exits_2(db: str, reference: str, current: str, message: str) -> None:
    res = runner.invoke(app, ["drift", "--reference", reference, "--current", current, "--db", db])
    assert res.exit_code == 2, res.output
    assert message in res.stderr and res.stderr.count("\n") == 1
