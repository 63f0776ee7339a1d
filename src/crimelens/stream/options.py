"""The consumer's settings (:class:`StreamOptions`), shared by the loop and the broker classes."""

from __future__ import annotations

from dataclasses import dataclass

from crimelens.stream.broker import parse_url
from crimelens.stream.records import MAX_BYTES

__all__ = ["StreamOptions"]


@dataclass(slots=True)
class StreamOptions:
    """Where to consume from and how (see ``crimelens stream --help``).

    ``stream`` and ``subject`` name the JetStream stream and subject (NATS only); an MQTT topic
    or AMQP queue is the URL's path (``mqtt://host:1883/sensors/#``, ``amqp://host/QUEUE``)
    unless ``subject`` gives it. ``durable`` names the NATS durable consumer and the MQTT client
    id of the persistent session.
    """

    stream: str = ""
    subject: str = ""
    url: str = "nats://127.0.0.1:4222"
    durable: str = "crimelens"
    batch: int = 500
    max_wait: float = 1.0
    #: Stop after this many seconds without a message (0: at the first empty fetch); None: run on.
    idle_exit: float | None = None
    #: Seconds the server waits for an ack before redelivering (set when the consumer is created).
    ack_wait: float = 60.0
    connect_timeout: float = 3.0
    #: Source name recorded with each incident (default: the mapping's name).
    source: str | None = None
    #: Largest message body decoded; larger ones are quarantined as ``too_large``.
    max_bytes: int = MAX_BYTES
    #: Seconds an MQTT broker keeps the persistent session (and its queued messages) while away.
    session_expiry: float = 7 * 86400.0
    #: Longest pause between reconnection attempts (seconds; the delay doubles up to it).
    reconnect_max: float = 30.0

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError("batch must be at least 1")
        if self.max_wait <= 0:
            raise ValueError("max_wait must be positive")
        if self.idle_exit is not None and self.idle_exit < 0:
            raise ValueError("idle_exit must not be negative")
        if self.max_bytes < 1:
            raise ValueError("max_bytes must be at least 1")

    @property
    def kind(self) -> str:
        """``nats``, ``mqtt`` or ``amqp``, from the URL's scheme."""
        return parse_url(self.url).kind

    @property
    def topic(self) -> str:
        """The MQTT topic or AMQP queue: ``subject`` if given, else the URL's path."""
        return self.subject or parse_url(self.url).path
