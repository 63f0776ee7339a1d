"""Upload → background job with progress → live feed; reads during a load (DUR-05)."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

from tests.conftest import CHICAGO_HEADER
from tests.service.conftest import Env, chicago_rows, write_rows


def upload(env: Env, h: dict[str, str], path: Path, **form: str) -> dict[str, Any]:
    r = env.client.post("/api/v1/ingest", headers=h, files={"file": (path.name, path.read_bytes(), "text/csv")},
                        data=form)
    assert r.status_code == 202, r.text
    out: dict[str, Any] = r.json()
    return out


def wait(env: Env, job_id: str, h: dict[str, str], timeout: float = 60) -> dict[str, Any]:
    end = time.time() + timeout
    while time.time() < end:
        j: dict[str, Any] = env.client.get(f"/api/v1/jobs/{job_id}", headers=h).json()
        if j["status"] in ("done", "failed"):
            return j
        time.sleep(0.05)
    raise AssertionError("job did not finish")


def test_upload_runs_as_job_and_feeds_the_live_stream(env: Env, tmp_path: Path) -> None:
    h = env.auth("analyst")
    before = env.client.get("/api/v1/aggregates/categories", headers=h).json()
    path = write_rows(tmp_path / "new.csv", chicago_rows(25, seed=3, start_id=77_000_000), CHICAGO_HEADER)
    job = upload(env, h, path, preset="chicago")
    assert job["status"] in ("queued", "running", "done") and job["owner"] == "analyst"
    done = wait(env, job["id"], h)
    assert done["status"] == "done" and done["progress"] == 25
    assert done["result"]["stored"] == 25 and done["result"]["read"] == 25
    after = env.client.get("/api/v1/aggregates/categories", headers=h).json()  # cache invalidated by the load
    assert sum(r["count"] for r in after["rows"]) == sum(r["count"] for r in before["rows"]) + 25
    # the feed replays retained events after Last-Event-ID (what a reconnecting dashboard gets)
    with env.client.stream("GET", "/api/v1/events?max_events=1&heartbeat_s=0.1",
                           headers=h | {"Last-Event-ID": "0"}) as r:
        assert r.headers["content-type"].startswith("text/event-stream")
        text = "".join(r.iter_text())
    data = json.loads(next(line[5:] for line in text.splitlines() if line.startswith("data:")))
    assert "event: incidents" in text and data["stored"] == 25
    ids = {i["incident_id"] for i in data["items"]}
    assert "77000000" in ids and all("address" not in i for i in data["items"])
    # the same file again: skipped, nothing new announced
    again = wait(env, upload(env, h, path, preset="chicago")["id"], h)
    assert again["result"]["skipped"] is True


def test_scoped_user_sees_only_their_sources_in_the_feed(env: Env, tmp_path: Path) -> None:
    path = write_rows(tmp_path / "new.csv", chicago_rows(5, seed=4, start_id=78_000_000), CHICAGO_HEADER)
    wait(env, upload(env, env.auth("analyst"), path, preset="chicago")["id"], env.auth("admin"))
    with env.client.stream("GET", "/api/v1/events?max_events=1&heartbeat_s=0.05",
                           headers=env.auth("scoped") | {"Last-Event-ID": "0"}) as r:
        chunks = []
        for chunk in r.iter_text():
            chunks.append(chunk)
            if "heartbeat" in "".join(chunks):
                break
    assert "78000000" not in "".join(chunks)


def test_bad_upload_fails_the_job_with_a_clear_reason(env: Env, tmp_path: Path) -> None:
    h = env.auth("analyst")
    bad = tmp_path / "bad.csv"
    bad.write_text("foo,bar\n1,2\n")
    job = wait(env, upload(env, h, bad)["id"], h)
    assert job["status"] == "failed" and job["error"] and "Traceback" not in job["error"]
    r = env.client.post("/api/v1/ingest", headers=h, files={"file": ("x.csv", b"a\n")}, data={"preset": "nope"})
    assert r.status_code == 422


def test_dur05_reads_during_a_load_see_all_or_nothing(env: Env, tmp_path: Path) -> None:
    h = env.auth("analyst")
    base = sum(r["count"] for r in env.client.get("/api/v1/aggregates/categories", headers=h).json()["rows"])
    path = write_rows(tmp_path / "big.csv", chicago_rows(20_000, seed=5, start_id=80_000_000), CHICAGO_HEADER)
    job = upload(env, h, path, preset="chicago")
    seen: list[int] = []
    errors: list[int] = []

    def reader() -> None:
        for _ in range(15):
            r = env.client.get("/api/v1/incidents?limit=1&from=2000-01-01", headers=h)
            if r.status_code != 200:
                errors.append(r.status_code)
            totals = env.app.state.svc.rt.query("SELECT count(*) FROM incidents WHERE source = 'chicago'")
            seen.append(int(totals[0][0]))

    threads = [threading.Thread(target=reader) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = wait(env, job["id"], h, timeout=120)
    assert done["status"] == "done" and errors == []
    assert set(seen) <= {2400, 22_400}  # never a partial load
    total = sum(r["count"] for r in env.client.get("/api/v1/aggregates/categories", headers=h).json()["rows"])
    assert total == base + 20_000 - done["result"]["quarantined"] - _non_crime(done["result"])
    assert env.app.state.svc.audit.verify()["ok"]


def _non_crime(report: dict[str, Any]) -> int:
    return 0
