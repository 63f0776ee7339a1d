"""The default store: one DuckDB file that users can also open with DuckDB's own tools.

Tables: ``incidents`` (canonical), ``incident_personal`` (restricted originals), ``quarantine``,
``files`` (SHA-256 and accounting of each load), ``sources`` (each source's local CRS) and
``schema_version``. A load runs in a single transaction: rows are staged in a temporary table,
then classified against what is stored (new → insert, same id and different ``row_hash`` →
update, same hash → duplicate) and committed at once, so a killed process leaves all or nothing
of the file. DuckDB allows one writing process per file; a second writer gets
:class:`~crimelens.exceptions.StoreBusyError`.

**Encryption at rest.** With a key configured (``CRIMELENS_DB_KEY`` or ``CRIMELENS_DB_KEY_FILE``,
see :mod:`crimelens.store.keys`) the file is opened through DuckDB's database encryption
(``ATTACH … (ENCRYPTION_KEY …)``): every block, the restricted ``incident_personal`` table
included, is AES-GCM encrypted on disk. A wrong or missing key is one :class:`StoreError` and the
file is not touched.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from crimelens.exceptions import InputError, StoreBusyError, StoreError
from crimelens.filters import IncidentFilter
from crimelens.schema import ADDED_COLUMNS, INCIDENT_COLUMNS, INCIDENT_SCHEMA, PERSONAL_SCHEMA, QUARANTINE_SCHEMA
from crimelens.store.base import ChunkRouter, ChunkSplit, IngestReport
from crimelens.store.keys import CRYPTO_ENV, KEY_ENV, KEY_FILE_ENV, StoreKey, crypto_choice, store_key
from crimelens.store.sql import add_columns_sql, counts_sql, ddl_for, where_clause

SCHEMA_VERSION = 2  # 2: record_kind and the subject columns (schema.ADDED_COLUMNS)
LOAD_MEMORY_LIMIT = "512MB"
LOAD_THREADS = 1
#: The catalog name of an encrypted store file attached to the in-memory connection.
CATALOG = "store"


class DuckDBStore:
    """A crimelens store in a DuckDB file (or ``:memory:``)."""

    #: The attached catalog when the file is encrypted (cursors must ``USE`` it), else None.
    catalog: str | None = None

    def __init__(self, path: str | Path, *, read_only: bool = False, key: StoreKey | None = None) -> None:
        self.url = str(path)
        self.read_only = read_only
        if read_only and self.url != ":memory:" and not Path(self.url).exists():
            raise InputError(f"{self.url}: no such store (run `crimelens ingest` first)")
        key = key or (store_key() if self.url != ":memory:" else None)
        try:
            self.con = duckdb.connect(self.url, read_only=read_only) if key is None else self._attach(key)
        except duckdb.CatalogException as exc:
            raise StoreError(_key_problem(self.url, str(exc), key)) from exc
        except duckdb.InvalidInputException as exc:
            if "encryption key" not in str(exc).lower():
                raise StoreError(f"cannot open store {self.url}: {str(exc).splitlines()[0]}") from exc
            raise StoreError(f"cannot open store {self.url}: wrong encryption key"
                             f" (from {key.origin if key else KEY_ENV})") from exc
        except duckdb.IOException as exc:
            if "lock" in str(exc).lower():
                raise StoreBusyError(
                    f"store is busy: another process is writing to {self.url}; try again when it finishes"
                ) from exc
            raise StoreError(f"cannot open store {self.url}: {str(exc).splitlines()[0]}") from exc
        except duckdb.Error as exc:
            raise StoreError(f"cannot open store {self.url}: {str(exc).splitlines()[0]}") from exc
        if not read_only:
            self._migrate()
        elif _scalar(self.con, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'incidents'") and \
                not _scalar(self.con, "SELECT count(*) FROM information_schema.columns "
                            "WHERE table_name = 'incidents' AND column_name = 'record_kind'"):
            self.con.close()
            raise StoreError(f"store {self.url} has schema version 1; open it for writing once "
                             "(any ingest) to upgrade it")

    def _attach(self, key: StoreKey) -> duckdb.DuckDBPyConnection:
        """An in-memory connection with the encrypted file attached as :data:`CATALOG` and in use."""
        con = duckdb.connect(":memory:")
        try:
            if not self.read_only:
                _load_cipher(con)
            mode = "READ_ONLY, " if self.read_only else ""
            quoted, secret = self.url.replace("'", "''"), key.secret.replace("'", "''")
            con.execute(f"ATTACH '{quoted}' AS {CATALOG} ({mode}ENCRYPTION_KEY '{secret}')")
            con.execute(f"USE {CATALOG}")
        except BaseException:
            con.close()
            raise
        self.catalog = CATALOG
        return con

    def cursor(self) -> duckdb.DuckDBPyConnection:
        """A new cursor on this store's database (the encrypted catalog, when there is one)."""
        cur = self.con.cursor()
        if self.catalog is not None:
            cur.execute(f"USE {self.catalog}")
        return cur

    # -- schema ---------------------------------------------------------------------------
    def _migrate(self) -> None:
        con = self.con
        con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER, applied_at TIMESTAMPTZ)")
        row = con.execute("SELECT max(version) FROM schema_version").fetchone()
        current = row[0] if row else None
        if current is not None and current > SCHEMA_VERSION:
            raise StoreError(f"store schema version {current} is newer than this crimelens ({SCHEMA_VERSION})")
        con.execute(ddl_for("incidents", INCIDENT_SCHEMA, dialect="duckdb"))
        for alter in add_columns_sql("incidents", INCIDENT_SCHEMA, list(ADDED_COLUMNS), dialect="duckdb"):
            con.execute(alter)  # a version-1 store gains the columns at the end, where the schema has them
        con.execute(ddl_for("incident_personal", PERSONAL_SCHEMA, dialect="duckdb"))
        con.execute(ddl_for("quarantine", QUARANTINE_SCHEMA, dialect="duckdb"))
        con.execute(
            "CREATE TABLE IF NOT EXISTS files (source VARCHAR, file VARCHAR, sha256 VARCHAR, batch_id VARCHAR, "
            "loaded_at TIMESTAMPTZ, report JSON)"
        )
        con.execute("CREATE TABLE IF NOT EXISTS sources (source VARCHAR PRIMARY KEY, crs VARCHAR, timezone VARCHAR)")
        if current is None or current < SCHEMA_VERSION:
            con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION])

    # -- writing --------------------------------------------------------------------------
    def batch(self, source: str, file: str, sha256: str, batch_id: str) -> DuckDBBatch:
        """Start an atomic load of one file."""
        if self.read_only:
            raise StoreError("store was opened read-only")
        return DuckDBBatch(self.con, batch_id, source)

    def file_seen(self, source: str, sha256: str) -> bool:
        """True if this checksum was already loaded for ``source``."""
        row = self.con.execute("SELECT count(*) FROM files WHERE source = ? AND sha256 = ?", [source, sha256])
        got = row.fetchone()
        return bool(got and got[0])

    def source_crs(self, source: str) -> str | None:
        """The local metric CRS recorded for ``source``."""
        row = self.con.execute("SELECT crs FROM sources WHERE source = ?", [source]).fetchone()
        return str(row[0]) if row else None

    def set_source_crs(self, source: str, crs: str | None, timezone: str = "UTC") -> None:
        """Record the local CRS and time zone of ``source`` if none are recorded yet."""
        self.con.execute(
            "INSERT INTO sources VALUES (?, ?, ?) ON CONFLICT (source) "
            "DO UPDATE SET crs = coalesce(sources.crs, excluded.crs)", [source, crs, timezone])

    # -- reading --------------------------------------------------------------------------
    def incidents(
        self,
        flt: IncidentFilter | None = None,
        *,
        columns: Sequence[str] | None = None,
        limit: int | None = None,
        include_personal: bool = False,
    ) -> pd.DataFrame:
        """Canonical incidents matching ``flt``, ordered by ``occurred_at``."""
        cols = list(columns) if columns else list(INCIDENT_COLUMNS)
        unknown = set(cols) - set(INCIDENT_COLUMNS)
        if unknown:
            raise InputError(f"unknown incident columns: {', '.join(sorted(unknown))}")
        where, params = where_clause(flt or IncidentFilter(), alias="i")
        select = ", ".join(f'i."{c}"' for c in cols)
        join = ""
        if include_personal:
            select += ", p.suspect, p.victim, p.narrative"
            join = " LEFT JOIN incident_personal p USING (source, incident_id)"
        sql = f"SELECT {select} FROM incidents i{join} WHERE {where} ORDER BY i.occurred_at, i.incident_id"  # noqa: S608 -- identifiers come from the canonical schema; values are bound parameters
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.con.execute(sql, params).fetch_df()

    def counts(
        self, by: Sequence[str], flt: IncidentFilter | None = None, *, tz: str | None = None
    ) -> pd.DataFrame:
        """Counts grouped by ``by`` (see :meth:`crimelens.store.base.Store.counts`)."""
        flt = flt or IncidentFilter()
        zone = tz or self.timezone(flt.sources)
        sql, params = counts_sql(by, flt, dialect="duckdb", tz=zone)
        out = self.con.execute(sql, params).fetch_df()
        out.attrs["timezone"] = zone
        return out

    def timezone(self, sources: Sequence[str] = ()) -> str:
        """The time zone shared by ``sources`` (all sources when empty); UTC when they differ."""
        q = "SELECT DISTINCT timezone FROM sources WHERE timezone IS NOT NULL"
        params: list[str] = list(sources)
        if sources:
            q += f" AND source IN ({', '.join('?' * len(sources))})"
        zones = [r[0] for r in self.con.execute(q, params).fetchall()]
        return zones[0] if len(zones) == 1 else "UTC"

    def quarantine(self, *, source: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Quarantined rows, oldest first."""
        sql = "SELECT * FROM quarantine" + (" WHERE source = ?" if source else "") + " ORDER BY batch_id, line"  # noqa: S608 -- identifiers come from the canonical schema; values are bound parameters
        if limit is not None:
            sql += f" LIMIT {int(limit)}"
        return self.con.execute(sql, [source] if source else []).fetch_df()

    def info(self) -> dict[str, Any]:
        """Totals, per source and category, first and last ``occurred_at``, files loaded."""
        con = self.con
        total, first, last = con.execute(
            "SELECT count(*), min(occurred_at), max(occurred_at) FROM incidents"
        ).fetchone() or (0, None, None)
        by_source = dict(con.execute("SELECT source, count(*) FROM incidents GROUP BY 1 ORDER BY 2 DESC").fetchall())
        by_cat = dict(con.execute("SELECT category, count(*) FROM incidents GROUP BY 1 ORDER BY 2 DESC").fetchall())
        located = con.execute("SELECT count(*) FROM incidents WHERE lat IS NOT NULL").fetchone()
        q = dict(con.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall())
        files = con.execute("SELECT count(*) FROM files").fetchone()
        return {
            "store": self.url,
            "schema_version": SCHEMA_VERSION,
            "incidents": int(total),
            "first_occurred_at": first.isoformat() if first is not None else None,
            "last_occurred_at": last.isoformat() if last is not None else None,
            "located_share": round(int(located[0]) / total, 4) if total and located else 0.0,
            "by_source": {k: int(v) for k, v in by_source.items()},
            "by_category": {k: int(v) for k, v in by_cat.items()},
            "quarantined": {k: int(v) for k, v in q.items()},
            "files": int(files[0]) if files else 0,
        }

    def execute(self, sql: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a read query (for adapters that need SQL the protocol does not cover)."""
        return self.con.execute(sql, list(params)).fetch_df()

    def close(self) -> None:
        """Close the connection."""
        self.con.close()

    def __enter__(self) -> DuckDBStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class DuckDBBatch:
    """One atomic load into a :class:`DuckDBStore`."""

    def __init__(self, con: duckdb.DuckDBPyConnection, batch_id: str, source: str) -> None:
        self.con = con
        self.batch_id = batch_id
        self.source = source
        self._open = False
        self._committed: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> DuckDBBatch:
        # Bound the engine's buffers during a load so a large file spills to disk instead of memory.
        self.con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
        # Chunks arrive from a cleaning thread and are smaller than a row group: one engine thread
        # writes them faster than several (no coordination) and leaves the other cores to cleaning.
        self.con.execute(f"SET threads = {LOAD_THREADS}")
        self.con.execute("BEGIN TRANSACTION")
        self._open = True
        for name, schema in (("stage", INCIDENT_SCHEMA), ("stage_personal", PERSONAL_SCHEMA),
                             ("stage_quarantine", QUARANTINE_SCHEMA)):
            self.con.execute(f"DROP TABLE IF EXISTS {name}")
            self.con.execute(ddl_for(name, schema, dialect="duckdb", temporary=True))
        self.con.execute("ALTER TABLE stage ADD COLUMN seq BIGINT")
        # An id is already stored if an earlier chunk of this load routed it (the router's
        # tracker) or an earlier load committed it (asked through a second connection, which
        # sees committed rows only and may run while this one writes).
        self._router = ChunkRouter()
        if _scalar(self.con, "SELECT count(*) FROM (SELECT 1 FROM incidents WHERE source = ? LIMIT 1)",
                   [self.source]):
            self._committed = self.con.cursor()
            rows = self.con.execute("SELECT current_database()").fetchall()  # fetched: no result left open
            catalog = str(rows[0][0] if rows else "memory").replace('"', '""')
            self._committed.execute(f'USE "{catalog}"')  # a cursor starts on the default catalog
        return self

    def route(self, incidents: pa.Table, personal: pa.Table) -> ChunkSplit:
        """Split a chunk: rows whose id is new and appears once go straight in, the rest are staged.

        Staged rows (ids stored by an earlier load or routed by an earlier chunk of this one, or
        repeated within the chunk) are classified as updates or duplicates at commit. Runs in the
        caller's thread, possibly while :meth:`write` works on an earlier chunk.
        """
        return self._router.route(incidents, personal, self._committed_ids if self._committed is not None else None)

    def _committed_ids(self, ids: pa.Array) -> pa.Array:
        assert self._committed is not None
        cur = self._committed
        cur.register("chunk_ids", pa.table({"incident_id": ids}))
        found = [r[0] for r in cur.execute(
            "SELECT DISTINCT c.incident_id FROM chunk_ids c SEMI JOIN incidents i "
            "ON i.source = ? AND i.incident_id = c.incident_id", [self.source]).fetchall()]
        cur.unregister("chunk_ids")
        return pa.array(found, type=pa.string())

    def write(self, part: ChunkSplit | None, quarantine: pa.Table) -> None:
        """Write a routed chunk and quarantine rows inside the load's transaction (nothing is visible
        to others until :meth:`commit`)."""
        if part is not None:
            for table, rows in (("incidents", part.direct), ("incident_personal", part.direct_personal),
                                ("stage", part.staged), ("stage_personal", part.staged_personal)):
                self._insert(table, rows)
        if quarantine.num_rows:
            self._insert("stage_quarantine", quarantine)

    def add(self, incidents: pa.Table, personal: pa.Table, quarantine: pa.Table) -> None:
        """Route and write one chunk in the calling thread."""
        self.write(self.route(incidents, personal) if incidents.num_rows else None, quarantine)

    def _insert(self, table: str, rows: pa.Table) -> None:
        # A relation from the Arrow table, not a registered view: an INSERT from a registered
        # table keeps its Arrow buffers alive until the transaction ends, so a large file's
        # memory would grow with its size.
        if rows.num_rows:
            self.con.from_arrow(rows).insert_into(table)

    def commit(self, report: IngestReport) -> IngestReport:
        """Classify staged rows against the store, write them, record the file, commit.

        Within the file the last version of each id wins; earlier versions count as updates when
        their content differs and as duplicates when it does not. Only narrow key columns are
        joined against the stored table, and the common case (all ids distinct and new) inserts
        straight from the staging table.
        """
        con = self.con
        self._close_reader()
        con.execute("RESET threads")  # the classification joins below scan the stored table
        cols = ", ".join(f'"{c}"' for c in INCIDENT_COLUMNS)
        staged = _scalar(con, "SELECT count(*) FROM stage")
        distinct = _scalar(con, "SELECT count(DISTINCT incident_id) FROM stage")
        changed_in_file = 0
        latest = "stage"
        if distinct < staged:
            changed_in_file = _scalar(
                con,
                "SELECT coalesce(sum(k - 1), 0) FROM (SELECT count(DISTINCT row_hash) AS k FROM stage "
                "GROUP BY incident_id HAVING count(*) > 1)",
            )
            con.execute(
                "CREATE TEMP TABLE latest AS SELECT * FROM stage "
                "QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY seq DESC) = 1"
            )
            latest = "latest"
        con.execute(
            f"CREATE TEMP TABLE status AS SELECT l.incident_id, "  # noqa: S608 -- identifiers come from the canonical schema; values are bound parameters
            f"CASE WHEN i.incident_id IS NULL THEN 'new' WHEN i.row_hash = l.row_hash THEN 'same' "
            f"ELSE 'changed' END AS status FROM {latest} l LEFT JOIN "
            f"(SELECT incident_id, row_hash FROM incidents WHERE source = ?) i USING (incident_id)",
            [report.source],
        )
        status = dict(con.execute("SELECT status, count(*) FROM status GROUP BY 1").fetchall())
        new, same, changed = (int(status.get(k, 0)) for k in ("new", "same", "changed"))
        if changed:
            for table in ("incidents", "incident_personal"):
                con.execute(
                    f"DELETE FROM {table} WHERE source = ? AND incident_id IN "  # noqa: S608 -- identifiers come from the canonical schema; values are bound parameters
                    f"(SELECT incident_id FROM status WHERE status = 'changed')",
                    [report.source],
                )
        if same == 0:
            con.execute(f"INSERT INTO incidents SELECT {cols} FROM {latest}")  # noqa: S608 -- identifiers come from the canonical schema; values are bound parameters
        elif new or changed:
            con.execute(
                f"INSERT INTO incidents SELECT {cols} FROM {latest} WHERE incident_id IN "  # noqa: S608 -- identifiers come from the canonical schema; values are bound parameters
                f"(SELECT incident_id FROM status WHERE status <> 'same')"
            )
        if new or changed:
            con.execute(
                "INSERT INTO incident_personal SELECT * FROM stage_personal WHERE incident_id IN "
                "(SELECT incident_id FROM status WHERE status <> 'same') "
                "QUALIFY row_number() OVER (PARTITION BY source, incident_id) = 1"
            )
        con.execute("INSERT INTO quarantine SELECT * FROM stage_quarantine")
        report.stored = self._router.direct + new
        # a changed record is one update, however many versions of it the file held
        report.updated = changed + changed_in_file
        report.duplicates = same + (staged - distinct) - changed_in_file
        report.quarantined = _scalar(con, "SELECT count(*) FROM stage_quarantine")
        con.execute(
            "INSERT INTO files VALUES (?, ?, ?, ?, now(), ?)",
            [report.source, report.file, report.sha256, report.batch_id, json.dumps(report.to_dict())],
        )
        for t in ("stage", "stage_personal", "stage_quarantine", "latest", "status"):
            con.execute(f"DROP TABLE IF EXISTS {t}")
        con.execute("COMMIT")
        self._open = False
        con.execute("RESET memory_limit")
        return report

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._close_reader()
        if self._open:
            self.con.execute("ROLLBACK")
            self._open = False
            self.con.execute("RESET memory_limit")
            self.con.execute("RESET threads")

    def _close_reader(self) -> None:
        if self._committed is not None:
            self._committed.close()
            self._committed = None


def _scalar(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] = ()) -> int:
    rows = con.execute(sql, list(params)).fetchall()  # fetched to the end: no result left pending
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _load_cipher(con: duckdb.DuckDBPyConnection) -> None:
    """Make ``con`` able to write encrypted blocks: OpenSSL from ``httpfs``, or (explicitly
    accepted through ``CRIMELENS_DB_CRYPTO=mbedtls-unsafe``) DuckDB's built-in implementation."""
    if crypto_choice() == "mbedtls-unsafe":
        con.execute("SET force_mbedtls_unsafe = true")
        return
    try:
        con.execute("LOAD httpfs")
    except duckdb.Error as exc:
        raise StoreError(
            "writing an encrypted DuckDB store needs DuckDB's httpfs extension (OpenSSL): run "
            f"INSTALL httpfs where the network allows, or set {CRYPTO_ENV}=mbedtls-unsafe to accept "
            "DuckDB's built-in cipher (not securely random)") from exc


def _key_problem(url: str, message: str, key: StoreKey | None) -> str:
    """The one line for a DuckDB catalog error raised while opening ``url``."""
    low = message.lower()
    if "without a key" in low:
        return f"store {url} is encrypted: set {KEY_ENV} or {KEY_FILE_ENV} to its key"
    if "not encrypted" in low and key is not None:
        return (f"store {url} is not encrypted but {key.origin} is set: unset it, or copy the store into "
                "an encrypted one (docs/service.md, Encryption at rest)")
    return f"cannot open store {url}: {message.splitlines()[0]}"
