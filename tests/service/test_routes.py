"""Every route through TestClient: shapes and behaviour of the REST API."""

from __future__ import annotations

from typing import Any

import pytest

from crimelens.service.products import publish
from tests.service.conftest import Env


@pytest.fixture
def h(env: Env) -> dict[str, str]:
    return env.auth("admin")


def get(env: Env, path: str, h: dict[str, str], status: int = 200) -> Any:
    r = env.client.get(path, headers=h)
    assert r.status_code == status, (path, r.status_code, r.text[:300])
    return r.json()


def test_health_is_anonymous(env: Env) -> None:
    assert env.client.get("/api/v1/health").json()["status"] == "ok"


def test_openapi_has_examples_and_security(env: Env) -> None:
    doc = env.client.get("/api/v1/openapi.json").json()
    assert doc["info"]["title"] == "crimelens API"
    assert "examples" in doc["components"]["schemas"]["LoginIn"]
    assert "HTTPBearer" in doc["components"]["securitySchemes"]


def test_incident_pagination_is_complete_and_disjoint(env: Env, h: dict[str, str]) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(100):
        q = "/api/v1/incidents?limit=400&source=chicago" + (f"&cursor={cursor}" if cursor else "")
        page = get(env, q, h)
        seen += [i["incident_id"] for i in page["items"]]
        times = [i["occurred_at"] for i in page["items"]]
        assert times == sorted(times, reverse=True)
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(set(seen)) == 2400
    assert get(env, "/api/v1/incidents?cursor=%%%", h, 422)


def test_incident_filters(env: Env, h: dict[str, str]) -> None:
    prop = get(env, "/api/v1/incidents?category=property&limit=500", h)["items"]
    assert prop and {i["category_group"] for i in prop} == {"property"}
    dated = get(env, "/api/v1/incidents?from=2024-06-01&to=2024-06-02&limit=500", h)["items"]
    assert all(i["occurred_at"].startswith("2024-06-01") for i in dated)
    d = get(env, "/api/v1/incidents?area=district:008&limit=500", h)["items"]
    assert d and {i["district"] for i in d} == {"008"}
    assert get(env, "/api/v1/incidents?category=not_a_category", h, 422)
    assert get(env, "/api/v1/incidents?area=nonsense:1", h, 422)
    assert get(env, "/api/v1/incidents/chicago/nope", h, 404)


def test_aggregates(env: Env, h: dict[str, str]) -> None:
    ts = get(env, "/api/v1/aggregates/timeseries?period=day&stl=true&source=chicago", h)
    assert ts["points"] and {"count", "trend", "seasonal"} <= set(ts["points"][0])
    assert sum(p["count"] for p in ts["points"]) > 2000
    week = get(env, "/api/v1/aggregates/timeseries?period=week&stl=true", h)
    assert week["note"] and "STL" in week["note"]  # too short for a yearly season: series without STL, explained
    hw = get(env, "/api/v1/aggregates/hour-weekday", h)
    assert len(hw["values"]) == 7 and len(hw["values"][0]) == 24
    cats = get(env, "/api/v1/aggregates/categories", h)["rows"]
    assert cats == sorted(cats, key=lambda r: -r["count"])
    areas = get(env, "/api/v1/aggregates/areas?column=district", h)
    assert areas["area"] == "district" and areas["rows"]
    cs = get(env, "/api/v1/aggregates/compstat?source=chicago", h)
    assert set(cs["windows"]) == {"7d", "28d", "ytd"} and any(r["category"] == "Total" for r in cs["rows"])
    dated = get(env, "/api/v1/aggregates/compstat?source=chicago&as_of=2024-03-10", h)
    assert dated["windows"]["7d"]["to"] <= "2024-03-10"
    for bad in ("0552-28-48", "2024-02-30", "0552-01-01"):  # found by schemathesis: a 500, now a 422
        assert "detail" in get(env, f"/api/v1/aggregates/compstat?as_of={bad}", h, 422)
    cells = get(env, "/api/v1/aggregates/cells?cell_m=1000", h)
    assert cells["type"] == "FeatureCollection" and sum(f["properties"]["count"] for f in cells["features"]) > 2000
    outl = get(env, "/api/v1/aggregates/outlines?column=district", h)
    assert outl["features"] and outl["features"][0]["geometry"]["type"] == "Polygon"


def test_hotspots_gistar(env: Env, h: dict[str, str]) -> None:
    hs = get(env, "/api/v1/hotspots?cell_m=500", h)
    assert hs["features"], "the clustered fixture has hot spots"
    props = hs["features"][0]["properties"]
    assert {"Gi_Bin", "class", "color", "z", "p"} <= set(props)
    assert hs["parameters"]["statistic"] == "Getis-Ord Gi*"
    assert any(f["properties"]["Gi_Bin"] == 3 for f in hs["features"])


def test_forecasts_and_models(env: Env, h: dict[str, str]) -> None:
    names = [m["name"] for m in get(env, "/api/v1/forecasts", h)]
    assert names == ["recent_density"]
    fb = get(env, "/api/v1/forecasts/recent_density", h)
    assert fb["model"] == "recent_density" and fb["features"] and fb["parameters"]["note"].startswith("fallback")
    get(env, "/api/v1/forecasts/unknown_model", h, 404)
    rt = env.app.state.svc.rt
    surface = {"type": "FeatureCollection", "features": fb["features"][:3], "parameters": {"model": "kde", "cell": 250}}
    with rt.write_lock:
        publish(rt.writer, "forecast", "kde", surface)
        publish(rt.writer, "leaderboard", "latest", {"rows": [{"model": "kde", "hit_rate": 0.31, "pai": 6.2}]})
    got = get(env, "/api/v1/forecasts/kde", h)
    assert got["model"] == "kde" and len(got["features"]) == len(surface["features"]) and got["created_at"]
    models = get(env, "/api/v1/models", h)
    assert [m["name"] for m in models["models"]] == ["kde"] and models["leaderboard"][0]["pai"] == 6.2


def test_quarantine_routes(env: Env, h: dict[str, str]) -> None:
    summary = get(env, "/api/v1/quarantine/summary", h)
    assert summary["total"] == sum(r["count"] for r in summary["by_reason"])
    get(env, "/api/v1/quarantine/rows", h, 400)
    rows = get(env, "/api/v1/quarantine/rows", h | {"X-Access-Reason": "data quality review"})
    assert isinstance(rows["rows"], list)


def test_users_admin_routes(env: Env, h: dict[str, str]) -> None:
    r = env.client.post("/api/v1/users", headers=h, json={"username": "newbie", "role": "viewer",
                                                          "password": "a long enough phrase", "sources": ["madison"]})
    assert r.status_code == 201 and r.json()["sources"] == ["madison"]
    assert env.client.post("/api/v1/users", headers=h, json={"username": "newbie", "role": "viewer",
                                                             "password": "a long enough phrase"}).status_code == 422
    users = {u["username"]: u for u in get(env, "/api/v1/users", h)}
    assert "password_hash" not in users["newbie"] and users["newbie"]["role"] == "viewer"
    p = env.client.patch("/api/v1/users/newbie", headers=h, json={"role": "analyst", "can_export": True})
    assert p.json()["role"] == "analyst" and p.json()["can_export"] is True
    assert env.client.patch("/api/v1/users/ghost", headers=h, json={"role": "viewer"}).status_code == 404
    assert env.client.post("/api/v1/users/ghost/unlock", headers=h).status_code == 404


def test_audit_routes(env: Env, h: dict[str, str]) -> None:
    rows = get(env, "/api/v1/audit?limit=1000", h)
    assert rows[0]["seq"] == 1 and rows[-1]["event"] == "audit.read"
    assert get(env, "/api/v1/audit?event=auth.login", h)[0]["event"] == "auth.login"
    assert get(env, "/api/v1/audit/verify", h)["ok"] is True
    assert env.client.post("/api/v1/audit/purge", headers=h).json() == {"removed": 0}


def test_dashboard_page_and_assets_are_local(env: Env) -> None:
    page = env.client.get("/")
    assert page.status_code == 200 and 'id="login-form"' in page.text
    assert 'src="/static/vendor/plotly.min.js"' in page.text
    assert "http://" not in page.text and "https://" not in page.text  # no CDN
    js = env.client.get("/static/vendor/plotly.min.js")
    assert js.status_code == 200 and len(js.content) > 1_000_000
    assert env.client.get("/static/app.js").status_code == 200
    assert env.client.get("/static/app.css").status_code == 200
