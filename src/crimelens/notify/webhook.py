"""Webhooks: the alert as a JSON body, HMAC-SHA256 signed, POSTed with retries and backoff.

Headers: ``X-Crimelens-Timestamp`` (Unix seconds) and ``X-Crimelens-Signature``
(``sha256=<hex>`` of ``HMAC-SHA256(secret, f"{timestamp}." + body)``). Signing the timestamp with
the body lets receivers reject replays (:func:`verify` allows five minutes of skew). Receivers
must compare in constant time, as :func:`verify` does. The secret comes from settings
(``CRIMELENS_WEBHOOK_SECRET``), never from a rule file.

:func:`post_webhook` retries connection errors, timeouts, 408, 429 and 5xx responses a few
times with exponential backoff (0.5 s, 1 s, 2 s...); longer outages are the outbox's job
(:mod:`crimelens.notify.outbox`), which keeps the delivery and retries it later.
"""

from __future__ import annotations

import hashlib
import hmac
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Final

from crimelens.exceptions import CrimelensError, InputError

SIGNATURE_HEADER: Final = "X-Crimelens-Signature"
TIMESTAMP_HEADER: Final = "X-Crimelens-Timestamp"
_RETRY_STATUS: Final = frozenset({408, 425, 429, 500, 502, 503, 504})


class DeliveryError(CrimelensError, ConnectionError):
    """A delivery failed; ``retryable`` says whether trying again may help."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def _key(secret: str | bytes) -> bytes:
    key = secret.encode("utf-8") if isinstance(secret, str) else secret
    if not key:
        raise InputError("a webhook secret is required to sign deliveries")
    return key


def sign(body: bytes, secret: str | bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp``."""
    mac = hmac.new(_key(secret), f"{int(timestamp)}.".encode() + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify(body: bytes, secret: str | bytes, timestamp: str | int, signature: str, *,
           tolerance_s: int = 300, now: float | None = None) -> bool:
    """True when ``signature`` matches and ``timestamp`` is within ``tolerance_s`` of now."""
    try:
        ts = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - ts) > tolerance_s:
        return False
    return hmac.compare_digest(sign(body, secret, ts), signature)


def post_webhook(url: str, body: bytes, *, secret: str | bytes, timeout_s: float = 5.0, attempts: int = 3,
                 backoff_s: float = 0.5, headers: dict[str, str] | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> int:
    """POST a signed JSON ``body`` to ``url``; returns the HTTP status.

    Raises :class:`DeliveryError` when every attempt failed (``retryable=False`` for a client
    error such as 400 or 404, which retrying will not fix).
    """
    if not url.startswith(("http://", "https://")):
        raise InputError(f"webhook URL must be http(s): {url!r}")
    last = "no attempt made"
    for attempt in range(max(attempts, 1)):
        if attempt:
            sleep(backoff_s * 2 ** (attempt - 1))
        ts = int(time.time())
        req = urllib.request.Request(url, data=body, method="POST", headers={  # scheme checked above
            "Content-Type": "application/json", "User-Agent": "crimelens-webhook/1",
            TIMESTAMP_HEADER: str(ts), SIGNATURE_HEADER: sign(body, secret, ts), **(headers or {}),
        })
        try:
            with urllib.request.urlopen(req, timeout=timeout_s) as resp:  # scheme checked above
                return int(resp.status)
        except urllib.error.HTTPError as exc:
            last = f"HTTP {exc.code} from {url}"
            if exc.code not in _RETRY_STATUS:
                raise DeliveryError(last, retryable=False) from exc
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            last = f"{url}: {reason}"
    raise DeliveryError(last)
