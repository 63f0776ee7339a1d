"""Adapters that store and deliver alerts: tables on the store's connection, an outbox, SMTP
email, HMAC-signed webhooks, the live-feed hook, and the monitor that ties them to the core
(:mod:`crimelens.alerts`)."""

from crimelens.notify.email import Attachment, SmtpConfig, compose, send_email
from crimelens.notify.feed import AlertFeed
from crimelens.notify.outbox import Dispatcher, DispatchReport, Outbox
from crimelens.notify.tables import AlertTables
from crimelens.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, post_webhook, sign, verify

__all__ = [
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "AlertFeed",
    "AlertTables",
    "Attachment",
    "DispatchReport",
    "Dispatcher",
    "Outbox",
    "SmtpConfig",
    "compose",
    "post_webhook",
    "send_email",
    "sign",
    "verify",
]
