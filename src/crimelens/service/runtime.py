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
from collections.abc import Callable, Hashable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import anyio.to_thread
import duckdb
import pandas as pd

from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter
from crimelens.service.rollup import CountsRollup, hourly_counts_keys
from crimelens.settings import Settings
from crimelens.store.duckdb import DuckDBStore

Clock = Callable[[], datetime]


def utcnow() -> datetime:
    """The current time, UTC."""
    return datetime.now(UTC)


class ReadView(DuckDBStore):
    """A :class:`DuckDBStore` answering on its own cursor of the service's database (one per thread).

    With a runtime, ``counts`` is answered from the runtime's hourly rollup when it can be
    (:mod:`crimelens.service.rollup`), else by the store.
    """

    def __init__(self, parent: DuckDBStore, runtime: Runtime | None = None) -> None:  # skips the parent's connect
        self.url = parent.url
        self.read_only = True
        self.con = parent.con.cursor()
        self.runtime = runtime

    def counts(
        self, by: Sequence[str], flt: IncidentFilter | None = None, *, tz: str | None = None
    ) -> pd.DataFrame:
        """Counts grouped by ``by``: from the rollup when it answers exactly, else from the store."""
        flt = flt or IncidentFilter()
        if self.runtime is not None:
            zone = tz or self.runtime.cached(("timezone", flt.sources), lambda: self.timezone(flt.sources))
            out = self.runtime.rollup(zone).counts(by, flt)
            if out is not None:
                out.attrs["timezone"] = zone
                return out
        return DuckDBStore.counts(self, by, flt, tz=tz)


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
        self.rollups = ResultCache(size=4)
        self.events = EventBus()
        self.closed = False

    def reader(self) -> ReadView:
        """This thread's read view of the store (for work that stays on one thread)."""
        view: ReadView | None = getattr(self._local, "view", None)
        if view is None:
            view = ReadView(self.store, self)
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
            view = ReadView(self.store, self)
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
        self.rollups.clear()

    def rollup(self, zone: str) -> CountsRollup:
        """The hourly counts rollup of the current data generation, wall-clock keys in ``zone``."""
        rollup: CountsRollup = self.rollups.get_or_compute((self.generation, zone), lambda: self._build_rollup(zone))
        return rollup

    def _build_rollup(self, zone: str) -> CountsRollup:
        view = ReadView(self.store)  # a plain view: the rollup is built from the store itself
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
        self.rollup(self.reader().timezone())

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """``compute()`` cached per data generation."""
        return self.cache.get_or_compute((self.generation, key), compute)

    async def acached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """:meth:`cached` for the event loop: a hit is answered at once, a miss computes in a worker thread."""
        hit, value = self.cache.peek((self.generation, key))
        if hit:
            return value
        return await anyio.to_thread.run_sync(self.cached, key, compute)

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
