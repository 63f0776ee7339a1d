"""The live-feed hook: alerts published to whoever subscribed (the dashboard's event bus).

Subscribers are callables ``callback(kind, data)`` -- the same signature as the service's
``EventBus.publish`` -- so the service wires the feed with
``monitor.feed.subscribe(svc.rt.events.publish)``. Events have kind ``"alert"`` and data
``{"action": "new" | "updated" | "acknowledged" | "resolved", "alert": {...}}``. A failing
subscriber is logged and never stops the others or the caller.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from crimelens.alerts.model import Alert

log = logging.getLogger(__name__)

Subscriber = Callable[[str, dict[str, Any]], object]


class AlertFeed:
    """Thread-safe publish/subscribe of alert events."""

    def __init__(self) -> None:
        self._subs: list[Subscriber] = []
        self._lock = threading.Lock()

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Add a subscriber; returns a function that removes it."""
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    def publish(self, action: str, alert: Alert) -> int:
        """Send ``alert`` to every subscriber; returns how many received it."""
        data = {"action": action, "alert": alert.to_dict()}
        with self._lock:
            subs = list(self._subs)
        ok = 0
        for cb in subs:
            try:
                cb("alert", data)
                ok += 1
            except Exception:  # a broken subscriber must not stop alerting
                log.exception("alert feed subscriber %r failed", cb)
        return ok
