"""The shared-server store: PostgreSQL (with PostGIS when the extension is available).

Same tables and semantics as the DuckDB store (see :mod:`crimelens.store.duckdb`): each file
loads in one transaction; rows whose id is new go straight in with ``COPY``, the others are
staged in temporary tables and classified as updates or duplicates at commit. Loads of the same
source are serialised with a transaction-scoped advisory lock, so two processes can ingest at
once without double counting. With PostGIS, ``incidents.geom`` is a generated WGS84 point with
a GiST index. TLS to the server is the URL's ``sslmode`` (e.g. ``?sslmode=require``).
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Sequence
from types import TracebackType
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql as psql

from crimelens.exceptions import InputError, StoreError
from crimelens.filters import IncidentFilter
from crimelens.schema import INCIDENT_COLUMNS, INCIDENT_SCHEMA, PERSONAL_SCHEMA, QUARANTINE_SCHEMA
from crimelens.store.base import ChunkRouter, ChunkSplit, IngestReport
from crimelens.store.fieldcrypt import FieldCipher, cipher_from_env, decrypt_frame
from crimelens.store.migrations import POSTGRES_VERSION, has_postgis_column, upgrade_postgres
from crimelens.store.pgtune import after_load, tune_session
from crimelens.store.sql import counts_sql, ddl_for, where_clause

SCHEMA_VERSION = POSTGRES_VERSION
#: NOTIFY channel of committed loads; the payload is ``"<schema> <batch_id>"``.
BATCH_CHANNEL = "crimelens_batches"
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")


def split_schema(url: str) -> tuple[str, str | None]:
    """``url`` without its ``schema`` query parameter (libpq does not know it), and that schema."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((v for k, v in query if k == "schema"), None)
    rest = urlencode([(k, v) for k, v in query if k != "schema"])
    return urlunsplit(parts._replace(query=rest)), schema


def bindable(params: Sequence[Any]) -> list[Any]:
    """``params`` as a list; :class:`InputError` for text PostgreSQL cannot hold (a NUL character)."""
    out = list(params)
    for value in out:
        items = value if isinstance(value, (list, tuple)) else (value,)
        if any(isinstance(v, str) and "\x00" in v for v in items):
            raise InputError("text values cannot contain NUL characters")
    return out


def pyformat(query: str) -> str:
    """A ``?``-placeholder query (DuckDB's style) in psycopg's ``%s`` style.

    ``?`` outside quoted strings and identifiers becomes ``%s``; every literal ``%`` is doubled.
    """
    out: list[str] = []
    quote = ""
    for ch in query:
        if ch == "%":
            out.append("%%")
            continue
        if quote:
            quote = "" if ch == quote else quote
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            out.append("%s")
            continue
        out.append(ch)
    return "".join(out)


class PostgresStore:
    """A crimelens store in a PostgreSQL database.

    The schema is ``schema``, else the URL's ``schema`` query parameter (``...?schema=agency``),
    else ``crimelens``. Opened for writing, the store applies the migrations it lacks
    (:mod:`crimelens.store.migrations`) unless ``migrate`` is false. With a store key configured
    (``CRIMELENS_DB_KEY`` / ``CRIMELENS_DB_KEY_FILE``) the personal table's values are written
    AES-GCM encrypted and decrypted on read (:mod:`crimelens.store.fieldcrypt`).
    """

    def __init__(self, url: str, *, schema: str | None = None, read_only: bool = False,
                 migrate: bool = True) -> None:
        conninfo, url_schema = split_schema(url)
        schema = schema or url_schema or "crimelens"
        if not _NAME.match(schema):
            raise InputError(f"invalid schema name {schema!r}")
        self.url = url
        self.schema = schema
        self.read_only = read_only
        self.cipher: FieldCipher | None = cipher_from_env()
        try:
            self.conn = psycopg.connect(conninfo, autocommit=True, connect_timeout=10)
        except psycopg.Error as exc:
            raise StoreError(f"cannot connect to PostgreSQL: {str(exc).splitlines()[0]}") from exc
        self.conn.execute("SET TIME ZONE 'UTC'")
        tune_session(self.conn)
        if not read_only and migrate:
            upgrade_postgres(self.conn, schema)
        self.conn.execute(psql.SQL("SET search_path TO {}, public").format(psql.Identifier(schema)))
        if read_only:
            self.conn.execute("SET default_transaction_read_only = on")
        self.postgis = has_postgis_column(self.conn)

    # -- writing --------------------------------------------------------------------------
    def batch(self, source: str, file: str, sha256: str, batch_id: str) -> PostgresBatch:
        """Start an atomic load of one file."""
        if self.read_only:
            raise StoreError("store was opened read-only")
        return PostgresBatch(self.conn, source, self.cipher, schema=self.schema)

    def file_seen(self, source: str, sha256: str) -> bool:
        """True if this checksum was already loaded for ``source``."""
        row = self.conn.execute("SELECT count(*) FROM files WHERE source = %s AND sha256 = %s", [source, sha256])
        got = row.fetchone()
        return bool(got and got[0])

    def source_crs(self, source: str) -> str | None:
        """The local metric CRS recorded for ``source``."""
        row = self.conn.execute("SELECT crs FROM sources WHERE source = %s", [source]).fetchone()
        return str(row[0]) if row else None

    def set_source_crs(self, source: str, crs: str | None, timezone: str = "UTC") -> None:
        """Record the local CRS and time zone of ``source`` if none are recorded yet."""
        self.conn.execute(
            "INSERT INTO sources VALUES (%s, %s, %s) ON CONFLICT (source) "
            "DO UPDATE SET crs = coalesce(sources.crs, excluded.crs)", [source, crs, timezone])

    # -- reading --------------------------------------------------------------------------
    def _frame(self, query: str, params: Sequence[Any]) -> pd.DataFrame:
        with self.conn.cursor() as cur:
            cur.execute(query, bindable(params))  # type: ignore[call-overload]
            names = [d.name for d in cur.description or []]
            return pd.DataFrame(cur.fetchall(), columns=names)

    def execute(self, query: str, params: Sequence[Any] = ()) -> pd.DataFrame:
        """Run a ``?``-placeholder query (as on DuckDB) and return a frame; values are bound client-side."""
        with psycopg.ClientCursor(self.conn) as cur:
            cur.execute(pyformat(query), bindable(params))
            names = [d.name for d in cur.description or []]
            return pd.DataFrame(cur.fetchall() if cur.description else [], columns=names)

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
        where, params = where_clause(flt or IncidentFilter(), alias="i", dialect="postgres")
        select = ", ".join(f'i."{c}"' for c in cols)
        join = ""
        if include_personal:
            select += ", p.suspect, p.victim, p.narrative, i.source AS _row_source, i.incident_id AS _row_id"
            join = " LEFT JOIN incident_personal p USING (source, incident_id)"
        q = f"SELECT {select} FROM incidents i{join} WHERE {where} ORDER BY i.occurred_at, i.incident_id"  # noqa: S608 -- identifiers from the schema
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        frame = self._frame(q, params)
        if include_personal:
            frame = decrypt_frame(frame, self.cipher, frame.pop("_row_source"), frame.pop("_row_id"))
        return frame

    def counts(
        self, by: Sequence[str], flt: IncidentFilter | None = None, *, tz: str | None = None
    ) -> pd.DataFrame:
        """Counts grouped by ``by`` (see :meth:`crimelens.store.base.Store.counts`)."""
        flt = flt or IncidentFilter()
        zone = tz or self.timezone(flt.sources)
        q, params = counts_sql(by, flt, dialect="postgres", tz=zone)
        out = self._frame(q, params)
        out.attrs["timezone"] = zone
        return out

    def timezone(self, sources: Sequence[str] = ()) -> str:
        """The time zone shared by ``sources`` (all sources when empty); UTC when they differ."""
        q = "SELECT DISTINCT timezone FROM sources WHERE timezone IS NOT NULL"
        if sources:
            q += " AND source = ANY(%s)"
        rows = self.conn.execute(q, [list(sources)] if sources else []).fetchall()
        zones = [r[0] for r in rows]
        return zones[0] if len(zones) == 1 else "UTC"

    def quarantine(self, *, source: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Quarantined rows, oldest first."""
        q = "SELECT * FROM quarantine" + (" WHERE source = %s" if source else "") + " ORDER BY batch_id, line"  # noqa: S608 -- constant text
        if limit is not None:
            q += f" LIMIT {int(limit)}"
        return self._frame(q, [source] if source else [])

    def info(self) -> dict[str, Any]:
        """Totals, per source and category, first and last ``occurred_at``, files loaded."""
        c = self.conn
        total, located, first, last = 0, 0, None, None
        by_source: dict[str, int] = {}
        by_cat: dict[str, int] = {}
        # one scan (of the covering index) for what took four: the total, per source, per category
        for level, source, category, n, n_located, lo, hi in c.execute(
                "SELECT GROUPING(source, category), source, category, count(*), count(lat), min(occurred_at), "
                "max(occurred_at) FROM incidents GROUP BY GROUPING SETS ((), (source), (category)) "
                "ORDER BY 4 DESC").fetchall():
            if level == 3:
                total, located, first, last = int(n), int(n_located), lo, hi
            elif level == 1:
                by_source[source] = int(n)
            else:
                by_cat[category] = int(n)
        q: dict[str, int] = dict(
            c.execute("SELECT reason, count(*) FROM quarantine GROUP BY 1 ORDER BY 2 DESC").fetchall())
        files = c.execute("SELECT count(*) FROM files").fetchone()
        return {
            "store": re.sub(r"//[^@/]*@", "//***@", self.url),
            "schema_version": SCHEMA_VERSION,
            "incidents": int(total),
            "first_occurred_at": first.isoformat() if first is not None else None,
            "last_occurred_at": last.isoformat() if last is not None else None,
            "located_share": round(located / total, 4) if total else 0.0,
            "by_source": {k: int(v) for k, v in by_source.items()},
            "by_category": {k: int(v) for k, v in by_cat.items()},
            "quarantined": {k: int(v) for k, v in q.items()},
            "files": int(files[0]) if files else 0,
            "postgis": self.postgis,
        }

    def close(self) -> None:
        """Close the connection."""
        self.conn.close()


def _copy(conn: psycopg.Connection[Any], table: str, rows: pa.Table) -> None:
    """Bulk-load an Arrow table with COPY (CSV text written by Arrow's C++ writer)."""
    if not rows.num_rows:
        return
    buf = io.BytesIO()
    pacsv.write_csv(rows, buf, write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"))
    cols = psql.SQL(", ").join(psql.Identifier(n) for n in rows.schema.names)
    stmt = psql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(psql.Identifier(table), cols)
    with conn.cursor() as cur, cur.copy(stmt) as cp:
        cp.write(buf.getvalue())


class PostgresBatch:
    """One atomic load into a :class:`PostgresStore`."""

    def __init__(self, conn: psycopg.Connection[Any], source: str, cipher: FieldCipher | None = None, *,
                 schema: str = "public") -> None:
        self.conn = conn
        self.source = source
        self.cipher = cipher
        self.schema = schema
        self._open = False
        self._router = ChunkRouter()

    def __enter__(self) -> PostgresBatch:
        c = self.conn
        c.execute("BEGIN")
        self._open = True
        c.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", [self.source])
        for name, schema in (("stage", INCIDENT_SCHEMA), ("stage_personal", PERSONAL_SCHEMA),
                             ("stage_quarantine", QUARANTINE_SCHEMA)):
            c.execute(ddl_for(name, schema, dialect="postgres", temporary=True).replace(
                "IF NOT EXISTS", "") + " ON COMMIT DROP")
        c.execute("ALTER TABLE stage ADD COLUMN seq BIGINT")
        return self

    def route(self, incidents: pa.Table, personal: pa.Table) -> ChunkSplit:
        """Split a chunk into rows to insert and rows to stage (see the DuckDB store).

        The query may run while :meth:`write` copies an earlier chunk (the connection serialises
        them); rows routed but not yet written are known from the tracker.
        """
        return self._router.route(incidents, personal, self._stored_ids)

    def _stored_ids(self, ids: pa.Array) -> pa.Array:
        rows = self.conn.execute(
            "SELECT incident_id FROM incidents WHERE source = %s AND incident_id = ANY(%s)",
            [self.source, pc.unique(ids).to_pylist()],
        ).fetchall()
        return pa.array([r[0] for r in rows], type=pa.string())

    def write(self, part: ChunkSplit | None, quarantine: pa.Table) -> None:
        """Copy a routed chunk and quarantine rows inside the load's transaction."""
        if part is not None:
            for table, rows in (("incidents", part.direct), ("incident_personal", part.direct_personal),
                                ("stage", part.staged), ("stage_personal", part.staged_personal)):
                if self.cipher is not None and table.endswith("_personal"):
                    rows = self.cipher.encrypt_table(rows)  # before the values leave the process
                _copy(self.conn, table, rows)
        _copy(self.conn, "stage_quarantine", quarantine)

    def add(self, incidents: pa.Table, personal: pa.Table, quarantine: pa.Table) -> None:
        """Route and write one chunk in the calling thread."""
        self.write(self.route(incidents, personal) if incidents.num_rows else None, quarantine)

    def commit(self, report: IngestReport) -> IngestReport:
        """Classify staged rows, write them and the file record, commit."""
        c = self.conn
        cols = ", ".join(f'"{n}"' for n in INCIDENT_COLUMNS)

        def scalar(q: str, params: Sequence[Any] = ()) -> int:
            row = c.execute(q, list(params)).fetchone()  # type: ignore[call-overload]
            return int(row[0]) if row and row[0] is not None else 0

        staged = scalar("SELECT count(*) FROM stage")
        distinct = scalar("SELECT count(DISTINCT incident_id) FROM stage")
        changed_in_file = scalar(
            "SELECT coalesce(sum(k - 1), 0) FROM (SELECT count(DISTINCT row_hash) AS k FROM stage "
            "GROUP BY incident_id HAVING count(*) > 1) t")
        c.execute("CREATE TEMP TABLE latest ON COMMIT DROP AS SELECT DISTINCT ON (incident_id) * FROM stage "
                  "ORDER BY incident_id, seq DESC")
        c.execute(
            "CREATE TEMP TABLE status ON COMMIT DROP AS SELECT l.incident_id, CASE WHEN i.incident_id IS NULL "
            "THEN 'new' WHEN i.row_hash = l.row_hash THEN 'same' ELSE 'changed' END AS status FROM latest l "
            "LEFT JOIN incidents i ON i.source = %s AND i.incident_id = l.incident_id", [self.source])
        status = dict(c.execute("SELECT status, count(*) FROM status GROUP BY 1").fetchall())
        new, same, changed = (int(status.get(k, 0)) for k in ("new", "same", "changed"))
        for table in ("incidents", "incident_personal"):
            c.execute(f"DELETE FROM {table} WHERE source = %s AND incident_id IN "  # noqa: S608 -- fixed names
                      "(SELECT incident_id FROM status WHERE status = 'changed')", [self.source])
        c.execute(f"INSERT INTO incidents ({cols}) SELECT {cols} FROM latest WHERE incident_id IN "  # noqa: S608
                  "(SELECT incident_id FROM status WHERE status <> 'same')")
        c.execute("INSERT INTO incident_personal SELECT DISTINCT ON (source, incident_id) * FROM stage_personal "
                  "WHERE incident_id IN (SELECT incident_id FROM status WHERE status <> 'same')")
        c.execute("INSERT INTO quarantine SELECT * FROM stage_quarantine")
        report.stored = self._router.direct + new
        report.updated = changed + changed_in_file
        report.duplicates = same + (staged - distinct) - changed_in_file
        report.quarantined = scalar("SELECT count(*) FROM stage_quarantine")
        # loaded_at is the moment of recording (clock_timestamp, not the transaction's start), so it
        # trails the commit by milliseconds: the high-water mark the service polls (service/batchfeed.py)
        c.execute("INSERT INTO files VALUES (%s, %s, %s, %s, clock_timestamp(), %s)",
                  [report.source, report.file, report.sha256, report.batch_id, json.dumps(report.to_dict())])
        # delivered to listeners only if and when the transaction commits (a rollback never notifies)
        c.execute("SELECT pg_notify(%s, %s)", [BATCH_CHANNEL, f"{self.schema} {report.batch_id}"])
        c.execute("COMMIT")
        self._open = False
        after_load(c, report.stored + report.updated)  # planner statistics and visibility map now
        return report

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._open:
            self.conn.execute("ROLLBACK")
            self._open = False
