"""PostgreSQL store upkeep for the analysis queries (store/pgtune.py): statistics and visibility map
right after a large load, hot spot cell counts as an index-only scan of the covering index, session
settings, and ``info`` from one scan with the same answer as the four queries it replaces. Runs
against the server at $CRIMELENS_TEST_PG and skips with a reason when none answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from crimelens.exceptions import InputError
from crimelens.filters import IncidentFilter
from crimelens.store import pgtune
from tests.service.conftest import pg_admin, pg_or_skip, pg_url

psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")


@pytest.fixture
def db() -> Iterator[str]:
    """A database of its own: VACUUM marks pages all-visible only when no older snapshot is open in
    the same database, and the shared one may have long queries of other people running."""
    pg_or_skip()
    name = f"t_plan_{uuid.uuid4().hex[:10]}"
    pg_admin(f"CREATE DATABASE {name}")
    yield pg_url(name)
    pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture
def schema(db: str) -> str:
    return "plan"


def _load(url: str, n: int, *, source: str = "synthetic", seed: int = 3) -> Any:
    """Load ``n`` synthetic incidents in one batch, as bench/service.py builds its stores."""
    from crimelens.schema import PERSONAL_SCHEMA, QUARANTINE_SCHEMA, to_arrow
    from crimelens.store.base import IngestReport
    from crimelens.store.postgres import PostgresStore
    from crimelens.synth import CityConfig, generate_city

    city = generate_city(CityConfig(n_incidents=n, days=400, seed=seed))
    frame = city.incidents.assign(source=source)
    store = PostgresStore(url)
    store.set_source_crs(source, str(frame["crs"].dropna().iloc[0]))
    batch = uuid.uuid4().hex
    with store.batch(source, "f", batch, batch) as w:
        w.add(to_arrow(frame), PERSONAL_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
        report = w.commit(IngestReport(source=source, file="f", sha256=batch, batch_id=batch, read=n))
    return store, report


def _table_state(db: str, schema: str) -> tuple[float, object, object]:
    with psycopg.connect(db, autocommit=True) as con:
        row = con.execute("SELECT c.reltuples, s.last_vacuum, s.last_analyze FROM pg_class c JOIN "
                          "pg_stat_user_tables s ON s.relid = c.oid WHERE s.schemaname = %s "
                          "AND c.relname = 'incidents'", [schema]).fetchone()
    assert row is not None
    return float(row[0]), row[1], row[2]


def test_large_load_is_analysed_and_cells_are_an_index_only_scan(db: str, schema: str) -> None:
    from crimelens.store.sql import counts_sql

    store, report = _load(f"{db}?schema={schema}", 12_000)
    try:
        rows, vacuumed, analysed = _table_state(db, schema)
        assert report.stored == 12_000 and rows == pytest.approx(12_000, rel=0.05)
        assert vacuumed is not None and analysed is not None
        first = datetime.fromisoformat(str(store.info()["first_occurred_at"]))
        flt = IncidentFilter(start=first + timedelta(days=60), end=first + timedelta(days=120))  # a window
        q, params = counts_sql(["crs", "cell:250"], flt, dialect="postgres")
        plan = "\n".join(r[0] for r in store.conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF) " + q, params).fetchall())  # type: ignore[call-overload]
        assert "Index Only Scan using incidents_time_cover" in plan, plan
        assert "Heap Fetches: 0" in plan, plan
        got = store.counts(["crs", "cell:250"], flt)
        assert int(got["count"].sum()) == int(store.counts(["crs"], flt)["count"].sum()) > 0
    finally:
        store.close()


def test_small_load_leaves_the_upkeep_to_autovacuum(db: str, schema: str) -> None:
    store, report = _load(f"{db}?schema={schema}", 300)
    store.close()
    rows, vacuumed, _ = _table_state(db, schema)
    assert report.stored == 300 and vacuumed is None and rows < 0  # never analysed: below MIN_ROWS


def test_needs_upkeep_rule() -> None:
    assert pgtune.needs_upkeep(10_000, -1)  # never analysed
    assert pgtune.needs_upkeep(20_000, 150_000)
    assert not pgtune.needs_upkeep(9_999, -1)  # a stream batch
    assert not pgtune.needs_upkeep(50_000, 2_000_000)  # under a tenth of the table


def test_session_settings(db: str, schema: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from crimelens.store.postgres import PostgresStore

    monkeypatch.setenv("CRIMELENS_PG_WORK_MEM", "48MB")
    store = PostgresStore(f"{db}?schema={schema}")
    try:
        assert store.conn.execute("SHOW work_mem").fetchone() == ("48MB",)
        assert store.conn.execute("SHOW jit").fetchone() == ("off",)
    finally:
        store.close()
    monkeypatch.setenv("CRIMELENS_PG_WORK_MEM", "32MB'; DROP TABLE x; --")
    with pytest.raises(InputError, match="CRIMELENS_PG_WORK_MEM"):
        pgtune.work_mem()


def test_info_from_one_scan_equals_the_separate_queries(db: str, schema: str) -> None:
    url = f"{db}?schema={schema}"
    store, _ = _load(url, 400, source="alpha", seed=5)
    store.close()
    store, _ = _load(url, 250, source="beta", seed=6)
    try:
        c = store.conn
        info = store.info()
        total, first, last = c.execute("SELECT count(*), min(occurred_at), max(occurred_at) FROM incidents").fetchone()
        located = c.execute("SELECT count(*) FROM incidents WHERE lat IS NOT NULL").fetchone()[0]
        assert info["incidents"] == total == 650
        assert info["first_occurred_at"] == first.isoformat() and info["last_occurred_at"] == last.isoformat()
        assert info["located_share"] == round(located / total, 4)
        assert info["by_source"] == dict(c.execute("SELECT source, count(*) FROM incidents GROUP BY 1").fetchall())
        assert info["by_category"] == dict(c.execute(
            "SELECT category, count(*) FROM incidents GROUP BY 1").fetchall())
        assert list(info["by_category"].values()) == sorted(info["by_category"].values(), reverse=True)
    finally:
        store.close()
