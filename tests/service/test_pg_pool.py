"""The PostgreSQL read pool: a request that finds every connection busy is told to retry (503), not failed."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from crimelens.exceptions import StoreBusyError
from tests.service.conftest import PG_SERVER, Env, PgTemplate, make_env, pg_or_skip


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



@pytest.fixture
def pg1(pg_template: PgTemplate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The service on PostgreSQL with a read pool of one connection."""
    monkeypatch.setenv("CRIMELENS_PG_POOL", "1")
    yield from make_env(pg_template, tmp_path)


def test_a_request_waiting_for_a_connection_does_not_stall_the_others(pg1: Env) -> None:
    """With the only pooled connection held, a data request waits for it in a worker thread while the
    event loop goes on answering (here /health); freed, the waiting request completes."""
    headers = pg1.auth("analyst")
    url = "/api/v1/aggregates/areas?column=district&from=2023-02-01&to=2024-02-01"
    got: list[int] = []
    with pg1.app.state.svc.rt.pg_views.lease():
        waiter = threading.Thread(target=lambda: got.append(pg1.client.get(url, headers=headers).status_code))
        waiter.start()
        time.sleep(0.5)
        t = time.perf_counter()
        health = pg1.client.get("/api/v1/health")
        took = time.perf_counter() - t
        assert health.status_code == 200 and took < 5, took  # the loop was not blocked by the wait
        assert waiter.is_alive() and not got
    waiter.join(20)
    assert got == [200]
