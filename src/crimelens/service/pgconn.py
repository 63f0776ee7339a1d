"""The service's PostgreSQL side: DuckDB's ``execute(sql, params)`` shape on a psycopg connection.

Service code is written once, with ``?`` placeholders and ``con.execute(sql, params).fetchall()``
/ ``.fetchone()`` / ``.fetch_df()`` as on a DuckDB cursor. :class:`PgConn` gives a psycopg
connection that shape: placeholders are translated (:func:`crimelens.store.postgres.pyformat`)
and values are bound client-side, with psycopg's quoting, so an untyped ``? IS NULL`` works as
on DuckDB. :class:`PgViews` is the bounded pool of read connections a service process holds.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from typing import Any

import pandas as pd
import psycopg
from psycopg import sql as psql

from crimelens.exceptions import StoreBusyError, StoreError
from crimelens.service.views import RollupCounts, RollupSource
from crimelens.store.postgres import PostgresStore, bindable, pyformat, split_schema


class PgResult:
    """The rows of one statement, read like a DuckDB result."""

    def __init__(self, rows: list[tuple[Any, ...]], names: list[str]) -> None:
        self.rows = rows
        self.names = names
        self._at = 0

    def fetchall(self) -> list[tuple[Any, ...]]:
        """The remaining rows."""
        out, self._at = self.rows[self._at:], len(self.rows)
        return out

    def fetchone(self) -> tuple[Any, ...] | None:
        """The next row, or None."""
        if self._at >= len(self.rows):
            return None
        self._at += 1
        return self.rows[self._at - 1]

    def fetch_df(self) -> pd.DataFrame:
        """All rows as a frame."""
        return pd.DataFrame(self.rows, columns=self.names)


class PgConn:
    """A psycopg connection (autocommit) that executes ``?``-placeholder SQL like a DuckDB cursor."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    @classmethod
    def open(cls, url: str, schema: str, *, read_only: bool = False) -> PgConn:
        """A new connection to the service's database, ``search_path`` on the store's schema."""
        conninfo, _ = split_schema(url)
        try:
            conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {str(exc).splitlines()[0]}") from exc
        conn.execute("SET TIME ZONE 'UTC'")
        conn.execute(psql.SQL("SET search_path TO {}, public").format(psql.Identifier(schema)))
        if read_only:
            conn.execute("SET default_transaction_read_only = on")
        return cls(conn)

    def execute(self, query: str, parameters: Sequence[Any] | None = None) -> PgResult:
        """Run one statement; ``?`` placeholders, values bound client-side."""
        with psycopg.ClientCursor(self.conn) as cur:
            cur.execute(pyformat(query), bindable(parameters or []))
            if cur.description is None:
                return PgResult([], [])
            return PgResult(cur.fetchall(), [d.name for d in cur.description])

    def cursor(self) -> PgConn:
        """This connection (a DuckDB cursor's ``cursor()`` gives a new cursor; callers here only read)."""
        return self

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


class PgReadView(PostgresStore):
    """A read-only :class:`PostgresStore` on its own connection, with ``con`` for ``?`` SQL."""

    def __init__(self, url: str, schema: str) -> None:
        super().__init__(url, schema=schema, read_only=True)
        self.con = PgConn(self.conn)


class PgView(RollupCounts, PgReadView):
    """A read-only PostgreSQL view on its own connection, counts from the runtime's rollup."""

    def __init__(self, url: str, schema: str, runtime: RollupSource | None = None) -> None:
        PgReadView.__init__(self, url, schema)
        self.runtime = runtime


class PgViews:
    """A bounded pool of :class:`PgReadView` (each its own connection) for one service process."""

    def __init__(self, factory: Callable[[], PgReadView], size: int) -> None:
        self.factory, self.size = factory, size
        self._idle: queue.LifoQueue[PgReadView] = queue.LifoQueue()
        self._made: list[PgReadView] = []
        self._lock = threading.Lock()

    @contextmanager
    def lease(self, timeout: float = 30.0) -> Iterator[PgReadView]:
        """A view for one unit of work; waits up to ``timeout`` seconds when all are busy."""
        view = self.acquire(timeout)
        try:
            yield view
        except BaseException as exc:
            self.release(view, exc)
            raise
        self.release(view)

    def try_acquire(self) -> PgReadView | None:
        """An idle view at once, or ``None`` (never waits, never connects: safe on an event loop)."""
        try:
            return self._idle.get_nowait()
        except queue.Empty:
            return None

    def acquire(self, timeout: float = 30.0) -> PgReadView:
        """A view: an idle one, a new one while below ``size``, else the next one given back within
        ``timeout`` seconds (:class:`StoreBusyError` after it). Give it back with :meth:`release`."""
        return self.try_acquire() or self._make_or_wait(timeout)

    def release(self, view: PgReadView, exc: BaseException | None = None) -> None:
        """Give ``view`` back after its work (ended by ``exc`` if it failed)."""
        if isinstance(exc, psycopg.OperationalError):
            self._discard(view)  # a broken connection is not put back
        else:
            self._idle.put(view)  # autocommit: a failed statement leaves no open transaction behind

    def _make_or_wait(self, timeout: float) -> PgReadView:
        with self._lock:
            grow = len(self._made) < self.size
            if grow:
                view = self.factory()
                self._made.append(view)
                return view
        try:
            return self._idle.get(timeout=timeout)
        except queue.Empty as exc:
            # every connection busy: the client is told to retry (503), not that the server failed (500)
            raise StoreBusyError(f"no free database connection after {timeout:g} s") from exc

    def _discard(self, view: PgReadView) -> None:
        with self._lock:
            if view in self._made:
                self._made.remove(view)
        with suppress(psycopg.Error):
            view.close()

    def close(self) -> None:
        """Close every connection."""
        with self._lock:
            for view in self._made:
                view.close()
            self._made.clear()
