"""The service's runtime state: the store, the service-table writer, read views, caches, events.

On **DuckDB** (one writing process per file) the service *is* that process: it opens the store
read-write once, runs ingest uploads on that connection in a background job thread, and answers
reads on per-thread cursors of the same database (DuckDB's MVCC lets them read while a load is
in flight; they see each load all at once, when it commits).

On **PostgreSQL** several service processes share one database: each holds the store (for its
ingest jobs), one writer connection and a bounded pool of read connections
(:mod:`crimelens.service.pgconn`). What changes in another process is noticed through
:meth:`Runtime.shared`: the number of loaded files and the counters of ``svc_state``, polled at
most every :data:`POLL_SECONDS`, so caches follow loads made by any worker or CLI.

Either way, service code writes ``rt.write(sql, params)`` / ``rt.query(sql, params)`` with ``?``
placeholders, and multi-statement changes use ``with rt.transaction() as tx`` (``tx.lock(name)``
serialises them across processes on PostgreSQL).
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread

from crimelens.filters import IncidentFilter
from crimelens.service.rollup import CountsRollup, hourly_counts_keys
from crimelens.service.views import RollupCounts
from crimelens.settings import Settings
from crimelens.store.duckdb import DuckDBStore

Clock = Callable[[], datetime]
#: How often (at most) a PostgreSQL-backed process checks for changes made by other processes.
POLL_SECONDS = 0.25
#: how long :meth:`Runtime.close` waits for a background reader to finish
BACKGROUND_JOIN_S = 30.0


def is_postgres(url: str) -> bool:
    """Whether ``url`` names a PostgreSQL store."""
    return url.startswith(("postgresql://", "postgres://"))


def utcnow() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


class ReadView(RollupCounts, DuckDBStore):
    """A :class:`DuckDBStore` answering on its own cursor of the service's database (one per thread)."""

    def __init__(self, parent: DuckDBStore, runtime: Runtime | None = None) -> None:  # skips the parent's connect
        self.url = parent.url
        self.read_only = True
        self.con = parent.cursor()
        self.runtime = runtime


class Transaction:
    """Statements of one transaction on the service-table writer (see :meth:`Runtime.transaction`)."""

    def __init__(self, con: Any, postgres: bool) -> None:
        self.con, self.postgres = con, postgres

    def execute(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement; its rows (none for a statement without a result)."""
        rows: list[tuple[Any, ...]] = self.con.execute(sql, list(params)).fetchall()
        return rows

    def lock(self, name: str) -> None:
        """Hold the lock ``name`` until the transaction ends, against every process (PostgreSQL);
        on DuckDB the service is one process and the runtime's write lock already serialises."""
        if self.postgres:
            key = f"crimelens.{name}"
            self.con.execute("SELECT pg_advisory_xact_lock(hashtext(?))", [key])


class ResultCache:
    """A small LRU of computed results keyed by the data generation, so an ingest invalidates it."""

    def __init__(self, size: int = 256) -> None:
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}

    def peek(self, key: Hashable) -> tuple[bool, Any]:
        """``(True, value)`` when ``key`` is cached, else ``(False, None)``; never computes."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return True, self._data[key]
        return False, None

    def get_or_compute(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """The cached value for ``key``; concurrent misses of one key compute it once (single flight)."""
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._lock:
                if key in self._data:
                    return self._data[key]
            value = compute()
            with self._lock:
                self._data[key] = value
                self._flights.pop(key, None)
                while len(self._data) > self._size:
                    self._data.popitem(last=False)
        return value

    def clear(self) -> None:
        """Forget everything."""
        with self._lock:
            self._data.clear()


@dataclass
class EventBus:
    """In-process publish/subscribe for the live feed; thread-safe publishers, asyncio subscribers."""

    history: deque[dict[str, Any]] = field(default_factory=lambda: deque(maxlen=100))
    _subs: list[tuple[asyncio.AbstractEventLoop, asyncio.Queue[dict[str, Any]]]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _next_id: int = 1
    #: Whether this process evaluates alerts of the batches it announces (on PostgreSQL only the
    #: ``batch-alerts`` leader does: :mod:`crimelens.service.batchfeed`).
    evaluates_alerts: bool = True
    _batches: OrderedDict[str, None] = field(default_factory=OrderedDict)

    def claim(self, batch_id: str) -> bool:
        """True the first time ``batch_id`` is announced in this process (so each batch is
        published once, whether its load ran here or its commit was heard from the store)."""
        with self._lock:
            if batch_id in self._batches:
                return False
            self._batches[batch_id] = None
            while len(self._batches) > 20_000:
                self._batches.popitem(last=False)
            return True

    def release(self, batch_id: str) -> None:
        """Forget a claim whose event was not published (so a later attempt may publish it)."""
        with self._lock:
            self._batches.pop(batch_id, None)

    def publish(self, kind: str, data: dict[str, Any]) -> dict[str, Any]:
        """Send an event to every subscriber (callable from any thread)."""
        with self._lock:
            event = {"id": self._next_id, "event": kind, "data": data}
            self._next_id += 1
            self.history.append(event)
            subs = list(self._subs)
        for loop, q in subs:
            try:
                loop.call_soon_threadsafe(_offer, q, event)
            except RuntimeError:  # the subscriber's loop has closed
                self.unsubscribe(q)
        return event

    def subscribe(self, after: int | None = None) -> tuple[asyncio.Queue[dict[str, Any]], list[dict[str, Any]]]:
        """A queue of future events, plus the retained events newer than ``after``."""
        q: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=1000)
        with self._lock:
            self._subs.append((asyncio.get_running_loop(), q))
            backlog = [e for e in self.history if after is not None and e["id"] > after]
        return q, backlog

    def unsubscribe(self, gone: asyncio.Queue[dict[str, Any]]) -> None:
        """Stop delivering to ``gone``."""
        with self._lock:
            self._subs = [(lp, q) for lp, q in self._subs if q is not gone]


def _offer(queue: asyncio.Queue[dict[str, Any]], event: dict[str, Any]) -> None:
    if not queue.full():
        queue.put_nowait(event)


class Runtime:
    """Everything one app instance holds: settings, clock, store, caches, events."""

    def __init__(self, settings: Settings, *, clock: Clock = utcnow) -> None:
        self.settings = settings
        self.clock = clock
        self.postgres = is_postgres(settings.db)
        self.write_lock = threading.RLock()
        self._local = threading.local()
        self._views: list[ReadView] = []
        self._views_lock = threading.Lock()
        self._pool: queue.SimpleQueue[ReadView] = queue.SimpleQueue()
        self._generation = 0
        self._shared: dict[str, int] = {}
        self._polled_at = 0.0
        self._poll_lock = threading.Lock()
        self.cache = ResultCache()
        self.rollups = ResultCache(size=4)
        self.events = EventBus()
        self.closed = False
        #: background readers (the hot spot cell index build): joined by :meth:`close` before the
        #: connections they read on are closed
        self.background: list[threading.Thread] = []
        self.store: Any
        self.writer: Any
        if self.postgres:
            self._open_postgres(settings.db)
        else:
            self.store = DuckDBStore(settings.db)
            self.writer = self.store.cursor()
            self._create_tables()

    def _open_postgres(self, url: str) -> None:
        from crimelens.service.pgconn import PgConn, PgView, PgViews
        from crimelens.store.postgres import PostgresStore

        self.store = PostgresStore(url)  # applies pending migrations, under an advisory lock
        schema = self.store.schema
        self.writer = PgConn.open(url, schema)
        self._poller = PgConn.open(url, schema, read_only=True)
        self.pg_views = PgViews(lambda: PgView(url, schema, self), int(os.environ.get("CRIMELENS_PG_POOL", "8")))
        self._create_tables()
        self._shared = self._read_shared()

    def _create_tables(self) -> None:
        from crimelens.app_tables import ALERT_DDL
        from crimelens.service.tables import create_tables

        with self.transaction() as tx:  # two workers starting at once create them once
            tx.lock("service-tables")
            create_tables(tx)
            for ddl in ALERT_DDL:
                tx.execute(ddl)

    # -- reading ------------------------------------------------------------------------------
    def reader(self) -> Any:
        """This thread's read view of the store (for work that stays on one thread)."""
        view: Any = getattr(self._local, "view", None)
        if view is None:
            view = self._new_view(self)
            self._local.view = view
            if not self.postgres:
                with self._views_lock:
                    self._views.append(view)
        return view

    def _new_view(self, runtime: Runtime | None) -> Any:
        if self.postgres:
            from crimelens.service.pgconn import PgView

            return PgView(self.settings.db, self.store.schema, runtime)
        return ReadView(self.store, runtime)

    @contextmanager
    def lease(self) -> Iterator[Any]:
        """A read view for one request, from a pool (a request may hop threads between its steps)."""
        if self.postgres:
            with self.pg_views.lease() as pg:
                yield pg
            return
        try:
            view = self._pool.get_nowait()
        except queue.Empty:
            view = ReadView(self.store, self)
            with self._views_lock:
                self._views.append(view)
        try:
            yield view
        finally:
            self._pool.put(view)

    # -- change tracking ------------------------------------------------------------------------
    @property
    def generation(self) -> int:
        """The data generation: cached results carry it, so a load (here or, on PostgreSQL, in
        any process) makes them recomputed."""
        if self.postgres and time.monotonic() - self._polled_at >= POLL_SECONDS:
            self.poll()
        return self._generation

    @generation.setter
    def generation(self, value: int) -> None:
        self._generation = value

    def bump(self) -> None:
        """Mark the data as changed (after a load) so cached results are recomputed, in every
        process on PostgreSQL."""
        self._generation += 1
        self.cache.clear()
        self.rollups.clear()
        if self.postgres:
            self.touch("data")

    def touch(self, name: str) -> None:
        """Count a change of ``name`` (``data``, ``accounts``...) where every process sees it (PostgreSQL)."""
        if not self.postgres:
            return
        self.write("INSERT INTO svc_state VALUES (?, 1) ON CONFLICT (name) DO UPDATE SET n = svc_state.n + 1",
                   [name])
        with self._poll_lock:
            self._shared[name] = self._shared.get(name, 0) + 1

    def shared(self, name: str) -> int:
        """The change counter of ``name`` as last seen (always 0 on DuckDB: one process)."""
        if self.postgres and time.monotonic() - self._polled_at >= POLL_SECONDS:
            self.poll()
        return self._shared.get(name, 0)

    def poll(self) -> None:
        """Read the shared counters now; a changed data counter (or file count) starts a new generation."""
        if not self._poll_lock.acquire(blocking=False):
            return  # another thread is reading them
        try:
            self._polled_at = time.monotonic()
            seen = self._read_shared()
            changed = any(seen.get(k) != self._shared.get(k) for k in ("data", ":files"))
            self._shared = seen
        finally:
            self._poll_lock.release()
        if changed:
            self._generation += 1
            self.cache.clear()
            self.rollups.clear()

    def _read_shared(self) -> dict[str, int]:
        rows = self._poller.execute("SELECT ':files', count(*) FROM files UNION ALL SELECT name, n FROM svc_state")
        return {str(k): int(v) for k, v in rows.fetchall()}

    def try_leader(self, role: str) -> bool:
        """Whether this process holds ``role`` (e.g. the alert scheduler) among the processes sharing
        the database: the first to ask keeps it until it exits. Always true on DuckDB."""
        if not self.postgres:
            return True
        key = f"crimelens.leader.{role}:{self.store.schema}"
        got = self.write("SELECT pg_try_advisory_lock(hashtext(?))", [key])
        return bool(got and got[0][0])

    # -- rollup and caches ----------------------------------------------------------------------
    def rollup(self, zone: str) -> CountsRollup:
        """The hourly counts rollup of the current data generation, wall-clock keys in ``zone``."""
        rollup: CountsRollup = self.rollups.get_or_compute((self.generation, zone), lambda: self._build_rollup(zone))
        return rollup

    def _build_rollup(self, zone: str) -> CountsRollup:
        view = self._new_view(None)  # a plain view: the rollup is built from the store itself
        try:
            hourly = view.counts(hourly_counts_keys(), IncidentFilter(include_non_crime=True), tz="UTC")
        finally:
            view.con.close()
        return CountsRollup(hourly, zone)

    def rollup_answers(self, by: Sequence[str], flt: IncidentFilter) -> bool:
        """Whether an already built rollup answers ``counts(by, flt)`` (in about a millisecond, so
        the request may be computed on the event loop); never builds one."""
        zone_hit, zone = self.cache.peek((self.generation, ("timezone", flt.sources)))
        if not zone_hit:
            return False
        built, rollup = self.rollups.peek((self.generation, zone))
        return bool(built and rollup.answers(by, flt))

    def warm(self) -> None:
        """Build the rollup for the store's default zone now, so no request waits for it."""
        with self.lease() as view:
            zone = view.timezone()
        self.rollup(zone)

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` cached per data generation."""
        return self.cache.get_or_compute((self.generation, key), compute)

    async def acached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """:meth:`cached` for the event loop: a hit is answered at once, a miss computes in a worker thread."""
        hit, value = self.cache.peek((self.generation, key))
        if hit:
            return value
        return await anyio.to_thread.run_sync(self.cached, key, compute)

    # -- the service's own tables -----------------------------------------------------------------
    def write(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the service-table writer, under the write lock (``?`` placeholders)."""
        with self.write_lock:
            rows: list[tuple[Any, ...]] = self.writer.execute(sql, list(params)).fetchall()
            return rows

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read query (``?`` placeholders): this thread's cursor on DuckDB, a pooled connection on PostgreSQL."""
        if self.postgres:
            with self.pg_views.lease() as view:
                rows: list[tuple[Any, ...]] = view.con.execute(sql, list(params)).fetchall()
                return rows
        got: list[tuple[Any, ...]] = self.reader().con.execute(sql, list(params)).fetchall()
        return got

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """Statements that commit together on the writer, under the write lock (re-entrant: an inner
        ``with`` joins the outer transaction). Rolled back when the block raises."""
        with self.write_lock:
            depth = getattr(self._local, "tx_depth", 0)
            tx = Transaction(self.writer, self.postgres)
            if depth:
                yield tx
                return
            self._local.tx_depth = 1
            try:
                if self.postgres:
                    with self.writer.conn.transaction():
                        yield tx
                else:
                    self.writer.execute("BEGIN TRANSACTION")
                    try:
                        yield tx
                    except BaseException:
                        self.writer.execute("ROLLBACK")
                        raise
                    self.writer.execute("COMMIT")
            finally:
                self._local.tx_depth = 0

    def close(self) -> None:
        """Close every cursor and connection, and the store."""
        if self.closed:
            return
        self.closed = True
        for t in list(self.background):  # a build reading on a view ends before its view is closed
            if t is not threading.current_thread():
                t.join(timeout=BACKGROUND_JOIN_S)
        with self._views_lock:
            for v in self._views:
                v.con.close()
        local = getattr(self._local, "view", None)
        if self.postgres:
            self.pg_views.close()
            self._poller.close()
            if local is not None:
                local.close()
        self.writer.close()
        self.store.close()
