"""Scheduled operations jobs with their schedule and run history in the store.

Each job (portal sync, drift check, retraining, reports, audit purge, retention) is a
:class:`JobSpec`: a name, a cron expression and a function of a :class:`JobContext`. The
:class:`Scheduler` keeps

* ``svc_job_schedule`` -- per job: cron, next run, last run, and a pending request (another job,
  or an operator, may ask for a run: the drift check asks for ``retrain`` with its reason);
* ``svc_job_history`` -- one row per run: start, end, duration, outcome (``ok`` / ``failed``),
  why it ran, its JSON result or its one-line error.

:meth:`Scheduler.run_due` runs every job whose time has come on the runtime's clock, so a frozen
clock drives a simulated week exactly as real time drives the service. In the service
:meth:`Scheduler.start` calls it every minute from an APScheduler background thread (one
thread: DuckDB's writer connection is used by one thread at a time; on PostgreSQL only the
worker that wins ``try_leader("ops-scheduler")`` runs jobs). Cron times are read with
APScheduler's :class:`~apscheduler.triggers.cron.CronTrigger`.

A job that raises is recorded as ``failed`` (its error's first line; the traceback goes to the
server log only), counted in ``/metrics`` (``crimelens_job_runs_total{outcome="failed"}``) and
reported to the administrators: an event on the live feed and, when
``CRIMELENS_JOBS_ADMIN_EMAIL`` is set, an email through the alert outbox.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import pandas as pd
from apscheduler.triggers.cron import CronTrigger

from crimelens.app_tables import SCHEDULE_DDL
from crimelens.exceptions import InputError
from crimelens.service import metrics as service_metrics
from crimelens.service.runtime import Runtime

log = logging.getLogger("crimelens.service.scheduler")

HISTORY_FIELDS = ("id", "name", "started_at", "finished_at", "duration_s", "outcome", "reason", "result", "error")


@dataclass(slots=True)
class JobContext:
    """What a running job gets: the time, why it runs, and a way to ask for another job."""

    now: datetime
    reason: str
    scheduler: Scheduler

    def request(self, name: str, reason: str) -> None:
        """Ask for ``name`` to run at the next tick (e.g. the drift check asking for a retrain)."""
        self.scheduler.request(name, reason)


JobFn = Callable[[JobContext], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class JobSpec:
    """A named job on a cron schedule (``minute hour day month weekday``)."""

    name: str
    cron: str
    run: JobFn
    description: str = ""


@dataclass(slots=True)
class RunRecord:
    """One run, as stored in ``svc_job_history``."""

    id: str
    name: str
    started_at: datetime
    finished_at: datetime
    duration_s: float
    outcome: str
    reason: str
    result: dict[str, Any] | None = None
    error: str | None = None


Alert = Callable[[RunRecord], None]


class Scheduler:
    """Runs the jobs of ``specs`` on ``rt``'s clock and records every run."""

    def __init__(self, rt: Runtime, specs: Sequence[JobSpec], *, timezone: str = "UTC",
                 alert: Alert | None = None) -> None:
        names = [s.name for s in specs]
        if len(set(names)) != len(names):
            raise InputError("job names must be unique")
        self.rt, self.timezone, self.alert = rt, timezone, alert
        self.specs = {s.name: s for s in specs}
        self.triggers: dict[str, CronTrigger] = {}
        for s in specs:
            try:
                self.triggers[s.name] = CronTrigger.from_crontab(s.cron, timezone=timezone)
            except ValueError as exc:
                raise InputError(f"job {s.name}: bad cron {s.cron!r}: {exc}") from exc
        self._bg: Any = None
        with rt.transaction() as tx:
            tx.lock("service-tables")
            for ddl in SCHEDULE_DDL:
                tx.execute(ddl)
            have = {str(r[0]) for r in tx.execute("SELECT name FROM svc_job_schedule")}
            now = rt.clock()
            for s in specs:
                nxt = self._next(s.name, now)
                if s.name in have:
                    tx.execute("UPDATE svc_job_schedule SET cron = ? WHERE name = ?", [s.cron, s.name])
                else:
                    tx.execute("INSERT INTO svc_job_schedule (name, cron, enabled, next_run_at) VALUES (?, ?, TRUE, ?)",
                               [s.name, s.cron, nxt])

    def _next(self, name: str, after: datetime) -> datetime | None:
        got: datetime | None = self.triggers[name].get_next_fire_time(None, after + timedelta(microseconds=1))
        return got

    # -- requests and schedule -------------------------------------------------------------
    def request(self, name: str, reason: str) -> None:
        """Run ``name`` at the next tick with ``reason`` (requests for one job merge)."""
        if name not in self.specs:
            raise InputError(f"no job named {name!r}; jobs: {', '.join(self.specs)}")
        row = self.rt.query("SELECT requested FROM svc_job_schedule WHERE name = ?", [name])
        prior = str(row[0][0]) if row and row[0][0] else ""
        merged = reason if not prior or reason in prior.split("; ") else f"{prior}; {reason}"
        self.rt.write("UPDATE svc_job_schedule SET requested = ? WHERE name = ?", [merged, name])

    def schedule(self) -> list[dict[str, Any]]:
        """Every job's cron, next and last run, and pending request."""
        rows = self.rt.query("SELECT name, cron, enabled, next_run_at, last_run_at, requested FROM svc_job_schedule "
                             "ORDER BY name")
        keys = ("name", "cron", "enabled", "next_run_at", "last_run_at", "requested")
        return [dict(zip(keys, r, strict=True)) for r in rows if r[0] in self.specs]

    # -- running ---------------------------------------------------------------------------
    def run_due(self, now: datetime | None = None) -> list[RunRecord]:
        """Run (in the order the jobs were given) every job that is due or requested at ``now``;
        a request made during this tick (by an earlier job) runs in the same tick."""
        now = now or self.rt.clock()
        done: list[RunRecord] = []
        for name in self.specs:
            row = self.rt.query("SELECT enabled, next_run_at, requested FROM svc_job_schedule WHERE name = ?", [name])
            if not row or not row[0][0]:
                continue
            nxt, requested = row[0][1], row[0][2]
            reasons = []
            if nxt is not None and pd.Timestamp(nxt) <= pd.Timestamp(now):
                reasons.append("schedule")
            if requested:
                reasons.append(str(requested))
            if reasons:
                done.append(self.run(name, "; ".join(reasons), now=now, scheduled=bool(nxt is not None
                                                                                      and "schedule" in reasons)))
        return done

    def run(self, name: str, reason: str = "manual", *, now: datetime | None = None,
            scheduled: bool = False) -> RunRecord:
        """Run ``name`` now, record it, alert on failure; never raises for the job's own errors."""
        spec = self.specs.get(name)
        if spec is None:
            raise InputError(f"no job named {name!r}; jobs: {', '.join(self.specs)}")
        now = now or self.rt.clock()
        run_id = uuid.uuid4().hex
        self.rt.write("UPDATE svc_job_schedule SET requested = NULL, last_run_at = ? WHERE name = ?", [now, name])
        if scheduled:
            self.rt.write("UPDATE svc_job_schedule SET next_run_at = ? WHERE name = ?", [self._next(name, now), name])
        self.rt.write("INSERT INTO svc_job_history (id, name, started_at, outcome, reason) VALUES (?, ?, ?, ?, ?)",
                      [run_id, name, now, "running", reason[:500]])
        t0 = time.perf_counter()
        result: dict[str, Any] | None = None
        error: str | None = None
        try:
            result = spec.run(JobContext(now, reason, self))
            outcome = "ok"
        except Exception as exc:  # a job must never stop the scheduler; detail to the server log only
            log.exception("job %s failed", name)
            outcome, error = "failed", (str(exc).splitlines()[0] if str(exc) else type(exc).__name__)[:500]
        seconds = time.perf_counter() - t0
        finished = now + timedelta(seconds=seconds)
        self.rt.write("UPDATE svc_job_history SET finished_at = ?, duration_s = ?, outcome = ?, result = ?, "
                      "error = ? WHERE id = ?",
                      [finished, seconds, outcome, json.dumps(result, default=str) if result is not None else None,
                       error, run_id])
        rec = RunRecord(run_id, name, now, finished, seconds, outcome, reason, result, error)
        service_metrics.job_finished(name, outcome, seconds)
        if outcome != "ok" and self.alert is not None:
            try:
                self.alert(rec)
            except Exception:  # the alert path failing must not hide the job's failure, which is recorded
                log.exception("alerting admins about job %s failed", name)
        return rec

    def history(self, name: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recent runs, oldest first (of ``name`` only when given)."""
        sql = f"SELECT {', '.join(HISTORY_FIELDS)} FROM svc_job_history"  # noqa: S608 -- identifiers from a fixed list; values bound
        params: list[Any] = []
        if name is not None:
            sql += " WHERE name = ?"
            params.append(name)
        sql += " ORDER BY started_at DESC, finished_at DESC LIMIT ?"
        rows = [dict(zip(HISTORY_FIELDS, r, strict=True)) for r in self.rt.query(sql, [*params, limit])]
        for r in rows:
            r["result"] = json.loads(r["result"]) if r["result"] else None
        return rows[::-1]

    # -- the service's background thread -----------------------------------------------------
    def start(self, interval_s: float = 60.0) -> None:
        """Tick every ``interval_s`` on an APScheduler background thread."""
        from apscheduler.schedulers.background import BackgroundScheduler

        bg = BackgroundScheduler(timezone=self.timezone)
        bg.add_job(self.run_due, "interval", seconds=interval_s, id="ops-tick", max_instances=1, coalesce=True)
        bg.start()
        self._bg = bg

    def stop(self) -> None:
        """Stop the background thread (waits for a running job)."""
        if self._bg is not None:
            self._bg.shutdown(wait=True)
            self._bg = None


def admin_alert(rt: Runtime, recipients: Sequence[str]) -> Alert:
    """Tell administrators of a failed run: a ``job.failed`` live-feed event and, when there are
    ``recipients``, an email queued in the alert outbox (retried until delivered)."""

    def alert(rec: RunRecord) -> None:
        msg = {"job": rec.name, "run_id": rec.id, "started_at": rec.started_at.isoformat(), "error": rec.error,
               "reason": rec.reason}
        rt.events.publish("job.failed", msg)
        if recipients:
            from crimelens.notify.outbox import Outbox
            from crimelens.notify.tables import AlertTables
            from crimelens.service.alerting import locked_store

            store = locked_store(rt)
            outbox = Outbox(AlertTables(store.con, lock=store.lock, create=False))
            outbox.enqueue("email", ",".join(recipients),
                           {"subject": f"[crimelens] job {rec.name} failed",
                            "text": f"Job {rec.name} failed at {rec.started_at.isoformat()} ({rec.reason}).\n"
                                    f"Error: {rec.error}\nRun id: {rec.id}\n"},
                           now=pd.Timestamp(rec.started_at))

    return alert
