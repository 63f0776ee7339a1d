"""The PostgreSQL read pool: a request that finds every connection busy is told to retry (503), not failed."""
from __future__ import annotations

import threading
from typing import Any, cast

import pytest

from crimelens.exceptions import StoreBusyError
from tests.service.conftest import PG_SERVER, pg_or_skip


def _views(size: int) -> Any:
    pg_or_skip()
    import psycopg

    from crimelens.service.pgconn import PgReadView, PgViews

    return PgViews(lambda: cast(PgReadView, psycopg.connect(PG_SERVER, autocommit=True)), size)


def test_exhausted_pool_raises_busy_after_the_timeout() -> None:
    pool = _views(1)
    try:
        with pool.lease() as first, pytest.raises(StoreBusyError, match="no free database connection"), \
                pool.lease(timeout=0.2):
            pass
        assert first is not None
        with pool.lease(timeout=0.2) as again:  # released: the same connection serves the next request
            assert again is first
    finally:
        pool.close()


def test_waiting_request_gets_the_connection_when_it_is_freed() -> None:
    pool = _views(1)
    got: list[object] = []
    try:
        with pool.lease() as held:
            waiter = threading.Thread(target=lambda: got.append(pool.lease(timeout=5).__enter__()))
            waiter.start()
            waiter.join(0.3)
            assert waiter.is_alive() and not got  # still waiting while the connection is held
        waiter.join(5)
        assert got == [held]
    finally:
        pool.close()
