"""What the consumer loop needs from a message broker, and how a URL picks one.

Every broker (NATS JetStream, MQTT, AMQP) is one small class with the same five coroutines:
``open`` (connect and subscribe; a clear :class:`StreamError` when that fails), ``fetch`` (up to
``batch`` messages gathered for at most ``max_wait`` seconds), ``ack`` (after the batch's commit),
``nak`` (after a failed load: redeliver), ``in_progress`` (a long load is still running) and
``close``. Reconnecting after a dropped connection is the broker client's job (with backoff);
messages fetched on a connection that has since dropped cannot be acknowledged any more: the
broker redelivers them and they count as duplicates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol
from urllib.parse import unquote, urlsplit

from crimelens.exceptions import CrimelensError

if TYPE_CHECKING:
    from crimelens.stream.records import Message

#: URL schemes and the broker each names.
SCHEMES = {"nats": "nats", "tls": "nats", "mqtt": "mqtt", "mqtts": "mqtt", "amqp": "amqp", "amqps": "amqp"}


class StreamError(CrimelensError, ConnectionError):
    """The broker, stream, topic or queue cannot be used, or a micro-batch failed to load."""


class Broker(Protocol):
    """One connection to a broker, delivering :class:`~crimelens.stream.records.Message` batches."""

    #: ``nats``, ``mqtt`` or ``amqp``: the prefix of load-log and quarantine file names.
    scheme: str
    #: The stream, topic or queue read (for names and messages).
    where: str

    async def open(self) -> None:
        """Connect and subscribe; raise :class:`StreamError` with a one-line reason if that fails."""

    async def fetch(self, batch: int, max_wait: float) -> list[Message]:
        """Up to ``batch`` messages, gathered for at most ``max_wait`` seconds."""

    async def ack(self, messages: list[Message]) -> None:
        """Acknowledge ``messages`` (their batch committed); raise :class:`StreamError` if that fails."""

    async def nak(self, messages: list[Message]) -> None:
        """Ask for ``messages`` again (their batch did not commit); best effort."""

    async def in_progress(self, messages: list[Message]) -> None:
        """Tell the broker ``messages`` are still being worked on; best effort."""

    async def close(self) -> None:
        """Disconnect (unacknowledged messages stay with the broker)."""


@dataclass(frozen=True, slots=True)
class Target:
    """What a stream URL names: the broker kind and the topic or queue in its path."""

    kind: str
    path: str


def parse_url(url: str) -> Target:
    """The broker kind of ``url`` (``nats://``, ``mqtt://host/TOPIC``, ``amqp://host/QUEUE``).

    An MQTT topic may hold ``/`` and the wildcards ``+`` and ``#`` (``#`` needs no escaping).
    """
    scheme = url.split("://", 1)[0].lower() if "://" in url else "nats"
    if scheme not in SCHEMES:
        raise StreamError(f"unknown broker URL scheme {scheme!r}: use nats://, mqtt:// or amqp://")
    rest = url.split("://", 1)[1] if "://" in url else url
    slash = rest.find("/")
    path = rest[slash + 1:] if slash >= 0 else ""
    path = path.split("?", 1)[0]
    return Target(SCHEMES[scheme], unquote(path))


def safe_url(url: str) -> str:
    """``url`` without credentials or path, for messages."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"
