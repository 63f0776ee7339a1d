"""The alert monitor: the store's counts in, alerts stored, delivered and published.

:class:`AlertMonitor` is the application layer between a store, the pure alert core and the
delivery adapters. :meth:`~AlertMonitor.scan` runs a full scan (the scheduler calls it, so does
``crimelens alerts scan``); :meth:`~AlertMonitor.on_incidents` evaluates a batch of new incidents
incrementally (the API upload calls it after the batch is stored; a stream consumer can too).
Both go through :meth:`~AlertMonitor.process`: de-duplication against recent alerts, storage,
one outbox delivery per matching subscription channel, a live-feed event, and an immediate
dispatch attempt -- so an alert is out within moments of the incidents behind it, and a failed
delivery waits in the outbox instead of being lost.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from crimelens.alerts.dedup import DedupResult, deduplicate
from crimelens.alerts.detect import ScanResult, SpikeDetector, attach_incidents
from crimelens.alerts.incremental import ArrivalEvaluator
from crimelens.alerts.model import Alert
from crimelens.alerts.panel import CountPanel, check_level, local_midnight
from crimelens.alerts.rules import RuleBook, Subscription
from crimelens.alerts.series import evaluate_rules
from crimelens.filters import IncidentFilter
from crimelens.notify.email import Attachment, SmtpConfig
from crimelens.notify.feed import AlertFeed
from crimelens.notify.outbox import Dispatcher, DispatchReport, Outbox
from crimelens.notify.tables import AlertTables

_ID_COLUMNS = ("source", "incident_id", "occurred_at", "category", "category_group", "ucr_part1",
               "crimes_against", "x", "y", "lat", "lon", "beat", "district", "ward", "community_area",
               "neighbourhood", "lsoa", "h3_7", "h3_8", "h3_9", "time_precision", "batch_id")


@dataclass(slots=True)
class MonitorResult:
    """What a scan or an arrival produced."""

    new: list[Alert] = field(default_factory=list)
    updated: list[Alert] = field(default_factory=list)
    suppressed: int = 0
    scan: ScanResult | None = None
    dispatch: DispatchReport | None = None
    seconds: float = 0.0

    @property
    def alerts(self) -> list[Alert]:
        """New and updated alerts."""
        return [*self.new, *self.updated]


def alert_email(alert: Alert, action: str) -> dict[str, Any]:
    """The outbox payload of an alert email (subject and plain text)."""
    lines = [alert.headline(), "",
             f"What:     {alert.kind} ({alert.rule or alert.method})",
             f"Where:    {alert.area_level} {alert.area}",
             f"Offence:  {alert.category}",
             f"Window:   {alert.window_start:%Y-%m-%d %H:%M} to {alert.window_end:%Y-%m-%d %H:%M} UTC",
             f"Observed: {alert.observed:.0f}"]
    if alert.kind == "spike":
        lines += [f"Expected: {alert.expected:.1f} (95% prediction interval {alert.lower:.0f}-{alert.upper:.0f})",
                  f"p-value:  {alert.p_value:.2g}   FDR q-value: {alert.q_value:.2g}"]
    lines += [f"Severity: {alert.severity}", f"Alert id: {alert.alert_id}", "",
              f"Incidents ({len(alert.incident_ids)}): " + ", ".join(alert.incident_ids[:25])
              + (" ..." if len(alert.incident_ids) > 25 else ""),
              "", "Acknowledge: crimelens alerts ack " + alert.alert_id]
    prefix = "[crimelens]" if action == "new" else "[crimelens update]"
    return {"subject": f"{prefix} {alert.headline()}", "text": "\n".join(lines)}


class AlertMonitor:
    """Scans a store, evaluates arrivals, stores alerts and delivers them (see the module docstring).

    Parameters
    ----------
    store
        A store with ``counts``, ``incidents`` and a DuckDB ``con`` (the alert tables go there).
    detector, rules
        Spike detector configuration and optional rule book (rules and subscriptions).
    area_level, category_column
        The series scanned: e.g. ``district`` × ``category``.
    history_days
        Days of history loaded for expectations (a year and a baseline by default, so the
        seasonal ratio is available).
    smtp, webhook_secret
        Delivery configuration (from settings).
    default_subscription
        Receives every alert it matches, besides the rule book's subscriptions.
    attachments
        Optional ``alert -> [Attachment]`` hook (e.g. a PDF brief) for alert emails.
    timezone
        Zone of the days and windows; default the sources' own zone as the store records it.
    """

    def __init__(self, store: Any, *, detector: SpikeDetector | None = None, rules: RuleBook | None = None,
                 area_level: str = "district", category_column: str = "category", history_days: int = 430,
                 smtp: SmtpConfig | None = None, webhook_secret: str | None = None,
                 default_subscription: Subscription | None = None, feed: AlertFeed | None = None,
                 attachments: Callable[[Alert], list[Attachment]] | None = None,
                 timezone: str | None = None) -> None:
        check_level(area_level, category_column)
        self.store = store
        self.detector = detector or SpikeDetector()
        self.rules = rules or RuleBook()
        self.area_level = area_level
        self.category_column = category_column
        self.history_days = history_days
        self.smtp = smtp
        self.webhook_secret = webhook_secret
        self._tables: AlertTables | None = None
        self._dispatcher: Dispatcher | None = None
        self.default_subscription = default_subscription
        self.feed = feed or AlertFeed()
        self.attachments = attachments
        self.timezone = timezone
        self._evaluator: ArrivalEvaluator | None = None
        self._counted_batches: set[str] = set()

    @classmethod
    def from_settings(cls, store: Any, settings: Any, **overrides: Any) -> AlertMonitor:
        """A monitor configured from :class:`crimelens.settings.Settings` (rules, SMTP, webhooks, FDR)."""

        def split(text: str) -> tuple[str, ...]:
            return tuple(t.strip() for t in text.split(",") if t.strip())

        smtp = None
        if settings.smtp_host:
            password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
            smtp = SmtpConfig(host=settings.smtp_host, port=settings.smtp_port, sender=settings.smtp_sender,
                              user=settings.smtp_user, password=password, starttls=settings.smtp_starttls,
                              use_ssl=settings.smtp_ssl)
        secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        emails, hooks = split(settings.alert_email_to), split(settings.alert_webhook_urls)
        default = (Subscription(name="settings", email=emails, webhooks=hooks, min_severity=settings.alert_min_severity)
                   if emails or hooks else None)
        kw: dict[str, Any] = {
            "detector": SpikeDetector(window_days=(settings.alert_window_days,), fdr=settings.alert_fdr),
            "rules": RuleBook.load(settings.alert_rules) if settings.alert_rules else None,
            "area_level": settings.alert_area_level, "smtp": smtp, "webhook_secret": secret,
            "default_subscription": default,
        }
        kw.update(overrides)
        return cls(store, **kw)

    @property
    def tables(self) -> AlertTables:
        """The alert tables (created on first use, so read-only scans never write)."""
        if self._tables is None:
            self._tables = AlertTables(self.store.con)
        return self._tables

    @property
    def outbox(self) -> Outbox:
        """The delivery outbox."""
        return self.dispatcher.outbox

    @property
    def dispatcher(self) -> Dispatcher:
        """Attempts due deliveries."""
        if self._dispatcher is None:
            self._dispatcher = Dispatcher(Outbox(self.tables), smtp=self.smtp, webhook_secret=self.webhook_secret)
        return self._dispatcher

    # -- reading the store ----------------------------------------------------------------
    def zone(self, flt: IncidentFilter | None = None) -> str:
        """The time zone whose days the scans use: the setting, else the sources' own (UTC if mixed)."""
        if self.timezone:
            return self.timezone
        finder = getattr(self.store, "timezone", None)
        return str(finder(flt.sources if flt else ())) if callable(finder) else "UTC"

    def local_end(self, when: Any, flt: IncidentFilter | None = None) -> pd.Timestamp:
        """``when`` as a window end: an aware time as is, a naive date as that local midnight."""
        ts = pd.Timestamp(when)
        return ts if ts.tzinfo is not None else local_midnight(ts.normalize(), self.zone(flt))

    def last_day_end(self, flt: IncidentFilter | None = None) -> pd.Timestamp | None:
        """The local midnight after the last day with incidents in the store."""
        got = self.store.execute("SELECT max(occurred_at) AS m FROM incidents")["m"].iloc[0]
        if got is None or pd.isna(got):
            return None
        zone = self.zone(flt)
        last = pd.Timestamp(got).tz_convert(zone).tz_localize(None).normalize()
        return local_midnight(last + pd.Timedelta(days=1), zone)

    def panel(self, *, end: pd.Timestamp, flt: IncidentFilter | None = None) -> CountPanel:
        """Daily counts of ``history_days`` before ``end`` from the store (a pushed-down GROUP BY)."""
        zone = self.zone(flt)
        start = local_midnight(end.tz_convert(zone).tz_localize(None).normalize()
                               - pd.Timedelta(days=self.history_days), zone)
        base = flt or IncidentFilter()
        window = IncidentFilter(start=start.to_pydatetime(), end=end.to_pydatetime(), categories=base.categories,
                                sources=base.sources, areas=base.areas, include_non_crime=base.include_non_crime)
        keys = [k for k in (self.area_level, self.category_column) if k != "city"]
        counts = self.store.counts([*keys, "day", "time_precision"], window, tz=zone)
        return CountPanel.from_counts(counts, area_level=self.area_level, category_column=self.category_column,
                                      start=start, end=end, tz=zone)

    def recent_incidents(self, start: pd.Timestamp, end: pd.Timestamp,
                         flt: IncidentFilter | None = None) -> pd.DataFrame:
        """Incidents of ``[start, end)`` with the columns rules and incident ids need."""
        base = flt or IncidentFilter()
        window = IncidentFilter(start=start.to_pydatetime(), end=end.to_pydatetime(), categories=base.categories,
                                sources=base.sources, areas=base.areas, include_non_crime=base.include_non_crime)
        return self.store.incidents(window, columns=list(_ID_COLUMNS))  # type: ignore[no-any-return]

    # -- scanning -------------------------------------------------------------------------
    def scan(self, *, end: Any = None, flt: IncidentFilter | None = None, save: bool = True,
             deliver: bool = True, now: pd.Timestamp | None = None) -> MonitorResult:
        """Full scan of the windows ending at ``end`` (default: the end of the last day with data).

        A date means that local midnight; an aware time ends the window at the start of its local
        day (windows hold whole days).
        """
        started = time.perf_counter()
        stop = self.local_end(end, flt) if end is not None else self.last_day_end(flt)
        if stop is None:
            return MonitorResult(seconds=time.perf_counter() - started)
        result = self.detector.scan(self.panel(end=stop, flt=flt))
        horizon = max([*self.detector.window_days, *(r.days for r in self.rules.rules)])
        recent = self.recent_incidents(stop - pd.Timedelta(days=horizon), stop, flt)
        candidates = list(result.alerts)
        attach_incidents(candidates, recent, category_column=self.category_column)
        if self.rules.rules:
            candidates.extend(evaluate_rules(self.rules, recent, stop, tz=self.zone(flt)))
        out = self.process(candidates, now=now, deliver=deliver) if save else MonitorResult(new=candidates)
        out.scan = result
        out.seconds = time.perf_counter() - started
        return out

    def warm_up(self) -> ArrivalEvaluator | None:
        """Build the incremental evaluator from what the store holds now (call at service start)."""
        end = self.last_day_end()
        if end is None:
            return None
        horizon = max([*self.detector.window_days, *(r.days for r in self.rules.rules)]) + 1
        recent = self.recent_incidents(end - pd.Timedelta(days=horizon), end)
        self._counted_batches = set(self.store.execute("SELECT DISTINCT batch_id FROM incidents")["batch_id"])
        self._evaluator = ArrivalEvaluator(self.detector, self.panel(end=end), rules=self.rules, recent=recent)
        return self._evaluator

    def on_incidents(self, incidents: pd.DataFrame, *, deliver: bool = True,
                     now: pd.Timestamp | None = None) -> MonitorResult:
        """Evaluate newly arrived canonical incidents (already stored or not) and deliver what they cause."""
        started = time.perf_counter()
        if incidents.empty:
            return MonitorResult()
        if self._evaluator is None and self.warm_up() is None:
            return MonitorResult(seconds=time.perf_counter() - started)
        ev = self._evaluator
        assert ev is not None  # set by warm_up above
        fresh = ~incidents["batch_id"].isin(self._counted_batches) if "batch_id" in incidents else None
        batch = incidents[fresh] if fresh is not None else incidents
        arrival = ev.on_incidents(batch) if len(batch) else ev.on_incidents(incidents.iloc[:0])
        if "batch_id" in incidents:
            self._counted_batches.update(incidents["batch_id"].dropna().unique())
        out = self.process(arrival.alerts, now=now, deliver=deliver)
        out.scan = arrival.scan
        out.seconds = time.perf_counter() - started
        return out

    # -- storing and delivering -----------------------------------------------------------
    def process(self, candidates: list[Alert], *, now: pd.Timestamp | None = None,
                deliver: bool = True) -> MonitorResult:
        """De-duplicate, store, publish to the live feed and, when ``deliver``, enqueue and dispatch.

        With ``deliver=False`` alerts are stored and published but nobody is notified.
        """
        at = now if now is not None else pd.Timestamp.now(tz="UTC")
        hours = self.rules.cooldown_hours
        recent = self.tables.recent(hours=hours, now=at)
        d: DedupResult = deduplicate(candidates, recent, now=at, cooldown_hours=hours)
        for action, items in (("new", d.new), ("updated", d.updated)):
            for a in items:
                self.tables.save(a, now=at)
                if deliver:
                    self.enqueue(a, action, now=at)
                self.feed.publish(action, a)
        out = MonitorResult(new=d.new, updated=d.updated, suppressed=len(d.suppressed))
        if deliver and (d.new or d.updated):
            out.dispatch = self.dispatcher.run_once(at)
        return out

    def subscriptions_for(self, alert: Alert) -> list[Subscription]:
        """The rule book's matching subscriptions plus the default one."""
        subs = self.rules.recipients(alert)
        if self.default_subscription is not None and self.default_subscription.matches(alert):
            subs.append(self.default_subscription)
        return subs

    def enqueue(self, alert: Alert, action: str, *, now: pd.Timestamp | None = None) -> list[str]:
        """One outbox delivery per matching subscription channel; returns the delivery ids."""
        ids: list[str] = []
        email = alert_email(alert, action)
        if self.attachments is not None:
            import base64

            email["attachments"] = [{"filename": a.filename, "content_type": a.content_type,
                                     "data_b64": base64.b64encode(a.data).decode("ascii")}
                                    for a in self.attachments(alert)]
        hook = {"json": {"event": f"alert.{action}", "alert": json.loads(json.dumps(alert.to_dict(), default=str))}}
        for sub in self.subscriptions_for(alert):
            if sub.email:
                ids.append(self.outbox.enqueue("email", ",".join(sub.email), email, alert_id=alert.alert_id, now=now))
            for url in sub.webhooks:
                ids.append(self.outbox.enqueue("webhook", url, hook, alert_id=alert.alert_id, now=now))
        return ids

    def acknowledge(self, alert_id: str, *, resolve: bool = False, label: str | None = None,
                    note: str | None = None, username: str | None = None) -> Alert:
        """Acknowledge (or resolve, with a true/false-alarm label) an alert and tell the live feed."""
        status = "resolved" if resolve or label is not None else "acknowledged"
        alert = self.tables.set_status(alert_id, status, label=label, note=note, username=username)
        self.feed.publish(status, alert)
        return alert
