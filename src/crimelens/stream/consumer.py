"""The consumer loop: micro-batches from any broker (NATS JetStream, MQTT, AMQP) into a store.

Each micro-batch (up to ``batch`` messages, gathered for at most ``max_wait`` seconds) is
decoded (:mod:`crimelens.stream.records`), cleaned with the mapping and loaded in one
transaction through :func:`crimelens.ingest.ingest_chunks`. Its messages are acknowledged only
after the commit; if the load fails they are negatively acknowledged (redelivered) and the
error is raised. Delivery is at least once; because incident ids and row hashes depend on the
record alone, a redelivered record counts as a duplicate (or an update) and the store holds
each incident exactly once. The broker is chosen by the URL's scheme
(:mod:`crimelens.stream.broker`); each broker is one small class (``jetstream``, ``mqtt``,
``amqp``).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any

from crimelens.ingest import ingest_chunks
from crimelens.sources.mapping import Mapping
from crimelens.stream.broker import Broker, StreamError, safe_url
from crimelens.stream.brokers import open_broker
from crimelens.stream.options import StreamOptions
from crimelens.stream.records import MAX_BYTES, Message, batch_sha256, decode, rejected_table, to_chunks

if TYPE_CHECKING:
    from crimelens.store.base import IngestReport, Store

__all__ = ["StreamError", "StreamOptions", "StreamSummary", "consume", "load_batch", "open_broker", "safe_url"]

log = logging.getLogger("crimelens.stream")


@dataclass(slots=True)
class StreamSummary:
    """Accounting of a consumer run: the sum of its micro-batches' reports."""

    stream: str
    subject: str
    source: str
    preset: str
    read: int = 0
    stored: int = 0
    updated: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    batches: int = 0
    messages: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    stopped_by: str = ""

    def add(self, report: IngestReport, messages: list[Message]) -> None:
        """Add one committed micro-batch."""
        self.read += report.read
        self.stored += report.stored
        self.updated += report.updated
        self.duplicates += report.duplicates
        self.quarantined += report.quarantined
        reasons = Counter(self.by_reason) + Counter(report.by_reason)
        self.by_reason = dict(reasons.most_common())
        self.batches += 1
        self.messages += len(messages)
        seqs = [m.seq for m in messages]
        self.first_seq = min(seqs) if self.first_seq is None else min(self.first_seq, *seqs)
        self.last_seq = max(seqs) if self.last_seq is None else max(self.last_seq, *seqs)

    def balanced(self) -> bool:
        """True when every read record is accounted for."""
        return self.read == self.stored + self.updated + self.duplicates + self.quarantined

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


#: Called after each committed micro-batch with its report and its messages.
OnBatch = Callable[["IngestReport", list[Message]], None]


def consume(
    store: Store,
    mapping: Mapping,
    options: StreamOptions,
    *,
    key: bytes,
    on_batch: OnBatch | None = None,
    stop: threading.Event | None = None,
    handle_signals: bool = False,
) -> StreamSummary:
    """Consume ``options.url`` into ``store`` until idle (``idle_exit``) or ``stop`` is set.

    With ``handle_signals`` (main thread only), SIGINT and SIGTERM set ``stop``: the batch in
    hand is loaded and acknowledged, then the run ends; a second signal acts as usual.

    Raises
    ------
    StreamError
        When the broker cannot be reached, the stream, topic or queue cannot be read, the NATS
        durable consumer filters another subject, or a micro-batch fails to load (its messages
        are then redelivered, none acknowledged).
    """
    stop = stop or threading.Event()
    broker = open_broker(options)
    with _signals(stop, enabled=handle_signals):
        return asyncio.run(_run(broker, store, mapping, options, key=key, on_batch=on_batch, stop=stop))


def load_batch(store: Store, mapping: Mapping, messages: list[Message], *, key: bytes, stream: str,
               source: str | None = None, scheme: str = "nats", max_bytes: int | None = MAX_BYTES) -> IngestReport:
    """Decode, clean and load one micro-batch in one transaction; returns its accounting.

    Its load-log and quarantine ``file`` is ``SCHEME:STREAM#FIRST-LAST`` (broker positions).
    """
    name = source or mapping.name
    batch_id = uuid.uuid4().hex
    seqs = [m.seq for m in messages]
    label = f"{scheme}:{stream}#{min(seqs)}-{max(seqs)}" if seqs else f"{scheme}:{stream}"
    decoded = decode(messages, max_bytes=max_bytes)
    rejected = rejected_table(decoded.rejections, source=name, file=label, batch_id=batch_id)
    return ingest_chunks(store, to_chunks(decoded.records, sorted(mapping.columns())), mapping, key=key,
                         file=label, sha256=batch_sha256(messages), batch_id=batch_id, source=name,
                         rejected=rejected)


async def _run(broker: Broker, store: Store, mapping: Mapping, opts: StreamOptions, *, key: bytes,
               on_batch: OnBatch | None, stop: threading.Event) -> StreamSummary:
    summary = StreamSummary(opts.stream or broker.where, opts.subject or broker.where, opts.source or mapping.name,
                            mapping.name)
    await broker.open()
    try:
        idle_since = time.monotonic()
        while not stop.is_set():
            messages = await broker.fetch(opts.batch, opts.max_wait)
            if not messages:
                if opts.idle_exit is not None and time.monotonic() - idle_since >= opts.idle_exit:
                    summary.stopped_by = "idle"
                    break
                continue
            seqs = [m.seq for m in messages]
            report = await _load(broker, store, mapping, opts, messages, key)
            await broker.ack(messages)
            summary.add(report, messages)
            log.info("batch %s: %s %s-%s read %d stored %d updated %d duplicates %d quarantined %d",
                     summary.batches, broker.scheme, min(seqs), max(seqs), report.read, report.stored,
                     report.updated, report.duplicates, report.quarantined)
            if on_batch is not None:
                on_batch(report, messages)
            idle_since = time.monotonic()
        if stop.is_set():
            summary.stopped_by = "stop"
    finally:
        await broker.close()
    return summary


async def _load(broker: Broker, store: Store, mapping: Mapping, opts: StreamOptions, messages: list[Message],
                key: bytes) -> IngestReport:
    """Load in a worker thread, telling the broker the batch is in progress while it runs."""
    task = asyncio.ensure_future(asyncio.to_thread(
        load_batch, store, mapping, messages, key=key, stream=broker.where, source=opts.source,
        scheme=broker.scheme, max_bytes=opts.max_bytes))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=max(opts.ack_wait / 3, 0.5))
            if done:
                return task.result()
            await broker.in_progress(messages)
    except BaseException as exc:
        if not task.done():  # cancelled: the thread finishes, but its batch is never acked
            log.warning("load interrupted; %d messages left unacknowledged for redelivery", len(messages))
            raise
        await broker.nak(messages)
        log.warning("batch of %d messages failed to load; none acknowledged, all redelivered", len(messages))
        raise StreamError(f"loading a batch of {len(messages)} messages failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); none were acknowledged") from exc


@contextmanager
def _signals(stop: threading.Event, *, enabled: bool) -> Iterator[None]:
    """SIGINT/SIGTERM set ``stop`` once, then the previous handlers are back."""
    if not enabled or threading.current_thread() is not threading.main_thread():
        yield
        return
    sigs = (signal.SIGINT, signal.SIGTERM)
    previous = {s: signal.getsignal(s) for s in sigs}

    def restore() -> None:
        for s, h in previous.items():
            signal.signal(s, h)

    def on_signal(signum: int, frame: FrameType | None) -> None:
        log.info("%s: finishing the current batch, then stopping", signal.Signals(signum).name)
        stop.set()
        restore()

    for s in sigs:
        signal.signal(s, on_signal)
    try:
        yield
    finally:
        restore()
