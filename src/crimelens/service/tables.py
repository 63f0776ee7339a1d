"""The service's own tables, created on the service's connection beside the store's tables.

The DDL is written once for both backends (``VARCHAR``, ``TIMESTAMPTZ``, ``BOOLEAN``, ``BIGINT``
mean the same on DuckDB and PostgreSQL).

``svc_users`` (accounts, lockout state, TOTP), ``svc_sessions`` (server-side sessions: only a
SHA-256 of each token is kept), ``svc_audit`` (append-only, hash-chained audit log),
``svc_jobs`` (background jobs), ``svc_state`` (change counters that service processes sharing one
PostgreSQL database poll: see :meth:`crimelens.service.runtime.Runtime.shared`) and
``svc_products`` (published results such as forecasts and leaderboards, written by
``crimelens demo`` or analysis jobs).
"""

from __future__ import annotations

from typing import Any, Protocol


class Executes(Protocol):
    """Anything with DuckDB's ``execute`` (a connection or a cursor)."""

    def execute(self, query: str, parameters: Any = ...) -> Any: ...


DDL = (
    """CREATE TABLE IF NOT EXISTS svc_users (
        username VARCHAR PRIMARY KEY, role VARCHAR NOT NULL, password_hash VARCHAR NOT NULL,
        disabled BOOLEAN NOT NULL DEFAULT FALSE, can_export BOOLEAN NOT NULL DEFAULT FALSE,
        sources VARCHAR NOT NULL DEFAULT '', failed INTEGER NOT NULL DEFAULT 0, locked_until TIMESTAMPTZ,
        totp_secret VARCHAR, totp_enabled BOOLEAN NOT NULL DEFAULT FALSE, totp_last_step BIGINT,
        created_at TIMESTAMPTZ NOT NULL, password_changed_at TIMESTAMPTZ NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS svc_sessions (
        token_hash VARCHAR PRIMARY KEY, username VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL,
        last_seen TIMESTAMPTZ NOT NULL, revoked_at TIMESTAMPTZ)""",
    """CREATE TABLE IF NOT EXISTS svc_audit (
        seq BIGINT PRIMARY KEY, ts TIMESTAMPTZ NOT NULL, component VARCHAR NOT NULL, event VARCHAR NOT NULL,
        username VARCHAR, outcome VARCHAR NOT NULL, object_id VARCHAR, source_ip VARCHAR,
        request_id VARCHAR, reason VARCHAR, detail VARCHAR, prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS svc_jobs (
        id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, owner VARCHAR NOT NULL, status VARCHAR NOT NULL,
        progress BIGINT NOT NULL DEFAULT 0, created_at TIMESTAMPTZ NOT NULL, finished_at TIMESTAMPTZ,
        params VARCHAR, result VARCHAR, error VARCHAR)""",
    "CREATE TABLE IF NOT EXISTS svc_state (name VARCHAR PRIMARY KEY, n BIGINT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS svc_products (
        kind VARCHAR NOT NULL, name VARCHAR NOT NULL, created_at TIMESTAMPTZ NOT NULL, payload VARCHAR NOT NULL)""",
)


def create_tables(con: Executes) -> None:
    """Create the service tables if they do not exist (idempotent)."""
    for ddl in DDL:
        con.execute(ddl)
