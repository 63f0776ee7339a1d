"""Webhooks: HMAC-SHA256 signatures checked by a real HTTP receiver, retries with backoff."""

from __future__ import annotations

import time

import pytest

from crimelens.exceptions import InputError
from crimelens.notify.webhook import DeliveryError, post_webhook, sign, verify

from .conftest import SECRET, Receiver


def test_signature_verifies_and_rejects_tampering_and_replays() -> None:
    body = b'{"alert": 1}'
    now = int(time.time())
    sig = sign(body, SECRET, now)
    assert sig.startswith("sha256=") and len(sig) == 7 + 64
    assert verify(body, SECRET, now, sig)
    assert not verify(body + b" ", SECRET, now, sig)
    assert not verify(body, "other-secret", now, sig)
    assert not verify(body, SECRET, now - 3600, sign(body, SECRET, now - 3600))  # too old: a replay
    assert not verify(body, SECRET, "not-a-number", sig)
    with pytest.raises(InputError):
        sign(body, "", now)


def test_receiver_verifies_the_signature(receiver: Receiver) -> None:
    status = post_webhook(receiver.url, b'{"event": "alert.new"}', secret=SECRET)
    assert status == 204
    assert len(receiver.got) == 1 and receiver.got[0].verified
    assert receiver.got[0].headers["X-Crimelens-Signature"].startswith("sha256=")
    with pytest.raises(DeliveryError) as err:
        post_webhook(receiver.url, b"{}", secret="wrong", attempts=3, sleep=lambda s: None)
    assert not err.value.retryable  # 401: retrying will not help
    assert receiver.rejected == 1


def test_retries_with_exponential_backoff_until_the_receiver_answers(receiver: Receiver) -> None:
    waits: list[float] = []
    receiver.down = True

    def sleep(s: float) -> None:
        waits.append(s)
        if len(waits) == 2:
            receiver.down = False

    assert post_webhook(receiver.url, b"{}", secret=SECRET, attempts=4, backoff_s=0.5, sleep=sleep) == 204
    assert waits == [0.5, 1.0]
    receiver.down = True
    with pytest.raises(DeliveryError) as err:
        post_webhook(receiver.url, b"{}", secret=SECRET, attempts=3, sleep=lambda s: None)
    assert err.value.retryable


def test_unreachable_receiver_and_bad_urls() -> None:
    with pytest.raises(DeliveryError):
        post_webhook("http://127.0.0.1:9/none", b"{}", secret=SECRET, attempts=2, sleep=lambda s: None, timeout_s=1)
    with pytest.raises(InputError):
        post_webhook("file:///etc/passwd", b"{}", secret=SECRET)
