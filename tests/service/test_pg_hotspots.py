"""Cold hot spot requests on PostgreSQL: a pooled connection only for the cell counts, one computation
for identical concurrent requests, the same cells as DuckDB, and still 503 when the pool is exhausted."""
from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from crimelens.service import products
from tests.service.conftest import Env, PgTemplate, make_env

URL = "/api/v1/hotspots?cell_m=500&from=2023-06-01&to=2024-06-01"


@pytest.fixture
def pg1(pg_template: PgTemplate, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Env]:
    """The service on PostgreSQL with a read pool of ONE connection per process."""
    monkeypatch.setenv("CRIMELENS_PG_POOL", "1")
    yield from make_env(pg_template, tmp_path)


def _auth(env: Env) -> dict[str, str]:
    return env.auth("analyst")


def test_statistic_runs_after_the_connection_is_back(pg1: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """While Gi* is computed for one request, the only pooled connection is free for others."""
    pool = pg1.app.state.svc.rt.pg_views
    seen: list[str] = []
    real = products.hotspots_from_counts

    def observed(counts: pd.DataFrame, cell_m: float, band_m: float | None) -> dict[str, Any]:
        with pool.lease(timeout=0.5) as view:  # StoreBusyError here if the request still held it
            seen.append(str(view.con.execute("SELECT 'free'").fetchone()[0]))
        return real(counts, cell_m, band_m)

    monkeypatch.setattr(products, "hotspots_from_counts", observed)
    r = pg1.client.get(URL, headers=_auth(pg1))
    assert r.status_code == 200, r.text
    assert seen == ["free"] and r.json()["features"]


def test_identical_cold_requests_compute_once(pg1: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Six identical requests that arrive while the first computes share its one computation."""
    calls: list[float] = []
    real = products.hotspots_from_counts

    def slow_statistic(counts: pd.DataFrame, cell_m: float, band_m: float | None) -> dict[str, Any]:
        calls.append(time.monotonic())
        time.sleep(0.4)  # keep the flight open while the other requests arrive
        return real(counts, cell_m, band_m)

    monkeypatch.setattr(products, "hotspots_from_counts", slow_statistic)
    headers = _auth(pg1)
    bodies: list[tuple[int, bytes]] = []
    lock = threading.Lock()

    def one() -> None:
        r = pg1.client.get(URL, headers=headers)
        with lock:
            bodies.append((r.status_code, r.content))

    threads = [threading.Thread(target=one) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert [s for s, _ in bodies] == [200] * 6
    assert len({b for _, b in bodies}) == 1
    assert len(calls) == 1


def test_other_windows_are_served_while_one_computes(pg1: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    """With one connection and a slow statistic, a second window's request is not refused (503)."""
    real = products.hotspots_from_counts
    started = threading.Event()

    def slow_statistic(counts: pd.DataFrame, cell_m: float, band_m: float | None) -> dict[str, Any]:
        started.set()
        time.sleep(1.0)
        return real(counts, cell_m, band_m)

    monkeypatch.setattr(products, "hotspots_from_counts", slow_statistic)
    headers = _auth(pg1)
    first: list[int] = []
    t = threading.Thread(target=lambda: first.append(pg1.client.get(URL, headers=headers).status_code))
    t.start()
    assert started.wait(20)
    r = pg1.client.get("/api/v1/aggregates/areas?column=district&from=2023-06-01&to=2024-06-01", headers=headers)
    t.join(30)
    assert r.status_code == 200 and first == [200]


def test_exhausted_pool_still_answers_503(pg1: Env) -> None:
    """A request that finds the one connection held past the lease timeout gets 503 + Retry-After."""
    pool = pg1.app.state.svc.rt.pg_views
    headers = _auth(pg1)

    class Quick:
        """The pool with a short lease wait, so the test does not wait 30 s."""

        def __init__(self, inner: Any) -> None:
            self.inner = inner

        def lease(self, timeout: float = 30.0) -> Any:
            return self.inner.lease(timeout=0.3)

        def __getattr__(self, name: str) -> Any:
            return getattr(self.inner, name)

    pg1.app.state.svc.rt.pg_views = Quick(pool)
    try:
        with pool.lease():  # every connection of this process busy
            r = pg1.client.get(URL, headers=headers)
    finally:
        pg1.app.state.svc.rt.pg_views = pool
    assert r.status_code == 503 and r.headers.get("Retry-After")


def test_same_cells_as_duckdb(pg_template: PgTemplate, template_store: Path, tmp_path: Path) -> None:
    """The endpoint's significant cells are the same on both stores (same files loaded)."""
    got = []
    for template, sub in ((pg_template, "pg"), (template_store, "duck")):
        (tmp_path / sub).mkdir()
        for env in make_env(template, tmp_path / sub):
            r = env.client.get(URL, headers=env.auth("analyst"))
            assert r.status_code == 200, r.text
            body = r.json()
            got.append((body["class_counts"],
                        sorted((f["properties"]["Gi_Bin"], round(f["properties"]["z"], 9)) for f in body["features"])))
    assert got[0] == got[1] and got[0][1]
