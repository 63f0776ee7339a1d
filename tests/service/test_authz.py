"""Authorisation: SEC-09 (every route declares a role), SEC-10 (role × route × object matrix),
SEC-11 (field-level access), SEC-12 (strict request models), SEC-13 (rate limits, page cap, export)."""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crimelens.service.app import api_routes
from crimelens.service.auth import Role
from tests.conftest import CHICAGO_HEADER
from tests.service.conftest import SECRET_NAME, SECRET_NARRATIVE, Env, chicago_rows, make_env, write_rows

#: SEC-09: only health, login and the public (aggregated, suppressed) routes are anonymous.
ANONYMOUS = {"/api/v1/health", "/api/v1/auth/login", "/api/v1/public/areas", "/api/v1/public/grid"}


def _required_role(dep: Any) -> Role | None:
    best = None
    for sub in dep.dependencies:
        role = getattr(sub.call, "required_role", None)
        inner = _required_role(sub)
        for r in (role, inner):
            if r is not None and (best is None or r > best):
                best = r
    return best


def test_sec09_every_api_route_declares_its_role(env: Env) -> None:
    routes = api_routes()
    assert len(routes) > 25
    undeclared = [p for p, r in routes if p not in ANONYMOUS and _required_role(r.dependant) is None]
    assert undeclared == []
    assert all(_required_role(r.dependant) is None for p, r in routes if p in ANONYMOUS)
    schema_paths = set(env.client.get("/api/v1/openapi.json").json()["paths"])
    assert schema_paths == {p for p, _ in routes}


def test_sec09_every_data_route_answers_401_without_token(env: Env) -> None:
    for full, r in api_routes():
        if full in ANONYMOUS:
            continue
        path = full.replace("{source}", "chicago").replace("{incident_id}", "1").replace("{model}", "m") \
            .replace("{job_id}", "j").replace("{username}", "viewer")
        for method in r.methods:
            resp = env.client.request(method, path)
            assert resp.status_code == 401, (method, path, resp.status_code)
    assert env.client.get("/api/v1/health").status_code == 200


def _upload(env: Env, headers: dict[str, str], rows: int = 5, start: int = 90_000_000) -> str:
    data = io.BytesIO()
    path = env.db.parent / f"up{start}.csv"
    write_rows(path, chicago_rows(rows, seed=start, start_id=start), CHICAGO_HEADER)
    data.write(path.read_bytes())
    r = env.client.post("/api/v1/ingest", headers=headers, files={"file": ("new.csv", data.getvalue(), "text/csv")},
                        data={"preset": "chicago"})
    assert r.status_code == 202, r.text
    job_id: str = r.json()["id"]
    return job_id


def _wait(env: Env, job_id: str, headers: dict[str, str]) -> dict[str, Any]:
    for _ in range(200):
        j: dict[str, Any] = env.client.get(f"/api/v1/jobs/{job_id}", headers=headers).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.05)
    raise AssertionError("job did not finish")


# role x route x object: expected status per caller
MATRIX: list[tuple[str, str, dict[str, int]]] = [
    ("GET", "/api/v1/incidents", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200, "scoped": 200}),
    ("GET", "/api/v1/incidents/chicago/20000001", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200,
                                                   "scoped": 404}),
    ("GET", "/api/v1/incidents/madison/M1", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200, "scoped": 200}),
    ("GET", "/api/v1/incidents?source=chicago", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200,
                                                 "scoped": 403}),
    ("GET", "/api/v1/aggregates/categories", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200,
                                              "scoped": 200}),
    ("GET", "/api/v1/hotspots", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200, "scoped": 200}),
    ("GET", "/api/v1/forecasts/recent_density", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200,
                                                 "scoped": 200}),
    ("GET", "/api/v1/quarantine/summary", {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200, "scoped": 200}),
    ("GET", "/api/v1/incidents/export.csv", {"anon": 401, "viewer": 403, "analyst": 200, "admin": 200,
                                             "scoped": 403}),
    ("GET", "/api/v1/users", {"anon": 401, "viewer": 403, "analyst": 403, "admin": 200, "scoped": 403}),
    ("GET", "/api/v1/audit", {"anon": 401, "viewer": 403, "analyst": 403, "admin": 200, "scoped": 403}),
    ("GET", "/api/v1/audit/verify", {"anon": 401, "viewer": 403, "analyst": 403, "admin": 200, "scoped": 403}),
    ("POST", "/api/v1/users/viewer/unlock", {"anon": 401, "viewer": 403, "analyst": 403, "admin": 204,
                                             "scoped": 403}),
]


@pytest.fixture
def callers(env: Env) -> dict[str, dict[str, str]]:
    return {"anon": {}, **{n: env.auth(n) for n in ("viewer", "analyst", "admin", "scoped")}}


def test_sec10_role_route_object_matrix(env: Env, callers: dict[str, dict[str, str]]) -> None:
    got = {(m, p, who): env.client.request(m, p, headers=h).status_code
           for m, p, exp in MATRIX for who, h in callers.items()}
    want = {(m, p, who): code for m, p, exp in MATRIX for who, code in exp.items()}
    assert got == want


def test_sec10_jobs_are_visible_to_owner_and_admin_only(env: Env, callers: dict[str, dict[str, str]]) -> None:
    assert env.client.post("/api/v1/ingest", headers=callers["viewer"],
                           files={"file": ("x.csv", b"a,b\n1,2\n")}).status_code == 403
    job = _upload(env, callers["analyst"])
    codes = {who: env.client.get(f"/api/v1/jobs/{job}", headers=h).status_code for who, h in callers.items()}
    assert codes == {"anon": 401, "viewer": 404, "analyst": 200, "admin": 200, "scoped": 404}
    listed = {who: [j["id"] for j in env.client.get("/api/v1/jobs", headers=h).json()]
              for who, h in callers.items() if who != "anon"}
    assert job in listed["analyst"] and job in listed["admin"] and job not in listed["viewer"]


def _filled(d: dict[str, Any]) -> set[str]:
    return {k for k, v in d.items() if v is not None}


def test_sec11_field_level_access_per_role(env: Env, callers: dict[str, dict[str, str]]) -> None:
    url = "/api/v1/incidents/madison/M0"
    viewer = env.client.get(url, headers=callers["viewer"]).json()
    analyst = env.client.get(url, headers=callers["analyst"]).json()
    assert not {"address", "suspect_ref", "victim_ref", "suspect", "victim", "narrative"} & _filled(viewer)
    assert {"address", "suspect_ref", "victim_ref"} <= _filled(analyst)
    assert not {"suspect", "victim", "narrative"} & _filled(analyst)
    assert SECRET_NAME not in str(viewer) + str(analyst)
    # personal originals: analysts and admins with a stated reason, never viewers
    reason = {"X-Access-Reason": "case 24-118 follow-up"}
    assert env.client.get(url + "?fields=personal", headers=callers["viewer"] | reason).status_code == 403
    assert env.client.get(url + "?fields=personal", headers=callers["analyst"]).status_code == 400
    full = env.client.get(url + "?fields=personal", headers=callers["analyst"] | reason).json()
    assert full["victim"] == SECRET_NAME and full["narrative"] == SECRET_NARRATIVE
    chi = env.client.get("/api/v1/incidents/chicago/20000001", headers=callers["viewer"]).json()
    chi_full = env.client.get("/api/v1/incidents/chicago/20000001", headers=callers["analyst"]).json()
    assert round(chi_full["lat"], 3) == chi["lat"] and chi_full["lat"] != chi["lat"]


def test_sec12_unknown_fields_refused_and_nothing_changed(env: Env, callers: dict[str, dict[str, str]]) -> None:
    admin = callers["admin"]
    r = env.client.post("/api/v1/users", headers=admin, json={
        "username": "sneaky", "role": "viewer", "password": "a fine long passphrase", "is_superuser": True})
    assert r.status_code == 422
    assert "sneaky" not in [u["username"] for u in env.client.get("/api/v1/users", headers=admin).json()]
    r = env.client.post("/api/v1/auth/login", json={"username": "viewer", "password": "x" * 12, "role": "admin"})
    assert r.status_code == 422
    r = env.client.post("/api/v1/auth/password", headers=callers["viewer"],
                        json={"current_password": "x", "new_password": "y" * 12, "role": "admin"})
    assert r.status_code == 422
    assert env.client.get("/api/v1/auth/me", headers=callers["viewer"]).json()["role"] == "viewer"
    # the owner of a job comes from the session, whatever the form says
    job = _upload(env, callers["analyst"])
    assert env.client.get(f"/api/v1/jobs/{job}", headers=admin).json()["owner"] == "analyst"


@pytest.fixture
def tight_env(template_store: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template_store, tmp_path, rate_login_per_minute=3, rate_search_per_minute=5,
                        rate_export_per_minute=2, max_page_size=50)


def test_sec13_rate_limits_page_cap_and_export_permission(tight_env: Env) -> None:
    env = tight_env
    h = env.auth("analyst")
    env.clock.advance(seconds=61)  # the login above counted too
    codes = [env.client.post("/api/v1/auth/login", json={"username": "viewer", "password": "x" * 12}).status_code
             for _ in range(3)]
    burst = env.client.post("/api/v1/auth/login", json={"username": "viewer", "password": "x" * 12})
    assert 429 not in codes and burst.status_code == 429 and "retry-after" in burst.headers
    page = env.client.get("/api/v1/incidents?limit=1000000", headers=h)
    assert page.status_code == 200 and page.json()["limit"] == 50 and len(page.json()["items"]) == 50
    searches = [env.client.get("/api/v1/incidents?limit=1", headers=h).status_code for _ in range(5)]
    assert searches[-1] == 429
    env.clock.advance(seconds=61)
    assert env.client.get("/api/v1/incidents?limit=1", headers=h).status_code == 200
    exports = [env.client.get("/api/v1/incidents/export.csv?limit=10", headers=h).status_code for _ in range(3)]
    assert exports == [200, 200, 429]
