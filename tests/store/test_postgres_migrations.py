"""PostgreSQL store schema: versioned migrations (upgrade from version 1, idempotent, a newer store
refused), the integer primary key and the PostGIS layer a GIS desk opens. Runs against the server
at $CRIMELENS_TEST_PG (default 127.0.0.1:5432) and skips with a reason when none answers."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from crimelens.exceptions import StoreError
from tests.conftest import TEST_KEY, chicago_row, write_csv
from tests.service.conftest import PG_SERVER, pg_or_skip

psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")


@pytest.fixture
def schema() -> Iterator[str]:
    pg_or_skip()
    name = f"t_mig_{uuid.uuid4().hex[:10]}"
    yield name
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")


def _url(schema: str) -> str:
    return f"{PG_SERVER}?schema={schema}"


def _sql(query: str) -> list[tuple[object, ...]]:
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        return con.execute(query).fetchall()


def test_new_store_has_integer_key_geom_and_gist(schema: str, tmp_path: Path) -> None:
    from crimelens.ingest import ingest_file
    from crimelens.store.postgres import PostgresStore

    store = PostgresStore(_url(schema))
    ingest_file(store, write_csv(tmp_path / "a.csv", [chicago_row(i) for i in range(5)]), key=TEST_KEY)
    assert store.postgis and store.schema == schema
    store.close()
    pk = _sql(f"SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_index i JOIN pg_attribute a "
              f"ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) WHERE i.indisprimary "
              f"AND i.indrelid = '{schema}.incidents'::regclass")
    assert pk == [("fid", "bigint")]
    geo = _sql(f"SELECT type, srid FROM public.geometry_columns WHERE f_table_schema = '{schema}' "
               "AND f_table_name = 'incidents' AND f_geometry_column = 'geom'")
    assert geo == [("POINT", 4326)]
    gist = _sql(f"SELECT indexdef FROM pg_indexes WHERE schemaname = '{schema}' AND tablename = 'incidents' "
                "AND indexdef ILIKE '%USING gist (geom)%'")
    assert len(gist) == 1
    rows = _sql(f"SELECT fid, ST_X(geom), lon FROM {schema}.incidents ORDER BY fid")
    assert [r[0] for r in rows] == sorted({r[0] for r in rows}) and len(rows) == 5
    assert all(abs(float(x) - float(lon)) < 1e-9 for _, x, lon in rows)  # type: ignore[arg-type]
    kinds = _sql(f"SELECT DISTINCT record_kind FROM {schema}.incidents")
    assert kinds == [("crime",)]


def test_upgrade_from_version_1_and_idempotent(schema: str, tmp_path: Path) -> None:
    from crimelens.store.migrations import POSTGRES_VERSION, STEPS
    from crimelens.store.upgrade import status, upgrade

    # a version-1 store as the previous code wrote it: base tables, no fid, no record_kind
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"CREATE SCHEMA {schema}")
        con.execute(f"SET search_path TO {schema}, public")
        con.execute("CREATE TABLE schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        STEPS[0].apply(con)
        for col in ("record_kind", "subject_age_band", "subject_sex", "subject_ethnicity_self",
                    "subject_ethnicity_officer", "search_hit"):
            con.execute(f'ALTER TABLE incidents DROP COLUMN "{col}"')
        con.execute("INSERT INTO schema_version VALUES (1, now())")
    assert status(_url(schema))["pending"] == [2, 3, 4, 5]
    out = upgrade(_url(schema))
    assert out["applied"] == [2, 3, 4, 5] and out["version"] == POSTGRES_VERSION
    assert upgrade(_url(schema))["applied"] == []  # idempotent
    cols = {r[0] for r in _sql(f"SELECT column_name FROM information_schema.columns WHERE table_schema = "
                               f"'{schema}' AND table_name = 'incidents'")}
    assert {"fid", "geom", "record_kind", "search_hit"} <= cols
    assert _sql(f"SELECT version FROM {schema}.schema_version ORDER BY 1") == [(1,), (2,), (3,), (4,), (5,)]
    # step 5: every application table, before any service process has run
    tables = {r[0] for r in _sql(f"SELECT table_name FROM information_schema.tables WHERE table_schema = '{schema}'")}
    assert {"svc_users", "svc_sessions", "svc_audit", "svc_jobs", "svc_state", "svc_products", "svc_job_schedule",
            "svc_job_history", "svc_erasures", "svc_training_exclusions", "alerts", "alert_feedback",
            "alert_outbox", "alert_delivery_log", "feeds", "feed_items", "patrol_plans"} <= tables
    cover = _sql(f"SELECT indexdef FROM pg_indexes WHERE schemaname = '{schema}' "
                 "AND indexname = 'incidents_time_cover'")
    assert len(cover) == 1 and "(occurred_at) INCLUDE (category, category_group, source" in str(cover[0][0])


def test_newer_store_is_refused(schema: str) -> None:
    from crimelens.store.postgres import PostgresStore
    from crimelens.store.upgrade import upgrade

    PostgresStore(_url(schema)).close()
    _sql(f"INSERT INTO {schema}.schema_version VALUES (99, now()) RETURNING version")
    with pytest.raises(StoreError, match="newer than this crimelens"):
        upgrade(_url(schema))
    with pytest.raises(StoreError, match="newer"):
        PostgresStore(_url(schema))


def test_db_cli_upgrade_version_and_bad_urls(schema: str) -> None:
    from typer.testing import CliRunner

    from crimelens.cli.app import app

    run = CliRunner().invoke
    r = run(app, ["db", "version", "--db", _url(schema), "--json"])
    assert r.exit_code == 0 and '"pending": [1, 2, 3, 4, 5]' in r.stdout
    r = run(app, ["db", "upgrade", "--db", _url(schema)])
    assert r.exit_code == 0 and "applied now: 1, 2, 3, 4, 5" in r.stdout
    r = run(app, ["db", "upgrade", "--db", _url(schema)])
    assert r.exit_code == 0 and "applied now: none" in r.stdout
    for bad in ("postgresql://postgres@127.0.0.1:1/x", PG_SERVER.rsplit("/", 1)[0] + "/no_such_db_zz",
                f"{PG_SERVER}?schema=Bad-Name", "mysql://host/db"):
        r = run(app, ["db", "upgrade", "--db", bad])
        assert r.exit_code == 2, (bad, r.output)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output


def test_documented_gis_desk_role_reads_the_layer_but_not_personal_data(schema: str, tmp_path: Path) -> None:
    """The grants docs/postgres.md gives a GIS desk: the point layer is readable, the personal table
    and the quarantine (raw rows) are not."""
    from crimelens.ingest import ingest_file
    from crimelens.store.postgres import PostgresStore

    store = PostgresStore(_url(schema))
    ingest_file(store, write_csv(tmp_path / "a.csv", [chicago_row(i) for i in range(4)]), key=TEST_KEY)
    store.close()
    role = f"gis_{uuid.uuid4().hex[:8]}"
    db = _sql("SELECT current_database()")[0][0]
    grants = [f"CREATE ROLE {role} LOGIN", f"GRANT CONNECT ON DATABASE {db} TO {role}",
              f"GRANT USAGE ON SCHEMA {schema} TO {role}", f"GRANT SELECT ON {schema}.incidents TO {role}",
              f"GRANT USAGE ON SCHEMA public TO {role}"]
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        for g in grants:
            con.execute(g)
    try:
        with psycopg.connect(PG_SERVER, autocommit=True) as con:
            con.execute(f"SET ROLE {role}")
            n, typ = con.execute(f"SELECT count(geom), GeometryType(min(geom)) FROM {schema}.incidents").fetchone()  # type: ignore[misc]
            assert (n, typ) == (4, "POINT")
            for table in ("incident_personal", "quarantine"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege):
                    con.execute(f"SELECT 1 FROM {schema}.{table} LIMIT 1")
    finally:
        with psycopg.connect(PG_SERVER, autocommit=True) as con:
            con.execute(f"DROP OWNED BY {role}")
            con.execute(f"DROP ROLE {role}")
