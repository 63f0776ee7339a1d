"""A store in a partitioned Parquet lake, read and written by DuckDB.

Layout under the lake directory ``DIR``::

    _manifest.json                                  the committed state (see below)
    incidents/source=S/year=Y/month=M/part-*.parquet   canonical incidents (UTC year/month of occurred_at)
    incident_personal/source=S/part-*.parquet       restricted originals of personal fields
    quarantine/source=S/part-*.parquet              rejected rows with file, line, reason, raw values

Hive-style directories, so Spark, DuckDB, Arrow and most lake tools read them. Data files are
immutable and uniquely named; ``_manifest.json`` lists the files that make up the lake, the load
log (``files``) and each source's CRS and time zone. A load writes its new files first (in
``_staging/``, then moved beside the others, still unlisted), then replaces the manifest with one
atomic rename. A process killed at any moment therefore leaves the lake as it was: unlisted files
are ignored by readers and removed by the next writer. Files whose rows a load replaced (changed
records) are rewritten without those rows (copy on write) and dropped from the manifest.

Reads go through an in-memory DuckDB connection whose ``incidents``, ``incident_personal`` and
``quarantine`` are views over the listed files, so filters, ``counts`` and ``info`` are the very
SQL of :class:`~crimelens.store.duckdb.DuckDBStore`. Identity (new / changed / duplicate) and the
accounting identity ``read == stored + updated + duplicates + quarantined`` are the same as there.
One writer at a time (a lock file); a second gets :class:`~crimelens.exceptions.StoreBusyError`.

``DIR`` may also be ``s3://bucket/prefix`` (or ``s3a://``): every file goes through a
:class:`~crimelens.store.lakefs.LakeFS`, staging is then a local temporary directory, the commit
is one PUT of the manifest and reads are DuckDB views over Arrow datasets on the bucket (see
:mod:`crimelens.store.lakefs`).
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
import uuid
from pathlib import Path
from types import TracebackType
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as ds

from crimelens.exceptions import InputError, StoreBusyError, StoreError
from crimelens.schema import INCIDENT_COLUMNS, INCIDENT_SCHEMA, PERSONAL_SCHEMA, QUARANTINE_SCHEMA
from crimelens.store.base import ChunkSplit, IngestReport
from crimelens.store.duckdb import SCHEMA_VERSION, DuckDBStore
from crimelens.store.lakefs import LakeFS, open_lake_fs
from crimelens.store.sql import ddl_for

MANIFEST = "_manifest.json"
STAGING = "_staging"
#: Tables held in the lake, their schema and the columns their directories are partitioned by.
TABLES: dict[str, tuple[pa.Schema, tuple[str, ...]]] = {
    "incidents": (INCIDENT_SCHEMA, ("source", "year", "month")),
    "incident_personal": (PERSONAL_SCHEMA, ("source",)),
    "quarantine": (QUARANTINE_SCHEMA, ("source",)),
}
_EMPTY_MANIFEST: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "generation": 0,
                                   "tables": {t: [] for t in TABLES}, "files": [], "sources": {}}


def _as_fs(lake: LakeFS | str | Path) -> LakeFS:
    return lake if isinstance(lake, LakeFS) else open_lake_fs(str(lake))


def read_manifest(lake: LakeFS | str | Path) -> dict[str, Any]:
    """The committed state of the lake (an empty lake when there is no manifest)."""
    lfs = _as_fs(lake)
    raw = lfs.read_bytes(MANIFEST)
    if raw is None:
        empty: dict[str, Any] = json.loads(json.dumps(_EMPTY_MANIFEST))  # a deep copy
        return empty
    try:
        manifest: dict[str, Any] = json.loads(raw.decode("utf-8"))
    except ValueError as exc:
        raise StoreError(f"lake {lfs.display()}: unreadable {MANIFEST}: {exc}") from exc
    if int(manifest.get("schema_version", 0)) > SCHEMA_VERSION:
        raise StoreError(f"lake {lfs.display()} has schema version {manifest['schema_version']}, newer than this "
                         f"crimelens ({SCHEMA_VERSION})")
    return manifest


def write_manifest(lake: LakeFS | str | Path, manifest: dict[str, Any]) -> None:
    """Replace the manifest atomically (a rename locally, one PUT on an object store)."""
    _as_fs(lake).write_atomic(MANIFEST, json.dumps(manifest, default=str).encode("utf-8"))


#: Hive partition columns of each table as read back from directory names (remote reads).
_PARTITION_TYPES = {"source": pa.string(), "year": pa.int64(), "month": pa.int64()}


def _select(table: str) -> str:
    schema = TABLES[table][0]
    return ", ".join(f'"{f.name}"' for f in schema)


class LakeStore(DuckDBStore):
    """A crimelens store in a Parquet lake directory, on DuckDB (``--db lake:DIR``)."""

    def __init__(self, path: str | Path, *, read_only: bool = False) -> None:
        self.lfs = open_lake_fs(str(path))
        self.url = f"lake:{path}"
        self.read_only = read_only
        if read_only and not self.lfs.exists(MANIFEST):
            raise InputError(f"{self.url}: no such lake (run `crimelens ingest --db {self.url}` first)")
        if not read_only:
            self.lfs.check_writable()
        self.con = duckdb.connect(":memory:")
        self._migrate()  # the in-memory tables that mirror the manifest
        for table in TABLES:
            self.con.execute(f"ALTER TABLE {table} RENAME TO empty_{table}")
        self.manifest: dict[str, Any] = {}
        self.refresh()

    # -- the committed state --------------------------------------------------------------
    def refresh(self) -> None:
        """Re-read the manifest and point the views at the files it lists."""
        self.manifest = read_manifest(self.lfs)
        con = self.con
        for table in TABLES:
            rels = list(self.manifest["tables"].get(table, []))
            con.execute(f"DROP VIEW IF EXISTS {table}")
            with contextlib.suppress(duckdb.Error):
                con.unregister(f"lake_{table}")
            if not rels:
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM empty_{table}")  # noqa: S608 -- fixed table names
            elif self.lfs.remote:  # an Arrow dataset on the bucket (DuckDB pushes filters into it)
                parts = pa.schema([(c, _PARTITION_TYPES[c]) for c in TABLES[table][1]])
                con.register(f"lake_{table}", self.lfs.dataset(rels, table, ds.partitioning(parts, flavor="hive")))
                con.execute(f"CREATE VIEW {table} AS SELECT {_select(table)} FROM lake_{table}")  # noqa: S608 -- identifiers come from the canonical schema
            else:
                listed = ", ".join(_literal(self.lfs.path(f)) for f in rels)  # a view cannot take parameters
                con.execute(
                    f"CREATE VIEW {table} AS SELECT {_select(table)} FROM read_parquet([{listed}], "  # noqa: S608 -- identifiers come from the canonical schema, paths are quoted literals
                    "hive_partitioning = true, hive_types_autocast = false, union_by_name = true)")
        con.execute("DELETE FROM files")
        for rec in self.manifest["files"]:
            con.execute("INSERT INTO files VALUES (?, ?, ?, ?, ?, ?)",
                        [rec["source"], rec["file"], rec["sha256"], rec["batch_id"], rec["loaded_at"],
                         json.dumps(rec["report"])])
        con.execute("DELETE FROM sources")
        for name, meta in self.manifest["sources"].items():
            con.execute("INSERT INTO sources VALUES (?, ?, ?)", [name, meta.get("crs"), meta.get("timezone")])

    def rels_of(self, table: str, source: str | None = None) -> list[str]:
        """The committed files of ``table`` (of one ``source`` if given), relative to the lake root."""
        rel: list[str] = list(self.manifest["tables"].get(table, []))
        if source is not None:
            rel = [f for f in rel if f"/source={source}/" in f"/{f}"]
        return rel

    def files_of(self, table: str, source: str | None = None) -> list[str]:
        """The committed files of ``table`` as URIs Spark opens (local paths or ``s3a://``)."""
        return [self.lfs.spark_uri(f) for f in self.rels_of(table, source)]

    # -- writing --------------------------------------------------------------------------
    def batch(self, source: str, file: str, sha256: str, batch_id: str) -> LakeBatch:  # type: ignore[override]  # another writer class, same BatchWriter protocol
        """Start an atomic load of one file."""
        if self.read_only:
            raise StoreError("store was opened read-only")
        return LakeBatch(self, batch_id, source)

    def set_source_crs(self, source: str, crs: str | None, timezone: str = "UTC") -> None:
        """Record the local CRS and time zone of ``source`` (kept with the next commit)."""
        meta = self.manifest["sources"].setdefault(source, {"crs": None, "timezone": timezone})
        meta["crs"] = meta.get("crs") or crs
        super().set_source_crs(source, crs, timezone)

    def info(self) -> dict[str, Any]:
        """As :meth:`DuckDBStore.info`, plus the lake's generation."""
        out = super().info()
        out["generation"] = int(self.manifest.get("generation", 0))
        return out


class LakeBatch:
    """One atomic load into a :class:`LakeStore` (see the module docstring).

    Every cleaned row is staged in a scratch DuckDB file under ``_staging/`` (bounded memory, rows
    numbered in file order); :meth:`commit` classifies the staged rows against the lake's stored
    ``(incident_id, row_hash)`` of the source, writes new Parquet files and the manifest.
    """

    def __init__(self, store: LakeStore, batch_id: str, source: str) -> None:
        self.store = store
        self.lfs = store.lfs
        self.batch_id = batch_id
        self.source = source
        self.dir = Path()
        self.seq = 0
        self._held = contextlib.ExitStack()
        self.con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> LakeBatch:
        self._held.enter_context(self.lfs.lock())
        try:
            self.store.refresh()  # another writer may have committed since the store was opened
            self._sweep()
            if self.lfs.remote:  # scratch space is local; only finished files go to the bucket
                self.dir = Path(tempfile.mkdtemp(prefix=f"crimelens-lake-{self.batch_id}-"))
            else:  # beside the lake, so publishing is a rename on the same filesystem
                self.dir = Path(self.lfs.path(STAGING)) / self.batch_id
                self.dir.mkdir(parents=True)
        except BaseException:
            self._held.close()
            raise
        self.con = duckdb.connect(str(self.dir / "stage.duckdb"))
        self.con.execute("SET memory_limit = '512MB'")
        self.con.execute(f"SET temp_directory = {_literal(str(self.dir / 'tmp'))}")
        for name, schema in (("stage", INCIDENT_SCHEMA), ("stage_personal", PERSONAL_SCHEMA),
                             ("stage_quarantine", QUARANTINE_SCHEMA)):
            self.con.execute(ddl_for(name, schema, dialect="duckdb"))
        self.con.execute("ALTER TABLE stage ADD COLUMN seq BIGINT")
        return self

    def _sweep(self) -> None:
        """Remove what killed loads left: staging directories and data files no manifest lists."""
        self.lfs.delete_dir(STAGING)
        listed = {f for files in self.store.manifest["tables"].values() for f in files}
        for table in TABLES:
            for rel in self.lfs.files_under(table, ".parquet"):
                if rel not in listed:
                    self.lfs.delete(rel)

    def route(self, incidents: pa.Table, personal: pa.Table) -> ChunkSplit:
        """Stage every row, numbered in file order (classified at :meth:`commit`)."""
        seq = pa.array(range(self.seq, self.seq + incidents.num_rows), type=pa.int64())
        self.seq += incidents.num_rows
        return ChunkSplit(incidents.slice(0, 0), personal.slice(0, 0), incidents.append_column("seq", seq), personal)

    def write(self, part: ChunkSplit | None, quarantine: pa.Table) -> None:
        """Append a routed chunk and quarantine rows to the scratch tables."""
        assert self.con is not None
        if part is not None:
            for table, rows in (("stage", part.staged), ("stage_personal", part.staged_personal)):
                if rows.num_rows:
                    self.con.from_arrow(rows).insert_into(table)
        if quarantine.num_rows:
            self.con.from_arrow(quarantine).insert_into("stage_quarantine")

    def add(self, incidents: pa.Table, personal: pa.Table, quarantine: pa.Table) -> None:
        """Route and write one chunk."""
        self.write(self.route(incidents, personal) if incidents.num_rows else None, quarantine)

    def commit(self, report: IngestReport) -> IngestReport:
        """Classify, write the new files and replace the manifest (the commit point)."""
        try:
            return self._commit(report)
        except duckdb.Error as exc:
            raise StoreError(f"lake {self.lfs.display()}: {str(exc).splitlines()[0]}") from exc

    def _commit(self, report: IngestReport) -> IngestReport:
        con = self.con
        assert con is not None
        cols = ", ".join(f'"{c}"' for c in INCIDENT_COLUMNS)
        staged = _count(con, "SELECT count(*) FROM stage")
        distinct = _count(con, "SELECT count(DISTINCT incident_id) FROM stage")
        changed_in_file = _count(
            con, "SELECT coalesce(sum(k - 1), 0) FROM (SELECT count(DISTINCT row_hash) AS k FROM stage "
            "GROUP BY incident_id HAVING count(*) > 1)")
        con.execute("CREATE TABLE latest AS SELECT * FROM stage "
                    "QUALIFY row_number() OVER (PARTITION BY incident_id ORDER BY seq DESC) = 1")
        self._load_held(con)
        con.execute(
            "CREATE TABLE status AS SELECT l.incident_id, h.filename, CASE WHEN h.incident_id IS NULL THEN 'new' "
            "WHEN h.row_hash = l.row_hash THEN 'same' ELSE 'changed' END AS status "
            "FROM latest l LEFT JOIN held h USING (incident_id)")
        status = dict(con.execute("SELECT status, count(*) FROM status GROUP BY 1").fetchall())
        new, same, changed = (int(status.get(k, 0)) for k in ("new", "same", "changed"))
        manifest = json.loads(json.dumps(self.store.manifest))
        tables: dict[str, list[str]] = manifest["tables"]
        if changed:  # copy on write: the files holding replaced records, without them
            con.execute("CREATE TABLE gone AS SELECT incident_id FROM status WHERE status = 'changed'")
            touched = [r[0] for r in con.execute(
                "SELECT DISTINCT filename FROM status WHERE status = 'changed'").fetchall()]
            touched += self.store.rels_of("incident_personal", self.source)
            for old in touched:
                self._rewrite_without_gone(old, tables)
        con.execute("CREATE TABLE fresh AS SELECT * FROM latest WHERE incident_id IN "
                    "(SELECT incident_id FROM status WHERE status <> 'same')")
        self._copy(f"SELECT {cols}, CAST(year(occurred_at AT TIME ZONE 'UTC') AS INTEGER) AS year, "  # noqa: S608 -- identifiers come from the canonical schema
                   "CAST(month(occurred_at AT TIME ZONE 'UTC') AS INTEGER) AS month FROM fresh "
                   "ORDER BY occurred_at, incident_id", "incidents", tables)
        self._copy("SELECT * FROM stage_personal WHERE incident_id IN (SELECT incident_id FROM fresh) "
                   "QUALIFY row_number() OVER (PARTITION BY source, incident_id) = 1", "incident_personal", tables)
        self._copy("SELECT * FROM stage_quarantine ORDER BY line", "quarantine", tables)
        report.stored = new
        report.updated = changed + changed_in_file
        report.duplicates = same + (staged - distinct) - changed_in_file
        report.quarantined = _count(con, "SELECT count(*) FROM stage_quarantine")
        manifest["generation"] = int(manifest.get("generation", 0)) + 1
        manifest["schema_version"] = SCHEMA_VERSION
        manifest["sources"] = self.store.manifest["sources"]
        loaded_at = con.execute("SELECT CAST(now() AS VARCHAR)").fetchall()[0][0]
        manifest["files"].append({"source": report.source, "file": report.file, "sha256": report.sha256,
                                  "batch_id": report.batch_id, "loaded_at": loaded_at, "report": report.to_dict()})
        self._publish()
        if int(read_manifest(self.lfs).get("generation", 0)) != int(self.store.manifest.get("generation", 0)):
            raise StoreBusyError(f"lake {self.lfs.display()}: another writer committed during this load; "
                                 "nothing of it was committed, try again")
        write_manifest(self.lfs, manifest)  # the commit point
        self._drop_replaced(manifest)
        self.store.refresh()
        return report

    def _copy(self, select: str, table: str, tables: dict[str, list[str]]) -> None:
        """Write ``select``'s rows as new Parquet files of ``table`` (hive-partitioned) in staging."""
        assert self.con is not None
        if not _count(self.con, f"SELECT count(*) FROM ({select})"):  # noqa: S608 -- internal SQL
            return
        out = self.dir / "out" / table
        out.parent.mkdir(parents=True, exist_ok=True)
        parts = ", ".join(TABLES[table][1])
        self.con.execute(f"COPY ({select}) TO {_literal(str(out))} (FORMAT parquet, PARTITION_BY ({parts}), "
                         f"FILENAME_PATTERN 'part-{self.batch_id}-{{i}}', COMPRESSION zstd)")
        tables[table].extend(str(Path(table) / p.relative_to(out)) for p in sorted(out.rglob("*.parquet")))

    def _load_held(self, con: duckdb.DuckDBPyConnection) -> None:
        """``held``: each stored ``(incident_id, row_hash)`` of the source and the file (rel) holding it."""
        rels = self.store.rels_of("incidents", self.source)
        con.execute("CREATE TABLE held (incident_id VARCHAR, row_hash BIGINT, filename VARCHAR)")
        if rels and not self.lfs.remote:
            cut = len(self.lfs.path("")) + 2  # the rel path after "<root>/"
            con.execute("INSERT INTO held SELECT incident_id, row_hash, substr(filename, ?) FROM read_parquet(?, "
                        "filename = true, hive_partitioning = false)", [cut, [self.lfs.path(r) for r in rels]])
        for rel in rels if self.lfs.remote else []:  # two columns per file, straight from the bucket
            part = self.lfs.read_parquet(rel, columns=["incident_id", "row_hash"])
            part = part.append_column("filename", pa.array([rel] * part.num_rows, type=pa.string()))
            con.from_arrow(part).insert_into("held")

    def _local_copy(self, rel: str) -> str:
        """A path DuckDB can read for the stored file ``rel`` (downloaded first from a bucket)."""
        if not self.lfs.remote:
            return self.lfs.path(rel)
        target = self.dir / "dl" / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(self.lfs.read_bytes(rel) or b"")
        return str(target)

    def _rewrite_without_gone(self, rel: str, tables: dict[str, list[str]]) -> None:
        assert self.con is not None
        table = rel.split("/", 1)[0]
        old = self._local_copy(rel)
        keep = _count(self.con, "SELECT count(*) FROM read_parquet(?, hive_partitioning = false) WHERE incident_id "
                      "NOT IN (SELECT incident_id FROM gone)", [old])
        total = _count(self.con, "SELECT count(*) FROM read_parquet(?, hive_partitioning = false)", [old])
        if keep == total:
            return
        tables[table].remove(rel)
        if keep:
            new_rel = str(Path(rel).parent / f"part-{self.batch_id}-rw-{uuid.uuid4().hex[:8]}.parquet")
            target = self.dir / "rw" / new_rel
            target.parent.mkdir(parents=True, exist_ok=True)
            self.con.execute(f"COPY (SELECT * FROM read_parquet({_literal(old)}, hive_partitioning = false) "  # noqa: S608 -- paths are quoted literals
                             "WHERE incident_id NOT IN "
                             f"(SELECT incident_id FROM gone)) TO {_literal(str(target))} "
                             "(FORMAT parquet, COMPRESSION zstd)")
            tables[table].append(new_rel)

    def _publish(self) -> None:
        """Move the new files beside the committed ones (still unlisted, so still invisible)."""
        for out in (self.dir / "out", self.dir / "rw"):
            for path in sorted(out.rglob("*.parquet")) if out.exists() else []:
                self.lfs.upload(path, str(path.relative_to(out)))

    def _drop_replaced(self, manifest: dict[str, Any]) -> None:
        listed = {f for files in manifest["tables"].values() for f in files}
        for files in self.store.manifest["tables"].values():
            for f in files:
                if f not in listed:
                    self.lfs.delete(f)

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.con is not None:
            self.con.close()
            self.con = None
        shutil.rmtree(self.dir, ignore_errors=True)
        if not self.lfs.remote:
            with contextlib.suppress(OSError):
                Path(self.lfs.path(STAGING)).rmdir()
        try:
            if et is not None:
                self.store.refresh()  # forget a CRS recorded by the failed load
        finally:
            self._held.close()


def _count(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> int:
    rows = con.execute(sql, params or []).fetchall()
    return int(rows[0][0]) if rows and rows[0][0] is not None else 0


def _literal(text: str) -> str:
    """``text`` as a quoted SQL string literal (for statements that cannot take parameters)."""
    return "'" + text.replace("'", "''") + "'"
