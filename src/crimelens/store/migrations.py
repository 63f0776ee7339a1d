"""Versioned schema migrations of a store, for both backends.

A store records the steps applied to it in ``schema_version`` (one row per step). Each
PostgreSQL step runs in its own transaction under an advisory lock, so two processes opening
one database at once (two service workers, a worker and a CLI ingest) apply it exactly once;
a store newer than this code is refused. The DuckDB store keeps its ordered steps in its own
upgrade path (:meth:`crimelens.store.duckdb.DuckDBStore._migrate`), run when it is opened for
writing; :func:`crimelens.store.upgrade.upgrade` runs either (it lives there, not here, so
this module imports no store and the store imports it without a cycle).

PostgreSQL steps:

1. the base tables (``incidents``, ``incident_personal``, ``quarantine``, ``files``, ``sources``);
2. the columns added to the canonical schema after it (``record_kind`` ``DEFAULT 'crime'``, the
   subject columns, ``search_hit``: :data:`crimelens.schema.ADDED_COLUMNS`);
3. GIS: an integer primary key ``fid`` (identity) on ``incidents`` beside the unique
   ``(source, incident_id)``, and, where PostGIS is installed, ``geom geometry(Point, 4326)``
   generated from ``lon``/``lat`` with a GiST index, so QGIS or ArcGIS Pro open the table as a layer;
4. a covering index ``incidents_time_cover`` on ``occurred_at`` carrying the columns the standard
   aggregates filter and group by (:data:`COVER_COLUMNS`), so a date-window count (hot spot
   cells, the service's hourly rollup, ``info``) is an index-only scan of a fifth of the table's
   bytes rather than a read of every row (:mod:`crimelens.store.pgtune`);
5. the application tables (service accounts, sessions, hash-chained audit, jobs, schedule and
   history, erasures, alerts and their deliveries, news feeds, patrol plans:
   :data:`crimelens.app_tables.ALL_DDL`), so ``crimelens db upgrade`` prepares a database
   before any service process starts (their owners still create them if absent, as on DuckDB).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql as psql

from crimelens.app_tables import ALL_DDL
from crimelens.exceptions import StoreError
from crimelens.schema import ADDED_COLUMNS, INCIDENT_SCHEMA, PERSONAL_SCHEMA, QUARANTINE_SCHEMA
from crimelens.store.sql import add_columns_sql, ddl_for

Conn = psycopg.Connection[Any]
_LOCK = "crimelens.migrations"


@dataclass(frozen=True)
class Step:
    """One ordered migration step: ``apply`` runs inside the step's transaction."""

    version: int
    description: str
    apply: Callable[[Conn], None]


def _base(c: Conn) -> None:
    c.execute(ddl_for("incidents", INCIDENT_SCHEMA, dialect="postgres"))
    c.execute("CREATE UNIQUE INDEX IF NOT EXISTS incidents_key ON incidents (source, incident_id)")
    c.execute("CREATE INDEX IF NOT EXISTS incidents_time ON incidents (occurred_at)")
    c.execute(ddl_for("incident_personal", PERSONAL_SCHEMA, dialect="postgres"))
    c.execute("CREATE INDEX IF NOT EXISTS personal_key ON incident_personal (source, incident_id)")
    c.execute(ddl_for("quarantine", QUARANTINE_SCHEMA, dialect="postgres"))
    c.execute("CREATE TABLE IF NOT EXISTS files (source TEXT, file TEXT, sha256 TEXT, batch_id TEXT, "
              "loaded_at TIMESTAMPTZ, report JSONB)")
    c.execute("CREATE TABLE IF NOT EXISTS sources (source TEXT PRIMARY KEY, crs TEXT, timezone TEXT)")


def _added_columns(c: Conn) -> None:
    for alter in add_columns_sql("incidents", INCIDENT_SCHEMA, list(ADDED_COLUMNS), dialect="postgres"):
        c.execute(alter)


def _gis(c: Conn) -> None:
    c.execute("ALTER TABLE incidents ADD COLUMN IF NOT EXISTS fid BIGINT GENERATED ALWAYS AS IDENTITY")
    has_pk = c.execute("SELECT count(*) FROM pg_constraint WHERE conrelid = 'incidents'::regclass "
                       "AND contype = 'p'").fetchone()
    if not (has_pk and has_pk[0]):
        c.execute("ALTER TABLE incidents ADD CONSTRAINT incidents_pkey PRIMARY KEY (fid)")
    if postgis_available(c):
        c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{_LOCK}:postgis"])  # one database-wide
        installed = c.execute("SELECT count(*) FROM pg_extension WHERE extname = 'postgis'").fetchone()
        if not (installed and installed[0]):
            try:
                with c.transaction():  # a savepoint: without the privilege the store works without geom
                    c.execute("CREATE EXTENSION postgis SCHEMA public")
            except psycopg.errors.InsufficientPrivilege:
                return
        c.execute("ALTER TABLE incidents ADD COLUMN IF NOT EXISTS geom geometry(Point, 4326) "
                  "GENERATED ALWAYS AS (ST_SetSRID(ST_MakePoint(lon, lat), 4326)) STORED")
        c.execute("CREATE INDEX IF NOT EXISTS incidents_geom ON incidents USING gist (geom)")


#: The columns carried by the covering index of step 4 (besides its key, ``occurred_at``).
COVER_COLUMNS = ("category", "category_group", "source", "record_kind", "time_precision", "crs", "x", "y", "lat")


def _cover(c: Conn) -> None:
    cols = psql.SQL(", ").join(psql.Identifier(n) for n in COVER_COLUMNS)
    c.execute(psql.SQL("CREATE INDEX IF NOT EXISTS incidents_time_cover ON incidents (occurred_at) "
                       "INCLUDE ({})").format(cols))


def _app_tables(c: Conn) -> None:
    for ddl in ALL_DDL:
        c.execute(ddl)


STEPS: tuple[Step, ...] = (
    Step(1, "base tables", _base),
    Step(2, "record_kind and the subject columns", _added_columns),
    Step(3, "integer primary key fid; PostGIS geom with a GiST index", _gis),
    Step(4, "covering index on occurred_at for the aggregates", _cover),
    Step(5, "application tables: service, audit, jobs, erasures, alerts, feeds, patrol plans", _app_tables),
)
#: The schema version this code writes (the last step's).
POSTGRES_VERSION = STEPS[-1].version


def postgis_available(c: Conn) -> bool:
    """Whether the PostGIS extension is installed in the database or can be created there."""
    row = c.execute("SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'").fetchone()
    return bool(row and row[0])


def has_postgis_column(c: Conn) -> bool:
    """Whether ``incidents`` in the current schema carries the ``geom`` column."""
    row = c.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = current_schema() "
                    "AND table_name = 'incidents' AND column_name = 'geom'").fetchone()
    return bool(row and row[0])


def current_version(c: Conn) -> int | None:
    """The store's schema version (None for an empty schema)."""
    found = c.execute("SELECT to_regclass('schema_version') IS NOT NULL").fetchone()
    if not (found and found[0]):
        return None
    row = c.execute("SELECT max(version) FROM schema_version").fetchone()
    return int(row[0]) if row and row[0] is not None else None


def upgrade_postgres(c: Conn, schema: str) -> list[int]:
    """Apply the steps ``schema`` lacks, each in a transaction; the versions applied (may be none).

    ``c`` must be in autocommit mode. Raises :class:`StoreError` when the store is newer than
    this code or a step fails (that step is rolled back; earlier steps stay).
    """
    applied: list[int] = []
    ident = psql.Identifier(schema)
    with suppress(psycopg.errors.UniqueViolation):  # another process may create it at the same moment
        c.execute(psql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
    c.execute(psql.SQL("SET search_path TO {}, public").format(ident))
    for step in STEPS:
        with c.transaction():
            c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [f"{_LOCK}:{schema}"])
            c.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
            current = current_version(c) or 0
            if current > POSTGRES_VERSION:
                raise StoreError(f"store schema version {current} is newer than this crimelens "
                                 f"({POSTGRES_VERSION}); upgrade crimelens")
            if current >= step.version:
                continue
            try:
                step.apply(c)
            except psycopg.Error as exc:
                raise StoreError(f"migration {step.version} ({step.description}) failed: "
                                 f"{str(exc).splitlines()[0]}") from exc
            c.execute("INSERT INTO schema_version VALUES (%s, now())", [step.version])
            applied.append(step.version)
    return applied
