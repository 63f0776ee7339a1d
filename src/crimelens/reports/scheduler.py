"""Scheduled work with APScheduler: the alert scan, outbox retries and the weekly report email.

Three jobs, on cron-like settings (``CRIMELENS_ALERT_SCAN_CRON``, ``CRIMELENS_REPORT_CRON``,
``CRIMELENS_OUTBOX_INTERVAL_S``, ``CRIMELENS_SCHEDULE_TIMEZONE``):

* ``alert-scan`` -- :meth:`AlertMonitor.scan` (default 06:15 daily);
* ``outbox`` -- :meth:`Dispatcher.run_once`, retrying deliveries that failed (default every minute);
* ``weekly-report`` -- the CompStat report as PDF, saved under ``report_dir`` and emailed through
  the outbox (default 07:00 on Mondays).

Jobs run one at a time on a single worker thread (a DuckDB connection must not be used by two
threads at once), never overlap themselves (``max_instances=1``) and coalesce missed runs. The
service starts the scheduler (``scheduler.start()``) and stops it on shutdown.
"""

from __future__ import annotations

import base64
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from crimelens.exceptions import CrimelensError, InputError, require_extra
from crimelens.notify.monitor import AlertMonitor
from crimelens.reports.context import ReportSpec, build_context
from crimelens.reports.render import write_report

log = logging.getLogger("crimelens.reports")


def _split(text: str) -> tuple[str, ...]:
    return tuple(t.strip() for t in text.split(",") if t.strip())


@dataclass(frozen=True, kw_only=True)
class ScheduleConfig:
    """When the jobs run and where the weekly report goes."""

    alert_scan_cron: str = "15 6 * * *"
    report_cron: str = "0 7 * * MON"
    outbox_interval_s: int = 60
    timezone: str = "UTC"
    report_dir: Path = Path("reports")
    report_email_to: tuple[str, ...] = ()

    @classmethod
    def from_settings(cls, settings: Any) -> ScheduleConfig:
        """From :class:`crimelens.settings.Settings`."""
        return cls(alert_scan_cron=settings.alert_scan_cron, report_cron=settings.report_cron,
                   outbox_interval_s=settings.outbox_interval_s, timezone=settings.schedule_timezone,
                   report_dir=Path(settings.report_dir), report_email_to=_split(settings.report_email_to))


def email_report(monitor: AlertMonitor, spec: ReportSpec, *, out_dir: Path, recipients: tuple[str, ...],
                 now: pd.Timestamp | None = None) -> Path:
    """Render ``spec`` as PDF into ``out_dir``, enqueue it by email to ``recipients``, and dispatch."""
    ctx = build_context(monitor.store, spec, now=now)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = ctx["period"].split(" to ")[-1]
    path = write_report(ctx, out_dir / f"{spec.type}-{stamp}.pdf")
    if recipients:
        payload = {"subject": f"[crimelens] {ctx['title']}",
                   "text": f"{ctx['title']}\nPeriod {ctx['period']}\n\nThe report is attached ({path.name}).\n"
                           + "\n".join(f"  {c}" for c in ctx["commands"]),
                   "attachments": [{"filename": path.name, "content_type": "application/pdf",
                                    "data_b64": base64.b64encode(path.read_bytes()).decode("ascii")}]}
        monitor.outbox.enqueue("email", ",".join(recipients), payload, now=now)
        monitor.dispatcher.run_once(now)
    return path


def build_scheduler(config: ScheduleConfig, monitor: AlertMonitor, *, report: ReportSpec | None = None) -> Any:
    """A background scheduler with the three jobs (not started)."""
    require_extra("apscheduler", "reports")
    from apscheduler.executors.pool import ThreadPoolExecutor
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    try:
        scan_at = CronTrigger.from_crontab(config.alert_scan_cron, timezone=config.timezone)
        report_at = CronTrigger.from_crontab(config.report_cron, timezone=config.timezone)
    except ValueError as exc:
        raise InputError(f"bad cron expression: {exc}") from exc
    sched = BackgroundScheduler(executors={"default": ThreadPoolExecutor(1)}, timezone=config.timezone,
                                job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": 3600})
    spec = report or ReportSpec(type="compstat")

    def scan() -> None:
        try:
            res = monitor.scan()
            log.info("alert scan: %d new, %d updated, %d repeats held back", len(res.new), len(res.updated),
                     res.suppressed)
        except CrimelensError:
            log.exception("scheduled alert scan failed")

    def outbox() -> None:
        rep = monitor.dispatcher.run_once()
        if rep.sent or rep.failed:
            log.info("outbox: %s", rep.to_dict())

    def weekly() -> None:
        try:
            path = email_report(monitor, spec, out_dir=config.report_dir, recipients=config.report_email_to)
            log.info("weekly report written to %s", path)
        except (CrimelensError, OSError):
            log.exception("scheduled report failed")

    sched.add_job(scan, scan_at, id="alert-scan", name="alert scan", replace_existing=True)
    sched.add_job(outbox, IntervalTrigger(seconds=config.outbox_interval_s, timezone=config.timezone),
                  id="outbox", name="retry pending deliveries", replace_existing=True)
    sched.add_job(weekly, report_at, id="weekly-report", name="weekly CompStat report", replace_existing=True)
    return sched
