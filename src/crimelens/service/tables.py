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

from crimelens.app_tables import SERVICE_DDL


class Executes(Protocol):
    """Anything with DuckDB's ``execute`` (a connection or a cursor)."""

    def execute(self, query: str, parameters: Any = ...) -> Any: ...




def create_tables(con: Executes) -> None:
    """Create the service tables if they do not exist (idempotent)."""
    for ddl in SERVICE_DDL:
        con.execute(ddl)
