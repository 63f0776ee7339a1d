"""AMQP 0-9-1 (RabbitMQ): manual acknowledgements after commit, prefetch = a few batches (``aio-pika``).

The consumer reads a durable queue (declared if it does not exist) with ``prefetch_count`` set
to ``PREFETCH_BATCHES`` times the batch size (at most 65,535), so the broker keeps delivering the
next micro-batch while one commits; nothing is acknowledged before its commit. A committed batch
is acknowledged with one ``basic.ack`` (``multiple``) up to its highest delivery tag per channel
(deliveries on a channel arrive in tag order and batches commit in that order, so every lower tag
is in this batch or an earlier, already acknowledged one). Messages are rejected with
requeue when the load fails; a killed consumer's unacknowledged messages go back to the queue and
are delivered again (``redelivered`` set), counting as duplicates.

A message's position is its delivery tag (numbered per channel from 1). The connection is a
robust one: it reconnects by itself, retrying every ``min(5, reconnect_max)`` seconds and restoring
the channel, prefetch and consumer; messages
delivered on a channel that closed cannot be acknowledged any more, so the broker delivers them
again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import aio_pika
import aio_pika.exceptions
import aiormq.exceptions

from crimelens.stream.broker import StreamError, safe_url
from crimelens.stream.records import Message

if TYPE_CHECKING:
    from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection

    from crimelens.stream.options import StreamOptions

log = logging.getLogger("crimelens.stream")
_ERRORS = (aio_pika.exceptions.AMQPError, aiormq.exceptions.AMQPError, ConnectionError, OSError)
#: Unacknowledged deliveries allowed per consumer, in batches: one being committed, the next ones streaming in.
PREFETCH_BATCHES = 4
_CLOSED = (*_ERRORS, aiormq.exceptions.ChannelInvalidStateError)  # acking on a channel that has closed


class AmqpBroker:
    """A consumer on queue ``options.topic`` (the URL's path) with manual acks."""

    scheme = "amqp"

    def __init__(self, options: StreamOptions) -> None:
        self.options = options
        self.where = options.topic
        if not self.where:
            raise StreamError("give the AMQP queue as the URL's path: amqp://user:pass@host:5672/QUEUE")
        parts = urlsplit(options.url)
        vhost = parse_qs(parts.query).get("vhost", ["/"])[0]
        self._url = parts._replace(path="/" + vhost.replace("/", "%2F") if vhost != "/" else "/",
                                   query="", fragment="").geturl()
        self._inbox: asyncio.Queue[AbstractIncomingMessage] = asyncio.Queue()
        self._conn: AbstractRobustConnection | None = None
        self._channel: Any = None

    async def open(self) -> None:
        """Connect (robust), set the prefetch, declare the queue and start consuming."""
        where = safe_url(self.options.url)
        try:
            self._conn = await asyncio.wait_for(
                aio_pika.connect_robust(self._url, timeout=self.options.connect_timeout,
                                        reconnect_interval=min(5.0, self.options.reconnect_max)),
                self.options.connect_timeout + 1)
        except (*_ERRORS, TimeoutError) as exc:
            raise StreamError(f"cannot reach AMQP at {where} ({type(exc).__name__}: {exc})") from exc
        try:
            self._channel = await self._conn.channel()
            await self._channel.set_qos(prefetch_count=min(PREFETCH_BATCHES * self.options.batch, 65_535))
            q = await self._channel.declare_queue(self.where, durable=True)
            await q.consume(self._inbox.put, no_ack=False)
        except _ERRORS as exc:
            await self.close()
            raise StreamError(f"cannot consume queue {self.where!r} on {where} ({type(exc).__name__}: "
                              f"{exc})") from exc

    async def fetch(self, batch: int, max_wait: float) -> list[Message]:
        """Up to ``batch`` delivered messages, gathered for at most ``max_wait`` seconds."""
        out: list[Message] = []
        deadline = time.monotonic() + max_wait
        while len(out) < batch:
            try:  # take what is already delivered without a timer per message
                m = self._inbox.get_nowait()
            except asyncio.QueueEmpty:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                try:
                    m = await asyncio.wait_for(self._inbox.get(), left)
                except TimeoutError:
                    break
            out.append(Message(int(m.delivery_tag or 0), m.body, m))
        return out

    async def ack(self, messages: list[Message]) -> None:
        """Acknowledge the batch with one multiple-ack per channel, up to its highest delivery tag.

        Deliveries on a channel since closed are left for redelivery (they count as duplicates).
        """
        highest: dict[int, tuple[int, Any, int]] = {}  # per channel: highest tag, its message, how many
        failed = 0
        for m in messages:
            try:
                channel = m.handle.channel
            except _CLOSED:
                failed += 1
                continue
            tag, handle, count = highest.get(id(channel), (-1, None, 0))
            highest[id(channel)] = (m.seq, m.handle, count + 1) if m.seq > tag else (tag, handle, count + 1)
        for _, handle, count in highest.values():
            try:
                await handle.ack(multiple=True)
            except _CLOSED:
                failed += count
        if failed:
            log.warning("amqp: %d committed messages could not be acknowledged (channel closed); "
                        "the broker delivers them again and they count as duplicates", failed)

    async def nak(self, messages: list[Message]) -> None:
        """Reject with requeue: the broker delivers them again."""
        for m in messages:
            with suppress(*_CLOSED):
                await m.handle.nack(requeue=True)

    async def in_progress(self, messages: list[Message]) -> None:
        """Nothing to do: RabbitMQ waits for the ack (up to its consumer timeout)."""

    async def close(self) -> None:
        """Close the connection; unacknowledged messages return to the queue."""
        if self._conn is not None:
            with suppress(*_ERRORS):
                await self._conn.close()
