"""Alerts in the service: the monitor on the writer connection, evaluation on upload, the scheduler.

The service builds one :class:`~crimelens.notify.monitor.AlertMonitor` on its single writer
connection. DuckDB connections must not be used by two threads at once, and the monitor is
called from request threads (acknowledge, scan, rules), the ingest job thread (evaluation on
arrival) and the scheduler's thread, so:

* every statement the monitor runs goes through :class:`LockedStore` / the alert tables, under
  the runtime's ``write_lock`` (the lock every writer statement of the service takes);
* whole monitor operations (a scan, an arrival, an acknowledgement, a dispatch round) are
  serialised by the monitor's own lock, so de-duplication and the incremental state stay
  consistent. Lock order is always monitor lock, then write lock.

Alert events reach the live feed through ``monitor.feed.subscribe(rt.events.publish)``. The
scheduler needs the ``[reports]`` extra (APScheduler); without it alerts work and it is off.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from datetime import date
from typing import Any

import pandas as pd

from crimelens.alerts.feedback import precision_over_time
from crimelens.alerts.model import Alert
from crimelens.alerts.rules import RuleBook
from crimelens.exceptions import CrimelensError, InputError
from crimelens.filters import IncidentFilter
from crimelens.notify.monitor import _ID_COLUMNS, AlertMonitor, MonitorResult
from crimelens.notify.outbox import Dispatcher, DispatchReport, Outbox
from crimelens.notify.tables import AlertTables
from crimelens.service import products
from crimelens.service.runtime import Runtime
from crimelens.service.views import Locked
from crimelens.store.duckdb import DuckDBStore

log = logging.getLogger("crimelens.service.alerts")
RULES_KIND = "alert-rules"


class LockedStore(Locked, DuckDBStore):
    """The DuckDB store's read methods on the service's writer cursor."""

    def __init__(self, rt: Runtime) -> None:  # deliberately skips the parent's connect
        self.url = rt.store.url
        self.read_only = False
        self.con = rt.writer
        self.lock = rt.write_lock


def locked_store(rt: Runtime) -> Any:
    """The store the alert monitor reads and writes through: the writer connection, under the write lock."""
    if rt.postgres:
        from crimelens.service.locked_pg import LockedPgStore

        return LockedPgStore(rt)
    return LockedStore(rt)


class _LockedDispatcher(Dispatcher):
    lock: threading.RLock

    def run_once(self, now: pd.Timestamp | None = None, *, limit: int = 100) -> DispatchReport:
        with self.lock:
            return super().run_once(now, limit=limit)


class ServiceMonitor(AlertMonitor):
    """An :class:`AlertMonitor` whose operations are serialised (see the module docstring)."""

    def __init__(self, store: Any, **kw: Any) -> None:
        super().__init__(store, **kw)
        self.lock = threading.RLock()
        self._tables = AlertTables(store.con, lock=store.lock)
        dispatcher = _LockedDispatcher(Outbox(self._tables), smtp=self.smtp, webhook_secret=self.webhook_secret)
        dispatcher.lock = self.lock
        self._dispatcher = dispatcher

    def scan(self, **kw: Any) -> MonitorResult:
        with self.lock:
            return super().scan(**kw)

    def warm_up(self) -> Any:
        with self.lock:
            return super().warm_up()

    def on_incidents(self, incidents: pd.DataFrame, **kw: Any) -> MonitorResult:
        with self.lock:
            return super().on_incidents(incidents, **kw)

    def process(self, candidates: list[Alert], **kw: Any) -> MonitorResult:
        with self.lock:
            return super().process(candidates, **kw)

    def acknowledge(self, alert_id: str, **kw: Any) -> Alert:
        with self.lock:
            return super().acknowledge(alert_id, **kw)

    def set_rules(self, book: RuleBook) -> None:
        """Use ``book`` from now on (the incremental state is rebuilt with its rules)."""
        with self.lock:
            self.rules = book
            self._evaluator = None
            super().warm_up()


class Alerting:
    """The service's alerting: monitor, live-feed wiring, rule storage, scheduler, and queries."""

    def __init__(self, rt: Runtime) -> None:
        self.rt = rt
        store = locked_store(rt)
        stored = products.latest(store, RULES_KIND).get("rulebook")
        over = {"rules": RuleBook.from_dict(stored["payload"], source="api")} if stored else {}
        self.rules_source = "api" if stored else ("file" if rt.settings.alert_rules else "none")
        monitor = ServiceMonitor.from_settings(store, rt.settings, **over)
        assert isinstance(monitor, ServiceMonitor)
        self.monitor: ServiceMonitor = monitor
        self.monitor.warm_up()
        self.monitor.feed.subscribe(rt.events.publish)
        self.scheduler: Any = None

    # -- lifecycle ------------------------------------------------------------------------
    def start(self) -> None:
        """Start the scheduled scan, outbox retries and weekly report (off without APScheduler)."""
        s = self.rt.settings
        if not (s.alert_scan_cron.strip() and s.report_cron.strip()):
            log.info("alert scheduler off: alert_scan_cron or report_cron is empty")
            return
        if not self.rt.try_leader("alert-scheduler"):
            log.info("alert scheduler runs in another worker")
            return
        try:
            from crimelens.reports.scheduler import ScheduleConfig, build_scheduler

            sched = build_scheduler(ScheduleConfig.from_settings(s), self.monitor)
            sched.start()
        except (ImportError, CrimelensError) as exc:
            log.warning("alert scheduler off: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
            return
        self.scheduler = sched
        log.info("alert scheduler started (scan %r, report %r)", s.alert_scan_cron, s.report_cron)

    def stop(self) -> None:
        """Stop the scheduler (waits for a running job, which uses the writer connection)."""
        if self.scheduler is not None:
            self.scheduler.shutdown(wait=True)
            self.scheduler = None

    # -- evaluation on arrival ---------------------------------------------------------------
    def on_batch(self, batch_id: str) -> MonitorResult | None:
        """Evaluate a stored batch's incidents; never raises (a failure is logged, the load stands)."""
        try:
            cols = ", ".join(f'"{c}"' for c in _ID_COLUMNS)
            frame = self.monitor.store.execute(f"SELECT {cols} FROM incidents WHERE batch_id = ?",  # noqa: S608 -- identifiers come from a fixed column list; values are bound parameters
                                               [batch_id])
            out = self.monitor.on_incidents(frame)
        except Exception:  # alerting must never break a load
            log.exception("alert evaluation of batch %s failed", batch_id)
            return None
        log.info("batch %s evaluated in %.3f s: %d new, %d updated alerts", batch_id, out.seconds, len(out.new),
                 len(out.updated))
        return out

    # -- queries --------------------------------------------------------------------------
    def page(self, *, status: str | None, areas: Sequence[str], categories: Sequence[str], start: date | None,
             end: date | None, limit: int, offset: int) -> tuple[list[Alert], int]:
        """Alerts newest first whose window overlaps ``[start, end)``, and how many match in all."""
        conds: list[str] = ["TRUE"]
        params: list[Any] = []
        for cond, value in (("status = ?", status), ("window_end > ?", start), ("window_start < ?", end)):
            if value is not None:
                conds.append(cond)
                params.append(value)
        for column, values in (("area", areas), ("category", categories)):
            if values:
                conds.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        where = " AND ".join(conds)
        tables = self.monitor.tables
        total = int(tables.query(f"SELECT count(*) AS n FROM alerts WHERE {where}", params)["n"].iloc[0])  # noqa: S608 -- fixed SQL; values are bound parameters
        rows = tables.query(f"SELECT payload FROM alerts WHERE {where} "  # noqa: S608 -- fixed SQL; values are bound parameters
                            "ORDER BY created_at DESC, alert_id LIMIT ? OFFSET ?", [*params, limit, offset])
        return [Alert.from_dict(_json(p)) for p in rows["payload"]], total

    def get(self, alert_id: str) -> Alert | None:
        """One alert by id (or a unique prefix of 6+ characters)."""
        return self.monitor.tables.get(alert_id)

    def set_status(self, alert_id: str, *, resolve: bool, label: str | None, note: str | None,
                   username: str | None) -> Alert | None:
        """Acknowledge or resolve; None when there is no such alert."""
        if self.get(alert_id) is None:
            return None
        return self.monitor.acknowledge(alert_id, resolve=resolve, label=label, note=note, username=username)

    def precision(self, period: str, by: str | None) -> pd.DataFrame:
        """Precision of labelled alerts per period (from analysts' true/false-alarm feedback)."""
        return precision_over_time(self.monitor.tables.feedback(), period=period, by=by)

    def rules(self) -> dict[str, Any]:
        """The rule book in use and where it came from."""
        return {**self.monitor.rules.to_dict(), "source": self.rules_source}

    def set_rules(self, data: dict[str, Any]) -> dict[str, Any]:
        """Validate, store and apply a rule book; :class:`InputError` (nothing changed) when invalid."""
        try:
            book = RuleBook.from_dict(data, source="api")
        except (TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, InputError):
                raise
            raise InputError(f"invalid rule book: {exc}") from exc
        with self.rt.transaction() as tx:  # one stored rule book: the last one put
            tx.lock("alert-rules")
            tx.execute("DELETE FROM svc_products WHERE kind = ?", [RULES_KIND])
            products.publish(tx, RULES_KIND, "rulebook", book.to_dict(), at=self.rt.clock())
        self.monitor.set_rules(book)
        self.rules_source = "api"
        return self.rules()

    def scan(self, *, end: date | None, flt: IncidentFilter | None) -> MonitorResult:
        """A full scan now (windows ending at ``end``, default after the last day with data)."""
        return self.monitor.scan(end=end, flt=flt)


def _json(text: str) -> dict[str, Any]:
    import json

    out: dict[str, Any] = json.loads(text)
    return out
