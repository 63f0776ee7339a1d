"""The outbox: every delivery is written down before it is attempted, and kept until it succeeds.

A delivery (one alert or report to one channel and target) is a row of ``alert_outbox`` with
status ``pending``. :meth:`Dispatcher.run_once` attempts the due ones; a success marks the row
``sent``; a failure is logged (``alert_delivery_log`` and the ``crimelens.notify`` logger),
counted, and rescheduled with exponential backoff (30 s, 1 min, 2 min ... capped at one hour).
Nothing is ever dropped: a delivery that keeps failing stays pending (status ``failing`` after
``warn_after`` attempts, so it shows up in ``crimelens alerts list --deliveries``) and is still
retried, so a mail server or webhook receiver that comes back after an outage receives
everything it missed. Because the row is committed before the attempt, a crash between the two
leaves a pending row, not a lost alert (at-least-once delivery; receivers de-duplicate on
``delivery_id``).
"""

from __future__ import annotations

import base64
import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Final

import pandas as pd

from crimelens.exceptions import InputError
from crimelens.notify.email import Attachment, SmtpConfig, compose, send_email
from crimelens.notify.tables import AlertTables
from crimelens.notify.webhook import DeliveryError, post_webhook

log = logging.getLogger("crimelens.notify")

CHANNELS: Final = ("email", "webhook")


def backoff(attempts: int, *, base_s: float = 30.0, cap_s: float = 3600.0) -> pd.Timedelta:
    """Wait before the next try after ``attempts`` failures."""
    return pd.Timedelta(seconds=min(base_s * 2 ** max(attempts - 1, 0), cap_s))


@dataclass(slots=True)
class DispatchReport:
    """What one dispatch round did."""

    sent: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    pending: int = 0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {"sent": len(self.sent), "failed": len(self.failed), "pending": self.pending}


class Outbox:
    """Deliveries owed, persisted in the alert tables."""

    def __init__(self, tables: AlertTables) -> None:
        self.tables = tables

    def enqueue(self, channel: str, target: str, payload: dict[str, Any], *, alert_id: str | None = None,
                now: pd.Timestamp | None = None) -> str:
        """Record a delivery; returns its id."""
        if channel not in CHANNELS:
            raise InputError(f"channel must be one of {', '.join(CHANNELS)}")
        at = now if now is not None else pd.Timestamp.now(tz="UTC")
        did = uuid.uuid4().hex
        self.tables.run("INSERT INTO alert_outbox VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, NULL, ?, NULL)",
                        [did, alert_id, channel, target, json.dumps(payload, default=str), at, at])
        return did

    def due(self, now: pd.Timestamp, limit: int = 100) -> pd.DataFrame:
        """Deliveries whose next attempt is due, oldest first."""
        return self.tables.query(
            "SELECT * FROM alert_outbox WHERE status IN ('pending', 'failing') AND next_attempt_at <= ? "
            "ORDER BY created_at LIMIT ?", [now, int(limit)])

    def counts(self) -> dict[str, int]:
        """Deliveries by status."""
        rows = self.tables.query("SELECT status, count(*) AS n FROM alert_outbox GROUP BY 1")
        return {str(s): int(n) for s, n in zip(rows["status"], rows["n"], strict=True)}

    def rows(self, *, status: str | None = None) -> pd.DataFrame:
        """Deliveries (optionally of one status), newest first, without payloads."""
        return self.tables.query(
            "SELECT delivery_id, alert_id, channel, target, status, attempts, next_attempt_at, last_error, "
            "created_at, sent_at FROM alert_outbox WHERE (? IS NULL OR status = ?) ORDER BY created_at DESC",
            [status, status])


Sender = Callable[[str, dict[str, Any], str], None]  # (target, payload, delivery_id)


class Dispatcher:
    """Attempts due deliveries through the configured channels."""

    def __init__(self, outbox: Outbox, *, smtp: SmtpConfig | None = None, webhook_secret: str | None = None,
                 webhook_timeout_s: float = 5.0, webhook_attempts: int = 3, warn_after: int = 5,
                 senders: dict[str, Sender] | None = None) -> None:
        self.outbox = outbox
        self.smtp = smtp
        self.webhook_secret = webhook_secret
        self.webhook_timeout_s = webhook_timeout_s
        self.webhook_attempts = webhook_attempts
        self.warn_after = warn_after
        self.senders: dict[str, Sender] = {"email": self._email, "webhook": self._webhook, **(senders or {})}

    def _email(self, target: str, payload: dict[str, Any], delivery_id: str) -> None:
        if self.smtp is None:
            raise DeliveryError("SMTP is not configured (CRIMELENS_SMTP_HOST)")
        atts = [Attachment(a["filename"], base64.b64decode(a["data_b64"]), a.get("content_type", "application/pdf"))
                for a in payload.get("attachments", [])]
        msg = compose(sender=self.smtp.sender, recipients=[t.strip() for t in target.split(",") if t.strip()],
                      subject=str(payload.get("subject", "crimelens")), text=str(payload.get("text", "")),
                      html=payload.get("html"), attachments=atts)
        msg["X-Crimelens-Delivery"] = delivery_id
        send_email(self.smtp, msg)

    def _webhook(self, target: str, payload: dict[str, Any], delivery_id: str) -> None:
        if not self.webhook_secret:
            raise DeliveryError("webhook secret is not configured (CRIMELENS_WEBHOOK_SECRET)")
        body = json.dumps({"delivery_id": delivery_id, **payload.get("json", {})}, default=str).encode("utf-8")
        post_webhook(target, body, secret=self.webhook_secret, timeout_s=self.webhook_timeout_s,
                     attempts=self.webhook_attempts, headers={"X-Crimelens-Delivery": delivery_id})

    def run_once(self, now: pd.Timestamp | None = None, *, limit: int = 100) -> DispatchReport:
        """Attempt every due delivery once; returns what was sent and what failed."""
        at = now if now is not None else pd.Timestamp.now(tz="UTC")
        report = DispatchReport()
        tables = self.outbox.tables
        for row in self.outbox.due(at, limit).to_dict("records"):
            did, attempts = str(row["delivery_id"]), int(row["attempts"]) + 1
            try:
                self.senders[str(row["channel"])](str(row["target"]), json.loads(row["payload"]), did)
            except (DeliveryError, InputError, OSError, ValueError) as exc:
                status = "failing" if attempts >= self.warn_after else "pending"
                tables.run("UPDATE alert_outbox SET status = ?, attempts = ?, next_attempt_at = ?, last_error = ? "
                           "WHERE delivery_id = ?", [status, attempts, at + backoff(attempts), str(exc)[:500], did])
                tables.run("INSERT INTO alert_delivery_log VALUES (?, ?, ?, FALSE, ?)",
                           [did, attempts, at, str(exc)[:500]])
                log.warning("delivery %s (%s to %s) failed, attempt %d: %s", did, row["channel"], row["target"],
                            attempts, exc)
                report.failed.append(did)
                continue
            tables.run("UPDATE alert_outbox SET status = 'sent', attempts = ?, sent_at = ?, last_error = NULL "
                       "WHERE delivery_id = ?", [attempts, at, did])
            tables.run("INSERT INTO alert_delivery_log VALUES (?, ?, ?, TRUE, NULL)", [did, attempts, at])
            report.sent.append(did)
        report.pending = sum(v for k, v in self.outbox.counts().items() if k != "sent")
        return report
