"""Email: a real SMTP server on loopback receives the message with the PDF attached."""

from __future__ import annotations

import pytest

from crimelens.exceptions import InputError
from crimelens.notify.email import Attachment, SmtpConfig, compose, send_email
from crimelens.notify.webhook import DeliveryError

from .conftest import SmtpServer, free_port

PDF = b"%PDF-1.7\n" + bytes(range(256)) * 40 + b"\n%%EOF\n"


def test_message_with_pdf_arrives(smtp_server: SmtpServer) -> None:
    cfg = SmtpConfig(host="127.0.0.1", port=smtp_server.port, sender="crimelens@example.org")
    msg = compose(sender=cfg.sender, recipients=["analyst@example.org", "chief@example.org"],
                  subject="CompStat week 10", text="Report attached.", html="<p>Report attached.</p>",
                  attachments=[Attachment("compstat.pdf", PDF)])
    send_email(cfg, msg)
    smtp_server.inbox.wait(1)
    got = smtp_server.inbox.messages[0]
    assert got["Subject"] == "CompStat week 10"
    assert smtp_server.inbox.envelopes[0] == ("crimelens@example.org", ["analyst@example.org", "chief@example.org"])
    parts = [p for p in got.walk() if p.get_filename()]
    assert [p.get_filename() for p in parts] == ["compstat.pdf"]
    assert parts[0].get_content_type() == "application/pdf"
    assert parts[0].get_payload(decode=True) == PDF


def test_unreachable_server_is_a_retryable_delivery_error() -> None:
    cfg = SmtpConfig(host="127.0.0.1", port=free_port(), timeout_s=2)
    msg = compose(sender="a@example.org", recipients=["b@example.org"], subject="s", text="t")
    with pytest.raises(DeliveryError) as err:
        send_email(cfg, msg)
    assert err.value.retryable


def test_header_injection_and_missing_config_are_refused() -> None:
    with pytest.raises(InputError):
        compose(sender="a@example.org", recipients=["b@example.org"], subject="x\nBcc: evil@example.org", text="t")
    with pytest.raises(InputError):
        compose(sender="a@example.org", recipients=[], subject="s", text="t")
    with pytest.raises(InputError):
        SmtpConfig(host="")
    assert "hunter2" not in repr(SmtpConfig(host="h", password="hunter2"))
