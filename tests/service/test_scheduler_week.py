"""A week of scheduled operation under a frozen clock, on a real DuckDB store and a real registry:
what ran, what was retrained and why, what was promoted; a failing job is in the history and
alerts the administrators; every published forecast names its model version.

Set CRIMELENS_WEEK_LOG=path to write the week's log (docs/operations.md shows one)."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from crimelens.ingest import ingest_file
from crimelens.registry import ModelRegistry
from crimelens.service.ops_jobs import OpsConfig, OpsJobs
from crimelens.service.runtime import Runtime
from crimelens.service.scheduler import JobSpec, Scheduler, admin_alert
from crimelens.sources.mapping import load_preset
from crimelens.store import connect
from tests.conftest import CHICAGO_HEADER, TEST_KEY
from tests.service.conftest import chicago_rows, service_settings, write_rows

MONDAY = datetime(2024, 7, 1, tzinfo=UTC)  # the day after the history ends (tests.service.conftest.END)
ADMIN = "ops-admin@example.org"


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def interleaved(rows: list[dict[str, str]]) -> list[dict[str, str]]:
    """Districts as a 2 × 2 checkerboard of ~1 km squares, so every district holds a share of the
    hot spots (a synthetic city whose selection can pass the bias audit)."""
    for r in rows:
        iy, ix = int((float(r["Latitude"]) - 41.6) * 111), int((float(r["Longitude"]) + 87.9) * 83)
        r["District"] = f"D{1 + ix % 2 + 2 * (iy % 2)}"
    return rows


class Portal:
    """A portal publishing each day's incidents after midnight; from Wednesday on, a new pattern
    (narcotics around one new centre); down for one call on Tuesday afternoon."""

    def __init__(self, rt: Runtime, folder: Path) -> None:
        self.rt, self.folder, self.loaded, self.calls = rt, folder, MONDAY - timedelta(days=1), 0

    def __call__(self, now: datetime) -> dict[str, Any]:
        self.calls += 1
        if now == MONDAY + timedelta(days=1, hours=13):
            raise ConnectionError("portal answered 503 Service Unavailable")
        day = now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
        if day <= self.loaded:
            return {"new_rows": 0}
        drifted = day >= MONDAY + timedelta(days=1)
        rows = interleaved(chicago_rows(150 if drifted else 18, seed=int(day.timestamp()) % 10_000,
                            start_id=30_000_000 + (day - MONDAY).days * 1000 + 100_000, days=1,
                            end=day + timedelta(days=1)))
        if drifted:
            for r in rows:
                r.update({"Primary Type": "NARCOTICS", "Description": "POSS: CANNABIS", "IUCR": "1811",
                          "FBI Code": "18"})
        path = write_rows(self.folder / f"portal-{day.date()}.csv", rows, CHICAGO_HEADER)
        with self.rt.write_lock:
            report = ingest_file(self.rt.store, path, key=TEST_KEY, mapping=load_preset("chicago"),
                                 source=f"portal-{day:%Y%m%d}")
        self.loaded = day
        return {"day": day.date().isoformat(), "new_rows": int(report.stored)}


@pytest.fixture
def week(tmp_path: Path) -> dict[str, Any]:
    db = tmp_path / "ops.duckdb"
    store = connect(str(db))
    ingest_file(store, write_rows(tmp_path / "history.csv", interleaved(chicago_rows(6000, seed=11, days=365)),
                                  CHICAGO_HEADER), key=TEST_KEY, mapping=load_preset("chicago"))
    store.close()
    clock = Clock(MONDAY)
    rt = Runtime(service_settings(db), clock=clock)
    registry = ModelRegistry(tmp_path / "models")
    jobs = OpsJobs(rt, registry, OpsConfig(cell_m=500.0), portal_sync=Portal(rt, tmp_path))
    sched = Scheduler(rt, jobs.specs(), alert=admin_alert(rt, [ADMIN]))
    log: list[str] = []
    while clock.now <= MONDAY + timedelta(days=7, hours=8):
        for rec in sched.run_due():
            log.append(describe(rec.started_at, rec.name, rec.reason, rec.outcome, rec.result, rec.error))
        clock.now += timedelta(hours=1)
    if os.environ.get("CRIMELENS_WEEK_LOG"):
        Path(os.environ["CRIMELENS_WEEK_LOG"]).write_text("\n".join(log) + "\n", encoding="utf-8")
    yield {"rt": rt, "sched": sched, "registry": registry, "jobs": jobs, "log": log}
    rt.close()


def describe(at: datetime, name: str, reason: str, outcome: str, result: dict[str, Any] | None,
             error: str | None) -> str:
    """One line of the week's log."""
    head = f"{at:%a %d %H:%M} {name:<12} {outcome:<6}"
    if error:
        return f"{head} ({reason}) error: {error}"
    r = result or {}
    if name == "retrain":
        if r.get("skipped"):
            return f"{head} ({reason}) skipped: {r['note']}"
        m = ", ".join(f"{k} {v:.3f}" for k, v in r["metrics"].items())
        return (f"{head} ({reason}) -> {r['version']} (parent {r['parent']}; {m}; bias audit {r['audit']}); "
                f"{'PROMOTED' if r['promoted'] else 'kept as candidate'}: {'; '.join(r['decision'])}")
    if name == "drift-check":
        score = r.get("score")
        return (f"{head} production {r.get('version')}: PSI {r.get('status')}"
                + (f" ({', '.join(r['psi_alert'])})" if r.get("psi_alert") else "")
                + (f", hit rate {score:.3f} vs baseline {r['baseline']:.3f}" if score is not None and r.get("baseline")
                   else "") + (f" -> retrain: {'; '.join(r['triggered'])}" if r.get("triggered") else ""))
    return f"{head} {json.dumps(r, default=str)}"


def test_week_of_operation(week: dict[str, Any]) -> None:
    sched, registry, rt = week["sched"], week["registry"], week["rt"]
    hist = sched.history(limit=1000)
    by_name: dict[str, list[dict[str, Any]]] = {}
    for h in hist:
        by_name.setdefault(h["name"], []).append(h)
    # what ran: every job on its schedule (portal hourly, daily jobs 8 times, weekly jobs twice)
    assert len(by_name["portal-sync"]) == 7 * 24 + 8  # first fire after the start: 01:00
    for daily in ("audit-purge", "retention", "drift-check"):
        assert len(by_name[daily]) == 8
    assert len(by_name["reports"]) == 2
    assert all(h["duration_s"] is not None and h["finished_at"] >= h["started_at"] for h in hist)
    # the failed portal call is in the history, once, and the admins were told
    failed = [h for h in hist if h["outcome"] == "failed"]
    assert [(h["name"], h["error"]) for h in failed] == [("portal-sync", "portal answered 503 Service Unavailable")]
    mails = rt.query("SELECT target, payload FROM alert_outbox")
    assert [(t, json.loads(p)["subject"]) for t, p in mails] == [(ADMIN, "[crimelens] job portal-sync failed")]
    # what was retrained and why: first on schedule, then on drift (PSI on category), each a candidate first
    retrains = [h for h in by_name["retrain"] if not h["result"].get("skipped")]
    assert retrains[0]["reason"] == "schedule"
    drift = [h for h in retrains[1:] if "drift: PSI" in h["reason"]]
    assert drift, [h["reason"] for h in by_name["retrain"]]
    assert "category" in drift[0]["reason"]
    versions = registry.versions("forecast-retro_count")
    assert [v.version for v in versions] == [f"v{i + 1}" for i in range(len(retrains))]
    # lineage and promotion: each candidate's parent is the production of its day; it was promoted
    # exactly when its bias audit passed and its backtest was not worse than production's
    production = None
    for h in retrains:
        r = h["result"]
        assert r["parent"] == production
        assert r["promoted"] == (r["audit"] == "ok" and not any(" is worse than" in d for d in r["decision"]))
        if r["promoted"]:
            production = r["version"]
    assert production is not None and registry.aliases("forecast-retro_count")["production"] == production
    promoted = [h["result"]["version"] for h in retrains if h["result"]["promoted"]]
    history = registry.history("forecast-retro_count")
    assert [h["to"] for h in history if h["alias"] == "production"] == promoted
    assert any(not h["result"]["promoted"] for h in retrains)  # the audit held some back
    # the drift check read the data: no PSI alert before drifted data arrived, an alert after
    checks = by_name["drift-check"]
    assert checks[0]["result"]["status"] != "alert" or checks[0]["result"]["version"] is None
    assert any(c["result"].get("psi_alert") for c in checks[2:])
    # every published forecast names the model version it came from
    pubs = rt.query("SELECT payload FROM svc_products WHERE kind = 'forecast'")
    assert pubs and all(json.loads(p)["parameters"]["model_version"] in promoted for (p,) in pubs)


def test_a_raising_job_is_recorded_and_alerts(tmp_path: Path) -> None:
    db = tmp_path / "j.duckdb"
    connect(str(db)).close()
    clock = Clock(MONDAY)
    rt = Runtime(service_settings(db), clock=clock)
    told: list[str] = []
    try:
        def boom(_: Any) -> dict[str, Any]:
            raise RuntimeError("disk full\nsecond line with detail")

        from fastapi import FastAPI

        metrics = pytest.importorskip("crimelens.service.metrics").install(FastAPI(), rt)
        sched = Scheduler(rt, [JobSpec("boom", "0 * * * *", boom)], alert=lambda r: told.append(r.name))
        assert sched.run_due() == [] or True  # 00:00 is the first fire time
        clock.now += timedelta(hours=1)
        rec = sched.run_due()
        assert rec and rec[-1].outcome == "failed" and rec[-1].error == "disk full"
        assert sched.history("boom")[-1]["outcome"] == "failed" and told[-1] == "boom"
        text = metrics.exposition().decode()
        assert 'crimelens_job_runs_total{kind="boom",outcome="failed"}' in text
        with pytest.raises(ValueError, match="bad cron"):
            Scheduler(rt, [JobSpec("x", "61 * * * *", boom)])
    finally:
        rt.close()


def test_service_starts_the_jobs_when_enabled(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from crimelens.service.app import create_app

    db = tmp_path / "s.duckdb"
    connect(str(db)).close()
    app = create_app(service_settings(db, jobs_enabled=True, registry_dir=tmp_path / "models"))
    with TestClient(app):
        sched = app.state.ops_scheduler
        assert sched is not None and sched._bg is not None
        assert {r["name"] for r in sched.schedule()} == {"portal-sync", "audit-purge", "retention", "drift-check",
                                                         "retrain", "reports"}
    assert sched._bg is None  # stopped with the app
