"""``GET /api/v1/patrol/plans`` and ``/plans/{id}`` on both stores: plans saved by the patrol code."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path
from typing import Any

import pandas as pd

from crimelens.patrol.plans_table import save_plan
from crimelens.store import connect

from .conftest import Env


def _plan(day: str, units: int) -> dict[str, Any]:
    feats = [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [-87.6 + u / 100, 41.8]},
              "properties": {"kind": "site", "shift": s, "hours": "07-15", "unit": u, "cell_id": 100 * u + i}}
             for i, s in enumerate(("day", "evening", "night")) for u in range(1, units + 1)]
    return {"type": "FeatureCollection", "features": feats,
            "plan": {"method": "mclp-fair", "day": day, "units": units, "policy": None,
                     "shifts": [{"name": s, "start_hour": 7, "end_hour": 15} for s in ("day", "evening", "night")]}}


def test_plans_are_listed_newest_first_and_served_as_geojson(env: Env) -> None:
    h = env.auth("viewer")
    assert env.client.get("/api/v1/patrol/plans", headers=h).json() == {"plans": []}
    with closing(connect(env.url)) as store:
        a = save_plan(store, _plan("2022-06-06", 2), now=pd.Timestamp("2022-06-05T10:00", tz="UTC").to_pydatetime())
        b = save_plan(store, _plan("2022-06-07", 3), now=pd.Timestamp("2022-06-06T10:00", tz="UTC").to_pydatetime())
    r = env.client.get("/api/v1/patrol/plans", headers=h)
    assert r.status_code == 200, r.text
    plans = r.json()["plans"]
    assert [p["id"] for p in plans] == [b, a]
    assert plans[0]["day"] == "2022-06-07" and plans[0]["units"] == 3 and plans[0]["shifts"] == 3
    r = env.client.get(f"/api/v1/patrol/plans/{a}", headers=h)
    assert r.status_code == 200, r.text
    geo = r.json()
    assert geo["id"] == a and geo["plan"]["day"] == "2022-06-06"
    assert sum(f["properties"]["kind"] == "site" for f in geo["features"]) == 6
    assert env.client.get("/api/v1/patrol/plans/doesnotexist1", headers=h).status_code == 404
    assert env.client.get("/api/v1/patrol/plans/bad-id!", headers=h).status_code == 400
    assert env.client.get("/api/v1/patrol/plans").status_code == 401


def test_schedule_stores_the_plan_it_writes(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from crimelens.cli.app import app

    runner = CliRunner()
    city, db, out = tmp_path / "c.csv", str(tmp_path / "p.duckdb"), tmp_path / "plan.geojson"
    assert runner.invoke(app, ["generate", "--out", str(city), "--incidents", "1500", "--days", "60",
                               "--seed", "5"]).exit_code == 0
    r = runner.invoke(app, ["ingest", str(city), "--db", db], env={"CRIMELENS_PSEUDONYM_KEY": "k" * 32})
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["patrol", "schedule", "--db", db, "--method", "mclp-fair", "--units", "4",
                            "--cell", "200", "--radius", "150", "--out", str(out), "--json"])
    assert r.exit_code == 0, r.output
    pid = json.loads(r.stdout)["plan_id"]
    with closing(connect(db, read_only=True)) as store:
        rows = store.execute("SELECT method, units, geojson FROM patrol_plans WHERE plan_id = ?", [pid])  # type: ignore[attr-defined]
    assert rows["method"].tolist() == ["mclp-fair"] and rows["units"].tolist() == [4]
    assert json.loads(rows["geojson"].iloc[0])["features"] == json.loads(out.read_text())["features"]
