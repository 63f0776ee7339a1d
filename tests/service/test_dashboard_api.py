"""The dashboard's drill-down routes on both backends: the incidents behind a box, and near repeats.

Expectations come from the full CSV export of the same store, counted independently in pandas.
"""

from __future__ import annotations

import io
import math

import pandas as pd
import pytest

from tests.service.conftest import Env

pytestmark = pytest.mark.service


def _all(env: Env) -> pd.DataFrame:
    r = env.client.get("/api/v1/incidents/export.csv?limit=100000", headers=env.auth("analyst"))
    assert r.status_code == 200, r.text
    frame = pd.read_csv(io.StringIO(r.text), dtype={"incident_id": str})
    frame["occurred_at"] = pd.to_datetime(frame["occurred_at"], utc=True, format="ISO8601")
    return frame


def test_cell_drilldown_pages_the_incidents_in_the_box(env: Env) -> None:
    rows = _all(env).dropna(subset=["lat", "lon"])
    lat0, lon0 = rows["lat"].median(), rows["lon"].median()
    box = {"west": lon0 - 0.03, "east": lon0 + 0.03, "south": lat0 - 0.03, "north": lat0 + 0.03}
    inside = rows[(rows.lon >= box["west"]) & (rows.lon < box["east"]) & (rows.lat >= box["south"])
                  & (rows.lat < box["north"])]
    assert len(inside) > 12, "the fixture should put a dozen incidents near its median point"
    viewer = env.auth("viewer")
    seen: list[str] = []
    offset = 0
    while True:
        r = env.client.get("/api/v1/drilldown/cell", params={**box, "limit": 10, "offset": offset}, headers=viewer)
        assert r.status_code == 200, r.text
        d = r.json()
        assert d["total"] == len(inside) and d["fields"] == "standard"
        seen += [f"{i['source']}/{i['incident_id']}" for i in d["items"]]
        assert all(i.get("address") is None and i.get("victim") is None for i in d["items"])  # viewer fields
        offset += 10
        if offset >= d["total"]:
            break
    assert sorted(seen) == sorted(f"{s}/{i}" for s, i in zip(inside.source, inside.incident_id, strict=True))
    assert len(set(seen)) == len(seen)
    bad = env.client.get("/api/v1/drilldown/cell", params={**box, "west": box["east"]}, headers=viewer)
    assert bad.status_code == 422


def test_cell_drilldown_personal_fields_need_role_and_reason(env: Env) -> None:
    box = {"west": -180, "east": 180, "south": -90, "north": 90, "fields": "personal"}
    assert env.client.get("/api/v1/drilldown/cell", params=box, headers=env.auth("viewer")).status_code == 403
    analyst = env.auth("analyst")
    assert env.client.get("/api/v1/drilldown/cell", params=box, headers=analyst).status_code == 400
    r = env.client.get("/api/v1/drilldown/cell", params=box,
                       headers=analyst | {"X-Access-Reason": "briefing follow-up 12"})
    assert r.status_code == 200 and r.json()["fields"] == "personal"
    audit = env.client.get("/api/v1/audit?limit=1000&event=person.read", headers=env.auth("admin")).json()
    assert [a["reason"] for a in audit] == ["briefing follow-up 12"]
    assert audit[0]["username"] == "analyst" and "cell" in audit[0]["detail"]


def test_near_repeats_are_within_the_distance_and_days(env: Env) -> None:
    rows = _all(env).dropna(subset=["lat", "lon"]).reset_index(drop=True)
    origin = rows.iloc[len(rows) // 2]
    dist, days = 600.0, 30.0
    r = env.client.get(f"/api/v1/drilldown/near-repeats/{origin.source}/{origin.incident_id}",
                       params={"distance_m": dist, "days": days}, headers=env.auth("analyst"))
    assert r.status_code == 200, r.text
    d = r.json()
    coslat = math.cos(math.radians(origin.lat))
    metres = ((rows.lon - origin.lon) * 111_320.0 * coslat).pow(2).add(((rows.lat - origin.lat) * 110_574.0).pow(2))
    gap = (rows.occurred_at - origin.occurred_at).abs()
    want = rows[(metres.pow(0.5) <= dist) & (gap <= pd.Timedelta(days=days)) & (rows.incident_id != origin.incident_id)]
    got = [n["incident"]["incident_id"] for n in d["items"]]
    assert sorted(got) == sorted(want.incident_id)
    assert d["origin"]["incident_id"] == origin.incident_id
    assert [n["distance_m"] for n in d["items"]] == sorted(n["distance_m"] for n in d["items"])
    assert all(abs(n["days_apart"]) <= days for n in d["items"])
    missing = env.client.get("/api/v1/drilldown/near-repeats/chicago/nope", headers=env.auth("analyst"))
    assert missing.status_code == 404
