"""The service's runtime state: the store's single writer, per-thread read views, caches, events.

DuckDB allows one writing process per file, so the service *is* that process: it opens the
store read-write once, runs ingest uploads on that connection in a background job thread, and
answers reads on per-thread cursors of the same database (DuckDB's MVCC lets them read while a
load is in flight; they see each load all at once, when it commits). Writes to the service's
own tables (users, sessions, audit, jobs) go through one cursor under one lock.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb

from crimelens.exceptions import InputError
from crimelens.settings import Settings
from crimelens.store.duckdb import DuckDBStore

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


class ReadView(DuckDBStore):
    """A :class:`DuckDBStore` answering on its own cursor of the service's database (one per thread)."""

    def __init__(self, parent: DuckDBStore) -> None:  # deliberately skips the parent's connect
        self.url = parent.url
        self.read_only = True
        self.con = parent.con.cursor()


class ResultCache:
    """A small LRU of computed results keyed by the data generation, so an ingest invalidates it."""

    def __init__(self, size: int = 256) -> None:
        self._data: OrderedDict[Hashable, Any] = OrderedDict()
        self._size = size
        self._lock = threading.Lock()
        self._flights: dict[Hashable, threading.Lock] = {}

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
        from crimelens.service.tables import create_tables

        if settings.db.startswith(("postgresql://", "postgres://")):
            raise InputError("the service needs a DuckDB store for now (PostgreSQL support is planned)")
        self.settings = settings
        self.clock = clock
        self.store = DuckDBStore(settings.db)
        self.write_lock = threading.RLock()
        self.writer: duckdb.DuckDBPyConnection = self.store.con.cursor()
        create_tables(self.writer)
        self._local = threading.local()
        self._views: list[ReadView] = []
        self._views_lock = threading.Lock()
        self._pool: queue.SimpleQueue[ReadView] = queue.SimpleQueue()
        self.generation = 0
        self.cache = ResultCache()
        self.events = EventBus()
        self.closed = False

    def reader(self) -> ReadView:
        """This thread's read view of the store (for work that stays on one thread)."""
        view: ReadView | None = getattr(self._local, "view", None)
        if view is None:
            view = ReadView(self.store)
            self._local.view = view
            with self._views_lock:
                self._views.append(view)
        return view

    @contextmanager
    def lease(self) -> Iterator[ReadView]:
        """A read view for one request, from a pool (a request may hop threads between its steps)."""
        try:
            view = self._pool.get_nowait()
        except queue.Empty:
            view = ReadView(self.store)
            with self._views_lock:
                self._views.append(view)
        try:
            yield view
        finally:
            self._pool.put(view)

    def bump(self) -> None:
        """Mark the data as changed (after a load) so cached results are recomputed."""
        self.generation += 1
        self.cache.clear()

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` cached per data generation."""
        return self.cache.get_or_compute((self.generation, key), compute)

    def write(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run one statement on the service-table writer, under the write lock."""
        with self.write_lock:
            return self.writer.execute(sql, list(params)).fetchall()

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        """Run a read query on this thread's cursor."""
        return self.reader().con.execute(sql, list(params)).fetchall()

    def close(self) -> None:
        """Close every cursor and the store."""
        if self.closed:
            return
        self.closed = True
        with self._views_lock:
            for v in self._views:
                v.con.close()
        self.writer.close()
        self.store.close()
