"""What keeps the PostgreSQL store's analysis queries fast: session settings and upkeep after a load.

Measured on 2M synthetic incidents (bench/RESULTS.md, docs/postgres.md): the hot spot cell counts of
a one-year window took 4.0 s on a freshly loaded table and 0.7 s with the three things here and the
covering index of migration step 4 (:mod:`crimelens.store.migrations`):

* **planner statistics right after a large load.** A table loaded by ``COPY`` has none until
  autovacuum comes round (up to a minute later, or never between a load and the first query): the
  planner then guesses 16 rows for a one-year window of 850,000 and sorts them on disk. After a
  load that wrote at least :data:`MIN_ROWS` rows and a tenth of the table, ``VACUUM (ANALYZE)``
  runs at once; it also sets the visibility map that index-only scans need and the tuples' hint
  bits (otherwise the first reader writes every page). Smaller loads (stream batches) are left to
  autovacuum.
* **``work_mem``** (default 4 MB) too small for a hash aggregate of a few thousand cells with the
  planner's pessimistic group estimate: it sorts 850,000 rows on disk instead.
  ``CRIMELENS_PG_WORK_MEM`` (default ``32MB``) per store connection.
* **no JIT.** Compiling each aggregate cost 45–95 ms (more under load) and won nothing on
  queries of about a second.
"""

from __future__ import annotations

import os
import re
from contextlib import suppress
from typing import Any

import psycopg
from psycopg import sql as psql

from crimelens.exceptions import InputError

#: A load must write at least this many rows (and a tenth of the table) to refresh statistics at once.
MIN_ROWS = 10_000
_MEM = re.compile(r"^\d{1,7}\s*(kB|MB|GB)$")


def work_mem() -> str:
    """The ``work_mem`` of store connections: ``CRIMELENS_PG_WORK_MEM`` (e.g. ``64MB``), default ``32MB``."""
    value = os.environ.get("CRIMELENS_PG_WORK_MEM", "32MB").strip()
    if not _MEM.match(value):
        raise InputError(f"CRIMELENS_PG_WORK_MEM={value!r}: give a size such as 32MB")
    return value


def tune_session(conn: psycopg.Connection[Any]) -> None:
    """Session settings for a store connection's analysis queries (see the module notes)."""
    conn.execute("SET jit = off")
    conn.execute(psql.SQL("SET work_mem = {}").format(psql.Literal(work_mem())))


def needs_upkeep(written: int, table_rows: float) -> bool:
    """Whether a load that wrote ``written`` rows into a table the planner thinks holds
    ``table_rows`` (``-1`` when never analysed) should refresh the statistics at once."""
    return written >= MIN_ROWS and (table_rows < 0 or written >= 0.1 * table_rows)


def after_load(conn: psycopg.Connection[Any], written: int) -> bool:
    """``VACUUM (ANALYZE) incidents`` after a committed load when :func:`needs_upkeep`; whether it ran.

    ``conn`` must be in autocommit mode with no transaction open (VACUUM cannot run inside one).
    A failure (a role that does not own the table, a server shutting down) leaves the load as
    committed; autovacuum does the same work later.
    """
    row = conn.execute("SELECT reltuples FROM pg_class WHERE oid = to_regclass('incidents')").fetchone()
    if row is None or not needs_upkeep(written, float(row[0])):
        return False
    with suppress(psycopg.Error):
        conn.execute("VACUUM (ANALYZE) incidents")
        return True
    return False
