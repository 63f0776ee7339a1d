"""Alerts through the service: an upload with a planted spike reaches the live feed within seconds;
acknowledge/resolve with feedback moves precision; rule-book validation; the role matrix."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from tests.conftest import CHICAGO_HEADER
from tests.service.conftest import END, Env, chicago_rows, write_rows
from tests.service.test_ingest_live import upload, wait

SPIKE_DISTRICT = "011"


def spike_rows(n: int = 30, start_id: int = 95_000_000) -> list[dict[str, str]]:
    """``n`` burglaries in one district over the last two days of the store's data: a planted spike."""
    rows = chicago_rows(n, seed=11, start_id=start_id)
    for i, r in enumerate(rows):
        t = END - timedelta(hours=2 + i)
        r.update({"Primary Type": "BURGLARY", "Description": "FORCIBLE ENTRY", "IUCR": "0610", "FBI Code": "05",
                  "District": SPIKE_DISTRICT, "Beat": "1111", "Date": t.strftime("%m/%d/%Y %I:%M:%S %p"),
                  "Year": str(t.year)})
    return rows


def _listen(env: Env, h: dict[str, str], got: list[tuple[float, dict[str, Any]]], ready: threading.Event,
            stop: threading.Event) -> None:
    """Collect ``alert`` events from the SSE feed with their arrival time."""
    with env.client.stream("GET", "/api/v1/events?heartbeat_s=0.1", headers=h) as r:
        buf = ""
        for chunk in r.iter_text():
            ready.set()
            buf += chunk
            while "\n\n" in buf:
                frame, buf = buf.split("\n\n", 1)
                lines = frame.splitlines()
                if "event: alert" in lines:
                    data = json.loads(next(ln[5:] for ln in lines if ln.startswith("data:")))
                    got.append((time.perf_counter(), data))
            if stop.is_set() or got:
                return


def _planted(env: Env, tmp_path: Path, h: dict[str, str]) -> tuple[float, list[tuple[float, dict[str, Any]]]]:
    got: list[tuple[float, dict[str, Any]]] = []
    ready, stop = threading.Event(), threading.Event()
    listener = threading.Thread(target=_listen, args=(env, env.auth("viewer"), got, ready, stop), daemon=True)
    listener.start()
    assert ready.wait(10)
    path = write_rows(tmp_path / "spike.csv", spike_rows(), CHICAGO_HEADER)
    t0 = time.perf_counter()
    job = wait(env, upload(env, h, path, preset="chicago")["id"], h)
    assert job["status"] == "done", job
    listener.join(15)
    stop.set()
    return t0, got


def test_uploaded_spike_reaches_the_live_feed_within_seconds(env: Env, tmp_path: Path) -> None:
    h = env.auth("analyst")
    t0, got = _planted(env, tmp_path, h)
    assert got, "no alert event on the live feed"
    at, data = got[0]
    latency = at - t0
    print(f"\nalert latency through the API (upload POST -> SSE alert frame): {latency:.2f} s")
    assert latency < 10
    alert = data["alert"]
    assert data["action"] == "new" and alert["area"] == SPIKE_DISTRICT and alert["category"] == "burglary"
    assert alert["observed"] > alert["expected"] and alert["severity"] in ("medium", "high", "critical")
    # stored, listed and detailed with the incidents behind it (viewer: rounded points, no address)
    page = env.client.get("/api/v1/alerts", headers=h, params={"status": "open", "area": SPIKE_DISTRICT}).json()
    assert alert["alert_id"] in {a["alert_id"] for a in page["items"]} and page["total"] >= 1
    viewer = env.client.get(f"/api/v1/alerts/{alert['alert_id']}", headers=env.auth("viewer")).json()
    assert viewer["incidents_shown"] > 0 and all("address" not in i or i["address"] is None
                                                 for i in viewer["incidents"])
    assert any(i["incident_id"].startswith("95") for i in viewer["incidents"])
    # a scoped user (madison only) does not see chicago incidents behind it
    scoped = env.client.get(f"/api/v1/alerts/{alert['alert_id']}", headers=env.auth("scoped")).json()
    assert scoped["incidents"] == [] and scoped["incident_ids"] == []


def test_ack_resolve_feedback_and_precision(env: Env, tmp_path: Path) -> None:
    h = env.auth("analyst")
    _planted(env, tmp_path, h)
    alerts = env.client.get("/api/v1/alerts", headers=h).json()["items"]
    assert alerts
    assert env.client.get("/api/v1/alerts/precision", headers=h).json()["labelled"] == 0
    first = alerts[0]["alert_id"]
    r = env.client.post(f"/api/v1/alerts/{first}/ack", headers=h, json={"note": "looking"})
    assert r.status_code == 200 and r.json()["status"] == "acknowledged"
    r = env.client.post(f"/api/v1/alerts/{first}/resolve", headers=h, json={"label": "true"})
    assert r.status_code == 200 and r.json()["status"] == "resolved"
    prec = env.client.get("/api/v1/alerts/precision", headers=h).json()
    assert prec["labelled"] == 1 and prec["precision"] == 1.0 and prec["rows"][0]["true"] == 1
    if len(alerts) > 1:
        env.client.post(f"/api/v1/alerts/{alerts[1]['alert_id']}/resolve", headers=h, json={"label": "false"})
        assert env.client.get("/api/v1/alerts/precision", headers=h).json()["precision"] == 0.5
    assert env.client.get("/api/v1/alerts", headers=h, params={"status": "resolved"}).json()["total"] >= 1
    assert env.client.post(f"/api/v1/alerts/{first}/resolve", headers=h, json={"label": "maybe"}).status_code == 422
    assert env.client.post("/api/v1/alerts/abcdef0123/ack", headers=h).status_code == 404
    audit = env.client.get("/api/v1/audit", headers=env.auth("admin"), params={"limit": 200}).json()
    events = {row["event"] for row in (audit["items"] if isinstance(audit, dict) else audit)}
    assert {"alert.ack", "alert.resolve"} <= events


def test_rules_put_validates_and_changes_nothing_when_bad(env: Env) -> None:
    admin = env.auth("admin")
    before = env.client.get("/api/v1/alert-rules", headers=admin).json()
    assert before["source"] == "none" and before["rules"] == []
    bad = [{"rules": [{"name": "x", "type": "nope", "categories": ["burglary"]}]},
           {"rules": [{"name": "x", "type": "watch", "categories": ["no_such_category"]}]},
           {"rules": [{"name": "x", "type": "watch", "categories": ["homicide"], "colour": "red"}]},
           {"rules": [{"name": "x", "type": "series", "categories": ["burglary"], "days": "soon"}]},
           {"rules": [], "surprise": 1}]
    for body in bad:
        r = env.client.put("/api/v1/alert-rules", headers=admin, json=body)
        assert r.status_code == 422, (body, r.text)
    assert env.client.get("/api/v1/alert-rules", headers=admin).json() == before
    good = {"rules": [{"name": "any homicide", "type": "watch", "categories": ["homicide"]},
                      {"name": "burglary series", "type": "series", "categories": ["burglary"], "min_count": 3,
                       "radius_m": 400, "days": 7}], "cooldown_hours": 24}
    r = env.client.put("/api/v1/alert-rules", headers=admin, json=good)
    assert r.status_code == 200, r.text
    now = env.client.get("/api/v1/alert-rules", headers=admin).json()
    assert now["source"] == "api" and [x["name"] for x in now["rules"]] == ["any homicide", "burglary series"]
    assert env.app.state.svc.alerts.monitor.rules.cooldown_hours == 24
    r = env.client.post("/api/v1/alerts/scan", headers=env.auth("analyst"), json={"categories": ["burglary"]})
    assert r.status_code == 200 and r.json()["seconds"] >= 0


MATRIX: list[tuple[str, str, dict[str, Any] | None, dict[str, int]]] = [
    ("GET", "/api/v1/alerts", None, {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/alerts/precision", None, {"anon": 401, "viewer": 200, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/alerts/abcdef0123", None, {"anon": 401, "viewer": 404, "analyst": 404, "admin": 404}),
    ("POST", "/api/v1/alerts/abcdef0123/ack", {}, {"anon": 401, "viewer": 403, "analyst": 404, "admin": 404}),
    ("POST", "/api/v1/alerts/abcdef0123/resolve", {"label": "false"},
     {"anon": 401, "viewer": 403, "analyst": 404, "admin": 404}),
    ("POST", "/api/v1/alerts/scan", {"categories": ["homicide"]},
     {"anon": 401, "viewer": 403, "analyst": 200, "admin": 200}),
    ("GET", "/api/v1/alert-rules", None, {"anon": 401, "viewer": 403, "analyst": 403, "admin": 200}),
    ("PUT", "/api/v1/alert-rules", {"rules": []}, {"anon": 401, "viewer": 403, "analyst": 403, "admin": 200}),
]


def test_alert_routes_role_matrix(env: Env) -> None:
    callers = {"anon": {}, **{n: env.auth(n) for n in ("viewer", "analyst", "admin")}}
    got = {(m, p, who): env.client.request(m, p, headers=h, json=body).status_code
           for m, p, body, exp in MATRIX for who, h in callers.items()}
    want = {(m, p, who): code for m, p, _, exp in MATRIX for who, code in exp.items()}
    assert got == want


def test_unknown_fields_refused(env: Env) -> None:
    h = env.auth("analyst")
    assert env.client.post("/api/v1/alerts/scan", headers=h, json={"role": "admin"}).status_code == 422
    assert env.client.post("/api/v1/alerts/abcdef0123/resolve", headers=h,
                           json={"label": "true", "username": "someone"}).status_code == 422


def test_scheduler_runs_in_the_service_and_is_optional(env: Env, template_store: Path, tmp_path: Path,
                                                       monkeypatch: Any) -> None:
    sched = env.app.state.svc.alerts.scheduler
    assert sched is not None and sched.running
    assert {j.id for j in sched.get_jobs()} == {"alert-scan", "outbox", "weekly-report"}
    # without the [reports] extra (or with the schedules switched off) alerts still work, the scheduler is off
    import crimelens.reports.scheduler as scheduler_module
    from crimelens.exceptions import MissingExtraError
    from tests.service.conftest import make_env

    def missing(*_: Any, **__: Any) -> Any:
        raise MissingExtraError("apscheduler is needed for this feature: pip install 'crimelens[reports]'")

    monkeypatch.setattr(scheduler_module, "build_scheduler", missing)
    for over in ({}, {"alert_scan_cron": ""}):
        folder = tmp_path / f"off{len(over)}"
        folder.mkdir()
        for other in make_env(template_store, folder, **over):
            assert other.app.state.svc.alerts.scheduler is None
            assert other.client.get("/api/v1/alerts", headers=other.auth("viewer")).status_code == 200
