"""NATS JetStream: a durable pull consumer with explicit acks (``nats-py``).

A new durable consumer starts at the beginning of the stream; an existing one resumes after its
last acknowledged message. A message's position is its stream sequence. The client reconnects
by itself after a dropped connection.
"""

from __future__ import annotations

import asyncio
import logging
import time
from contextlib import suppress
from typing import TYPE_CHECKING

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from crimelens.stream.broker import StreamError, safe_url
from crimelens.stream.records import Message

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from crimelens.stream.options import StreamOptions

log = logging.getLogger("crimelens.stream")


class JetStreamBroker:
    """A durable pull subscription to ``options.subject`` on stream ``options.stream``."""

    scheme = "nats"

    def __init__(self, options: StreamOptions) -> None:
        if not options.stream or not options.subject:
            raise StreamError("NATS needs --stream and --subject")
        self.options = options
        self.where = options.stream
        self._nc: Client | None = None
        self._sub: JetStreamContext.PullSubscription | None = None

    async def open(self) -> None:
        """Connect, check the stream and bind the durable consumer."""
        self._nc = await _connect(self.options)
        self._sub = await _subscribe(self._nc.jetstream(), self.options)

    async def fetch(self, batch: int, max_wait: float) -> list[Message]:
        """Up to ``batch`` messages, gathered for at most ``max_wait`` seconds."""
        assert self._sub is not None, "open() first"
        msgs: list[Msg] = []
        deadline = time.monotonic() + max_wait
        while len(msgs) < batch:
            left = deadline - time.monotonic()
            if left < 0.01:
                break
            try:
                msgs.extend(await self._sub.fetch(batch - len(msgs), timeout=left))
            except (TimeoutError, nats.errors.TimeoutError):
                break
            except nats.errors.Error as exc:
                if msgs:  # load what is in hand; the error shows again on the next fetch
                    break
                raise StreamError(f"fetching from NATS failed ({type(exc).__name__}: {exc})") from exc
        return [Message(m.metadata.sequence.stream, m.data, m) for m in msgs]

    async def ack(self, messages: list[Message]) -> None:
        """Acknowledge each message, then flush."""
        assert self._nc is not None, "open() first"
        try:
            for m in messages:
                await m.handle.ack()
            await self._nc.flush()
        except nats.errors.Error as exc:
            raise StreamError(f"batch committed but its acks failed ({type(exc).__name__}); its "
                              f"{len(messages)} messages will be redelivered and count as duplicates") from exc

    async def nak(self, messages: list[Message]) -> None:
        """Negative acks: the server redelivers at once (else after the ack wait)."""
        with suppress(nats.errors.Error):
            for m in messages:
                await m.handle.nak()

    async def in_progress(self, messages: list[Message]) -> None:
        """Reset the ack wait of each message (a lost connection shows when the batch is acked)."""
        with suppress(nats.errors.Error):
            for m in messages:
                await m.handle.in_progress()

    async def close(self) -> None:
        """Close the connection."""
        if self._nc is not None:
            await self._nc.close()


async def _connect(opts: StreamOptions) -> Client:
    errors: list[BaseException] = []

    async def note(exc: Exception) -> None:
        errors.append(exc)
        log.debug("nats: %s: %s", type(exc).__name__, exc)

    where = safe_url(opts.url)
    try:
        return await asyncio.wait_for(
            nats.connect(opts.url, connect_timeout=opts.connect_timeout, error_cb=note),
            opts.connect_timeout + 1,
        )
    except (OSError, nats.errors.Error, TimeoutError) as exc:
        last = errors[-1] if errors else exc
        raise StreamError(f"cannot reach NATS at {where} ({type(last).__name__}: {last})") from exc


async def _subscribe(js: JetStreamContext, opts: StreamOptions) -> JetStreamContext.PullSubscription:
    try:
        await js.stream_info(opts.stream)
    except nats.js.errors.NotFoundError as exc:
        raise StreamError(f"stream {opts.stream!r} not found on {safe_url(opts.url)}") from exc
    except nats.errors.Error as exc:  # e.g. the server runs without JetStream
        raise StreamError(f"JetStream is not available at {safe_url(opts.url)} ({type(exc).__name__})") from exc
    try:
        info = await js.consumer_info(opts.stream, opts.durable)
        bound = info.config.filter_subject
        if bound and bound != opts.subject:
            raise StreamError(f"durable consumer {opts.durable!r} reads subject {bound!r}, not {opts.subject!r}; "
                              f"give another --durable")
    except nats.js.errors.NotFoundError:
        pass
    config = ConsumerConfig(durable_name=opts.durable, ack_policy=AckPolicy.EXPLICIT,
                            deliver_policy=DeliverPolicy.ALL, ack_wait=opts.ack_wait)
    try:
        return await js.pull_subscribe(opts.subject, durable=opts.durable, stream=opts.stream, config=config)
    except nats.js.errors.APIError as exc:
        raise StreamError(f"cannot create consumer {opts.durable!r} on stream {opts.stream!r}: "
                          f"{exc.description or exc}") from exc
