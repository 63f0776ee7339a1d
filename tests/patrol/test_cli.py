"""``crimelens patrol`` end to end on a generated, ingested city."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
from typer.testing import CliRunner

from crimelens.cli.app import app

runner = CliRunner()


def test_patrol_plan_for_a_past_week_is_scored(db: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.geojson"
    r = runner.invoke(app, ["patrol", "--db", db, "--units", "6", "--radius", "250", "--separation", "400",
                            "--cell", "150", "--at", "2022-06-06", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    got = json.loads(r.stdout)
    assert got["units"] == 6 and got["method"] == "milp"
    assert 0 < got["coverage_share"] < 0.2
    assert got["expected_share"] > 2 * got["coverage_share"]  # the forecast concentrates crime
    real = got["realised"]
    assert real["incidents"] > 0 and 0 <= real["captured"] <= real["incidents"]
    geo = json.loads(out.read_text())
    sites = [f for f in geo["features"] if f["properties"]["kind"] == "site"]
    assert len(sites) == 6 and geo["plan"]["realised"] == real
    csv = tmp_path / "plan.csv"
    r = runner.invoke(app, ["patrol", "--db", db, "--units", "4", "--radius", "0", "--cell", "150",
                            "--at", "2022-06-06", "--out", str(csv)])
    assert r.exit_code == 0, r.output
    assert "what happened" in r.stdout
    assert len(pd.read_csv(csv)) == 4


def test_patrol_area_minimum_and_bad_input(db: str, tmp_path: Path) -> None:
    out = tmp_path / "plan.csv"
    r = runner.invoke(app, ["patrol", "--db", db, "--units", "30", "--radius", "0", "--cell", "150", "--area",
                            "district", "--min-per-area", "1", "--out", str(out)])
    assert r.exit_code == 0, r.output
    plan = pd.read_csv(out, dtype={"area": str})
    import duckdb

    con = duckdb.connect(db, read_only=True)
    districts = con.execute("SELECT count(DISTINCT district) FROM incidents WHERE x IS NOT NULL").fetchone()
    con.close()
    assert districts is not None and 1 < districts[0] < 30
    assert plan["area"].notna().all() and plan["area"].nunique() == districts[0]  # every district covered
    r = runner.invoke(app, ["patrol", "--db", db, "--units", "1", "--area", "district", "--min-per-area", "1",
                            "--cell", "150", "--out", str(out)])
    assert r.exit_code == 2 and "needs" in r.output
    r = runner.invoke(app, ["patrol", "--db", db, "--area", "nowhere", "--out", str(out)])
    assert r.exit_code == 2 and "--area must be one of" in r.output
    r = runner.invoke(app, ["patrol", "--db", db, "--out", str(tmp_path / "plan.txt")])
    assert r.exit_code == 2 and ".geojson or .csv" in r.output
