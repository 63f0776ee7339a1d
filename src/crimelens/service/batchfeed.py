"""Committed loads on the live feed, whichever process made them.

A load made inside this process (an upload job) is announced by :func:`crimelens.service.loads.loaded`.
A load made elsewhere (a ``crimelens stream`` consumer in its own process, ``crimelens ingest``,
another ``--workers`` process) is learned from the store:

* **PostgreSQL**: the loader sends ``NOTIFY crimelens_batches, '<schema> <batch_id>'`` inside the
  load's transaction (:class:`crimelens.store.postgres.PostgresBatch`), so a rolled-back batch never
  notifies; a :class:`BatchListener` ``LISTEN``\\s on its own connection in a daemon thread. Every
  ``poll_s`` it also reads the ``files`` log above its high-water mark (``loaded_at``, recorded at
  the end of the load, minus ``margin_s`` for loads that committed out of order), which catches a
  notification lost while its connection was down.
* **DuckDB**: a second process cannot open the file while the service holds it read-write (DuckDB
  allows one read-write process, or several read-only ones), so there is nothing to listen to; a
  stream must run inside the service (``crimelens serve --stream URL``, docs/stream.md).

Each process publishes each batch once to its own subscribers: :func:`announce` claims the batch
id on the process's event bus (:meth:`~crimelens.service.runtime.EventBus.claim`), and whichever path
reaches it second (the in-process load or the notification) does nothing. On PostgreSQL alert
evaluation on arrival runs in one process only, the holder of the ``batch-alerts`` role
(:meth:`~crimelens.service.runtime.Runtime.try_leader`), for every batch.
The event carries the batch's source, counts, up to :data:`FEED_ITEMS` rows without personal fields
(points rounded to about 100 m) and the ids of up to :data:`MAX_IDS` of its incidents.

**Alerts from other processes** (PostgreSQL, several ``--workers``): an alert is raised (or
acknowledged, resolved) in one process, which publishes it to its own subscribers; every other
worker learns it from the ``alerts`` table (:class:`AlertRelay`: alerts updated within
:data:`ALERT_MARGIN` of the newest update whose status this process has not published; a change
is published at the second poll that sees it, so the raising process's own publication is
recorded first), so a dashboard on any worker sees every alert within two polls, once.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from crimelens.service.records import rounded_sql

if TYPE_CHECKING:
    from crimelens.service.deps import Service

log = logging.getLogger("crimelens.service.batchfeed")
FEED_FIELDS = ("source", "incident_id", "occurred_at", "category", "category_group", "district", "beat")
FEED_ITEMS = 50
MAX_IDS = 5000
ALERT_MARGIN = timedelta(minutes=10)
_EPOCH = datetime.fromtimestamp(0).astimezone()  # "before anything": every later row is news
_ACTIONS = {"open": "new", "acknowledged": "acknowledged", "resolved": "resolved"}


def announce(svc: Service, batch_id: str, report: dict[str, Any] | None = None) -> bool:
    """Publish the batch's ``incidents`` event unless this process already did; True if it did.

    ``report`` is the load's accounting when the load ran here; otherwise it is read from the
    ``files`` log. The process that evaluates alerts on arrival (``rt.events.evaluates_alerts``:
    always on DuckDB, the ``batch-alerts`` leader on PostgreSQL) evaluates the batch's alerts too.
    """
    rt = svc.rt
    if not rt.events.claim(batch_id):
        return False
    try:
        return _announce(svc, batch_id, report)
    except BaseException:
        rt.events.release(batch_id)  # not published: the next poll of the files log tries again
        raise


def _announce(svc: Service, batch_id: str, report: dict[str, Any] | None) -> bool:
    rt = svc.rt
    if report is None:
        rows = rt.query("SELECT report FROM files WHERE batch_id = ?", [batch_id])
        if not rows:
            return True
        report = rows[0][0] if isinstance(rows[0][0], dict) else json.loads(rows[0][0])
        if rt.postgres:
            rt.poll()  # caches follow at once, not at the next poll
    if report.get("skipped") or not (report.get("stored") or report.get("updated")):
        return True
    rt.events.publish("incidents", _event(svc, batch_id, report))
    if rt.events.evaluates_alerts:
        svc.alerts.on_batch(batch_id)  # evaluation on arrival: alerts reach the feed within moments
    return True


def _event(svc: Service, batch_id: str, report: dict[str, Any]) -> dict[str, Any]:
    cols = ", ".join(f'"{c}"' for c in FEED_FIELDS)
    with svc.rt.lease() as view:
        frame = view.execute(
            f"SELECT {cols}, {rounded_sql('lat', 3)} AS lat, {rounded_sql('lon', 3)} AS lon FROM incidents "  # noqa: S608 -- identifiers come from fixed column lists; values are bound parameters
            "WHERE batch_id = ? ORDER BY occurred_at DESC LIMIT ?", [batch_id, FEED_ITEMS])
        ids = view.execute("SELECT incident_id FROM incidents WHERE batch_id = ? LIMIT ?", [batch_id, MAX_IDS])
    items = [{k: (v.isoformat() if hasattr(v, "isoformat") else v) for k, v in r.items()}
             for r in frame.astype(object).where(frame.notna(), None).to_dict("records")]
    return {"batch_id": batch_id, "source": report.get("source"), "stored": report.get("stored", 0),
            "updated": report.get("updated", 0), "items": items,
            "incident_ids": [str(i) for i in ids["incident_id"]]}


class AlertRelay:
    """Alerts raised or changed by other processes, published here once per status (PostgreSQL)."""

    def __init__(self, svc: Service) -> None:
        self.svc = svc
        self.seen: dict[str, str] = {}  # alert id -> the status last published by this process
        self.pending: dict[str, str] = {}  # changes seen once in the table, published at the next poll
        self._lock = threading.Lock()
        self._started = False

    def mine(self, kind: str, data: dict[str, Any]) -> None:
        """Feed subscriber: an alert this process published itself is not relayed back."""
        alert = data.get("alert") or {}
        if kind == "alert" and alert.get("alert_id"):
            with self._lock:
                self.seen[str(alert["alert_id"])] = str(alert.get("status"))

    def poll(self) -> int:
        """Publish what changed since the last poll; returns how many events were published."""
        try:
            # the window ends at the newest update, whatever clock the alerts were stamped with
            rows = self.svc.rt.query("SELECT alert_id, status, payload FROM alerts WHERE updated_at >= "
                                     "(SELECT max(updated_at) FROM alerts) - CAST(? AS INTERVAL) "
                                     "ORDER BY updated_at, alert_id", [f"{int(ALERT_MARGIN.total_seconds())} seconds"])
        except Exception:  # noqa: BLE001 -- no alert tables yet: nothing to relay
            return 0
        published = 0
        for alert_id, status, payload in rows:
            key, now = str(alert_id), str(status)
            with self._lock:
                before = self.seen.get(key)
                if not self._started:
                    self.seen[key] = now  # history at the start
                if before == now or not self._started:
                    continue  # already published here
                if self.pending.get(key) != now:
                    # first sight: wait one poll, so an alert this process stored and is about to
                    # publish itself (save, then publish) is recorded by :meth:`mine` first
                    self.pending[key] = now
                    continue
                self.seen[key] = now
                self.pending.pop(key, None)
            alert = payload if isinstance(payload, dict) else json.loads(payload)
            action = "new" if before is None else _ACTIONS.get(now, "updated")
            self.svc.rt.events.publish("alert", {"action": action, "alert": alert})
            published += 1
        self._started = True
        return published


class NewsRelay:
    """Feed items stored since the last poll, published here as ``feed`` events (PostgreSQL)."""

    def __init__(self, svc: Service, margin: timedelta) -> None:
        self.svc, self.margin = svc, margin
        self.high_water: datetime | None = None

    def poll(self) -> int:
        """Publish the items fetched since the last poll (none at the first); returns how many."""
        from crimelens.service.routers.feeds import has_items_table, item_record, select_items

        rt = self.svc.rt
        if not has_items_table(self.svc):
            if self.high_water is None:  # no items yet: whatever is stored later is news
                self.high_water = _EPOCH
            return 0
        first = self.high_water is None
        after = self.high_water - self.margin if self.high_water is not None else None
        rows = select_items(self.svc, fetched_after=after, limit=5000 if first else 500)
        fresh = []
        for row in rows:
            self.high_water = row[-1] if self.high_water is None else max(self.high_water, row[-1])
            if rt.events.claim(f"feed:{row[0]}") and not first:
                fresh.append(item_record(row))
        if first and self.high_water is None:
            self.high_water = _EPOCH
        if fresh:
            rt.events.publish("feed", {"items": fresh})
        return len(fresh)


class BatchListener:
    """Listens for loads committed by any process (PostgreSQL) and announces them here."""

    def __init__(self, svc: Service, *, poll_s: float = 2.0, margin_s: float = 30.0) -> None:
        self.svc = svc
        self.poll_s = poll_s
        self.margin = timedelta(seconds=margin_s)
        self.high_water: datetime | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.alerts = AlertRelay(svc)
        self.news = NewsRelay(svc, self.margin)

    # -- listening (PostgreSQL) ----------------------------------------------------------------
    def start(self) -> None:
        """Start the listener thread (PostgreSQL only; on DuckDB loads are announced where they run)."""
        if not self.svc.rt.postgres or self._thread is not None:
            return
        self.svc.rt.events.evaluates_alerts = self.svc.rt.try_leader("batch-alerts")
        self.svc.alerts.monitor.feed.subscribe(self.alerts.mine)
        self._thread = threading.Thread(target=self._listen, name="crimelens-batchfeed", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the listener (it notices within ``poll_s``)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(self.poll_s + 5)
            self._thread = None

    def _listen(self) -> None:
        import psycopg

        from crimelens.store.postgres import BATCH_CHANNEL, split_schema

        conninfo, _ = split_schema(self.svc.rt.settings.db)
        schema = self.svc.rt.store.schema
        conn: Any = None
        backoff = 0.5
        while not self._stop.is_set():
            try:
                if conn is None:
                    conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
                    conn.execute(f"LISTEN {BATCH_CHANNEL}")
                    self._poll()  # what committed while not listening
                    backoff = 0.5
                for note in conn.notifies(timeout=self.poll_s):
                    where, _, batch_id = note.payload.partition(" ")
                    if where == schema and batch_id:
                        self._safely(batch_id)
                    if self._stop.is_set():
                        break
                self._poll()
            except Exception as exc:  # noqa: BLE001 -- the connection, the pool or a query: logged, retried
                log.warning("batch listener: %s; reconnecting in %.1f s",
                            str(exc).splitlines()[0] if str(exc) else type(exc).__name__, backoff)
                if conn is not None:
                    conn.close()
                conn = None
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 30.0)
        if conn is not None:
            conn.close()

    def _poll(self) -> None:
        """Announce batches of the ``files`` log above the high-water mark (the fallback)."""
        rt = self.svc.rt
        if not rt.events.evaluates_alerts:  # the leader exited: one of the others takes over
            rt.events.evaluates_alerts = rt.try_leader("batch-alerts")
        if self.high_water is None:  # the start: what is already in the log is history, not news
            got = rt.query("SELECT max(loaded_at) FROM files")
            self.high_water = got[0][0] if got and got[0][0] is not None else _EPOCH
            for (batch_id,) in rt.query("SELECT batch_id FROM files WHERE loaded_at > ?",
                                        [self.high_water - self.margin]):
                rt.events.claim(str(batch_id))
            self._relay()  # likewise: the alerts and news items already there are history
            return
        rows = rt.query("SELECT batch_id, loaded_at FROM files WHERE loaded_at > ? ORDER BY loaded_at",
                        [self.high_water - self.margin])
        for batch_id, at in rows:
            self._safely(str(batch_id))
            self.high_water = max(self.high_water, at)
        self._relay()

    def _relay(self) -> None:
        """Alerts and news items from other processes; neither relay may stop the batch feed."""
        for what, relay in (("alerts", self.alerts), ("feed items", self.news)):
            try:
                relay.poll()
            except Exception:
                log.exception("relaying %s failed", what)

    def _safely(self, batch_id: str) -> None:
        try:
            announce(self.svc, batch_id)
        except Exception:  # one bad batch must not stop the feed
            log.exception("announcing batch %s failed", batch_id)
