"""A NATS JetStream consumer that loads micro-batches of incident records into a store.

Each micro-batch (up to ``batch`` messages, gathered for at most ``max_wait`` seconds) is
decoded (:mod:`crimelens.stream.records`), cleaned with the mapping and loaded in one
transaction through :func:`crimelens.ingest.ingest_chunks`. Its messages are acknowledged only
after the commit; if the load fails they are negatively acknowledged (redelivered at once) and
the error is raised. Delivery is at least once; because incident ids and row hashes depend on
the record alone, a redelivered record counts as a duplicate (or an update) and the store holds
each incident exactly once.
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
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import nats
import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from crimelens.exceptions import CrimelensError
from crimelens.ingest import ingest_chunks
from crimelens.sources.mapping import Mapping
from crimelens.stream.records import Message, batch_sha256, decode, rejected_table, to_chunks

if TYPE_CHECKING:
    from nats.aio.client import Client
    from nats.js.client import JetStreamContext

    from crimelens.store.base import IngestReport, Store

log = logging.getLogger("crimelens.stream")


class StreamError(CrimelensError, ConnectionError):
    """The NATS server, stream or consumer cannot be used, or a micro-batch failed to load."""


@dataclass(slots=True)
class StreamOptions:
    """Where to consume from and how (see ``crimelens stream --help``)."""

    stream: str
    subject: str
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

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise ValueError("batch must be at least 1")
        if self.max_wait <= 0:
            raise ValueError("max_wait must be positive")
        if self.idle_exit is not None and self.idle_exit < 0:
            raise ValueError("idle_exit must not be negative")


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
    """Consume ``options.stream`` into ``store`` until idle (``idle_exit``) or ``stop`` is set.

    With ``handle_signals`` (main thread only), SIGINT and SIGTERM set ``stop``: the batch in
    hand is loaded and acknowledged, then the run ends; a second signal acts as usual.

    Raises
    ------
    StreamError
        When the server cannot be reached, the stream does not exist, the durable consumer
        filters another subject, or a micro-batch fails to load (its messages are then
        redelivered, none acknowledged).
    """
    stop = stop or threading.Event()
    with _signals(stop, enabled=handle_signals):
        return asyncio.run(_run(store, mapping, options, key=key, on_batch=on_batch, stop=stop))


def load_batch(store: Store, mapping: Mapping, messages: list[Message], *, key: bytes, stream: str,
               source: str | None = None) -> IngestReport:
    """Decode, clean and load one micro-batch in one transaction; returns its accounting."""
    name = source or mapping.name
    batch_id = uuid.uuid4().hex
    seqs = [m.seq for m in messages]
    label = f"nats:{stream}#{min(seqs)}-{max(seqs)}" if seqs else f"nats:{stream}"
    decoded = decode(messages)
    rejected = rejected_table(decoded.rejections, source=name, file=label, batch_id=batch_id)
    return ingest_chunks(store, to_chunks(decoded.records, sorted(mapping.columns())), mapping, key=key,
                         file=label, sha256=batch_sha256(messages), batch_id=batch_id, source=name,
                         rejected=rejected)


def safe_url(url: str) -> str:
    """``url`` without credentials, for messages."""
    parts = urlsplit(url if "://" in url else f"nats://{url}")
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}{f':{parts.port}' if parts.port else ''}"


async def _run(store: Store, mapping: Mapping, opts: StreamOptions, *, key: bytes, on_batch: OnBatch | None,
               stop: threading.Event) -> StreamSummary:
    summary = StreamSummary(opts.stream, opts.subject, opts.source or mapping.name, mapping.name)
    nc = await _connect(opts)
    try:
        sub = await _subscribe(nc.jetstream(), opts)
        idle_since = time.monotonic()
        while not stop.is_set():
            msgs = await _fetch(sub, opts.batch, opts.max_wait)
            if not msgs:
                if opts.idle_exit is not None and time.monotonic() - idle_since >= opts.idle_exit:
                    summary.stopped_by = "idle"
                    break
                continue
            messages = [Message(m.metadata.sequence.stream, m.data) for m in msgs]
            seqs = [m.seq for m in messages]
            report = await _load(store, mapping, opts, msgs, messages, key)
            try:
                for m in msgs:
                    await m.ack()
                await nc.flush()
            except nats.errors.Error as exc:
                raise StreamError(f"batch committed but its acks failed ({type(exc).__name__}); its "
                                  f"{len(msgs)} messages will be redelivered and count as duplicates") from exc
            summary.add(report, messages)
            log.info("batch %s: seq %s-%s read %d stored %d updated %d duplicates %d quarantined %d",
                     summary.batches, min(seqs), max(seqs), report.read, report.stored,
                     report.updated, report.duplicates, report.quarantined)
            if on_batch is not None:
                on_batch(report, messages)
            idle_since = time.monotonic()
        if stop.is_set():
            summary.stopped_by = "stop"
    finally:
        await nc.close()
    return summary


async def _load(store: Store, mapping: Mapping, opts: StreamOptions, msgs: list[Msg], messages: list[Message],
                key: bytes) -> IngestReport:
    """Load in a worker thread, telling the server the batch is in progress while it runs."""
    task = asyncio.ensure_future(asyncio.to_thread(
        load_batch, store, mapping, messages, key=key, stream=opts.stream, source=opts.source))
    try:
        while True:
            done, _ = await asyncio.wait({task}, timeout=max(opts.ack_wait / 3, 0.5))
            if done:
                return task.result()
            with suppress(nats.errors.Error):  # a lost connection shows when the batch is acked
                for m in msgs:
                    await m.in_progress()
    except BaseException as exc:
        if not task.done():  # cancelled: the thread finishes, but its batch is never acked
            log.warning("load interrupted; %d messages left unacknowledged for redelivery", len(msgs))
            raise
        with suppress(nats.errors.Error):  # unreachable server: redelivered after ack_wait instead
            for m in msgs:
                await m.nak()
        log.warning("batch of %d messages failed to load; none acknowledged, all redelivered", len(msgs))
        raise StreamError(f"loading a batch of {len(msgs)} messages failed ({type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}); none were acknowledged") from exc


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


async def _fetch(sub: JetStreamContext.PullSubscription, batch: int, max_wait: float) -> list[Msg]:
    """Up to ``batch`` messages, gathered for at most ``max_wait`` seconds."""
    msgs: list[Msg] = []
    deadline = time.monotonic() + max_wait
    while len(msgs) < batch:
        left = deadline - time.monotonic()
        if left < 0.01:
            break
        try:
            msgs.extend(await sub.fetch(batch - len(msgs), timeout=left))
        except (TimeoutError, nats.errors.TimeoutError):
            break
        except nats.errors.Error as exc:
            if msgs:  # load what is in hand; the error shows again on the next fetch
                break
            raise StreamError(f"fetching from NATS failed ({type(exc).__name__}: {exc})") from exc
    return msgs


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
