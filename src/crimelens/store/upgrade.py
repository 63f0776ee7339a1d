"""``crimelens db upgrade`` / ``db status``: open a store by URL and run or report its migrations.

Separate from :mod:`crimelens.store.migrations` (the steps themselves, imported by the
PostgreSQL store) so that neither module imports the other: the store → steps edge is the
only one, and this module sits above both.
"""

from __future__ import annotations

from typing import Any

from psycopg import sql as psql

from crimelens.exceptions import StoreError
from crimelens.store.migrations import POSTGRES_VERSION, STEPS, current_version, upgrade_postgres


def _check_url(url: str) -> None:
    scheme = url.split("://", 1)[0] if "://" in url else ""
    if scheme and scheme not in ("postgresql", "postgres"):
        raise StoreError(f"cannot migrate a {scheme}:// store: give a DuckDB file or a postgresql:// URL")


def upgrade(url: str) -> dict[str, Any]:
    """Bring the store at ``url`` to this code's schema: ``{"backend", "version", "applied"}``."""
    _check_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from crimelens.store.postgres import PostgresStore

        pg = PostgresStore(url, migrate=False)
        try:
            applied = upgrade_postgres(pg.conn, pg.schema)
            return {"backend": "postgres", "schema": pg.schema, "version": current_version(pg.conn),
                    "code_version": POSTGRES_VERSION, "applied": applied}
        finally:
            pg.close()
    from crimelens.store.duckdb import SCHEMA_VERSION, DuckDBStore

    store = DuckDBStore(url)
    try:
        row = store.con.execute("SELECT max(version) FROM schema_version").fetchone()
        return {"backend": "duckdb", "version": int(row[0]) if row and row[0] is not None else None,
                "code_version": SCHEMA_VERSION, "applied": []}
    finally:
        store.close()


def status(url: str) -> dict[str, Any]:
    """The store's schema version beside this code's, without changing anything."""
    _check_url(url)
    if url.startswith(("postgresql://", "postgres://")):
        from crimelens.store.postgres import PostgresStore

        pg = PostgresStore(url, migrate=False)
        try:
            pg.conn.execute(psql.SQL("SET search_path TO {}, public").format(psql.Identifier(pg.schema)))
            version = current_version(pg.conn)
            return {"backend": "postgres", "schema": pg.schema, "version": version,
                    "code_version": POSTGRES_VERSION, "pending": [s.version for s in STEPS
                                                                  if s.version > (version or 0)]}
        finally:
            pg.close()
    from crimelens.store.duckdb import SCHEMA_VERSION, DuckDBStore

    store = DuckDBStore(url, read_only=True)
    try:
        row = store.con.execute("SELECT max(version) FROM schema_version").fetchone()
        version = int(row[0]) if row and row[0] is not None else None
        return {"backend": "duckdb", "version": version, "code_version": SCHEMA_VERSION,
                "pending": list(range((version or 0) + 1, SCHEMA_VERSION + 1))}
    finally:
        store.close()
