"""Email over SMTP (standard library ``smtplib``), with attachments such as a report PDF.

:class:`SmtpConfig` is built at the edge from settings (``CRIMELENS_SMTP_HOST``, ``_PORT``,
``_USER``, ``_PASSWORD``, ``_SENDER``, ``_STARTTLS``, ``_SSL``); the password is never logged or
shown in ``repr``. :func:`compose` builds a multipart message (plain text, optional HTML,
attachments) and :func:`send_email` delivers it, raising
:class:`~crimelens.notify.webhook.DeliveryError` on failure so the outbox can retry.
"""

from __future__ import annotations

import smtplib
import ssl
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.utils import formatdate, make_msgid

from crimelens.exceptions import InputError
from crimelens.notify.webhook import DeliveryError


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file to attach."""

    filename: str
    data: bytes = field(repr=False)
    content_type: str = "application/pdf"


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """How to reach the SMTP server."""

    host: str
    port: int = 25
    sender: str = "crimelens@localhost"
    user: str | None = None
    password: str | None = field(default=None, repr=False)
    starttls: bool = False
    use_ssl: bool = False
    timeout_s: float = 10.0

    def __post_init__(self) -> None:
        if not self.host:
            raise InputError("SMTP host is not configured (CRIMELENS_SMTP_HOST)")
        if self.starttls and self.use_ssl:
            raise InputError("choose STARTTLS or implicit TLS (SSL), not both")


def compose(*, sender: str, recipients: list[str], subject: str, text: str, html: str | None = None,
            attachments: list[Attachment] | None = None) -> EmailMessage:
    """A ready-to-send message."""
    if not recipients:
        raise InputError("an email needs at least one recipient")
    if any("\n" in r or "\r" in r for r in [*recipients, subject, sender]):
        raise InputError("header values must not contain line breaks")
    msg = EmailMessage()
    msg["From"] = sender
    msg["To"] = ", ".join(recipients)
    msg["Subject"] = subject
    msg["Date"] = formatdate(localtime=False, usegmt=True)
    msg["Message-ID"] = make_msgid(domain="crimelens")
    msg.set_content(text)
    if html is not None:
        msg.add_alternative(html, subtype="html")
    for att in attachments or []:
        maintype, _, subtype = att.content_type.partition("/")
        msg.add_attachment(att.data, maintype=maintype, subtype=subtype or "octet-stream", filename=att.filename)
    return msg


def send_email(config: SmtpConfig, message: EmailMessage) -> None:
    """Deliver ``message``; raises :class:`DeliveryError` when the server cannot be reached or refuses."""
    try:
        if config.use_ssl:
            server: smtplib.SMTP = smtplib.SMTP_SSL(config.host, config.port, timeout=config.timeout_s,
                                                    context=ssl.create_default_context())
        else:
            server = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
        with server:
            if config.starttls:
                server.starttls(context=ssl.create_default_context())
            if config.user:
                server.login(config.user, config.password or "")
            refused = server.send_message(message)
    except smtplib.SMTPRecipientsRefused as exc:
        raise DeliveryError(f"SMTP server refused all recipients: {sorted(exc.recipients)}", retryable=False) from exc
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP authentication failed ({exc.smtp_code})", retryable=False) from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP {config.host}:{config.port}: {exc}") from exc
    if refused:
        raise DeliveryError(f"SMTP server refused some recipients: {sorted(refused)}", retryable=False)
