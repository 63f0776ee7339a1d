"""Ingest on Spark: the core's :func:`~crimelens.cleaning.clean.clean_chunk`, per chunk, on executors.

There is one implementation of the cleaning rules. This module only moves chunks to where
they are cleaned and the results back, as a :data:`crimelens.ingest.Cleaner`:

1. the file is read and cut into chunks exactly as :func:`crimelens.ingest.ingest_file` does
   (same readers, same chunk boundaries, so the per-chunk rules see the same rows);
2. if the source has no CRS yet, the first (small) chunk is cleaned on the driver, which fixes
   the local CRS exactly as a sequential load would;
3. the other chunks are written as raw Parquet (strings, one file per chunk) to the lake's
   staging area (``_staging/`` in the lake, on the bucket for an ``s3://`` lake, so a cluster's
   executors read them wherever they run); Spark reads them and ``mapInArrow`` calls ``clean_chunk`` on each chunk;
   results (incidents, personal rows, quarantine, counters) are written back by Spark;
4. the driver hands the cleaned chunks, in file order, to the lake's batch writer, which
   classifies and commits them atomically (:class:`~crimelens.store.lake.LakeBatch`).

Mappings whose ids count repeats across the whole file (``content_ordinal``,
``field_or_content``) carry state from chunk to chunk, so they are cleaned on the driver, in
order (noted in the report): the answer stays the same, only the parallelism is lost.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from crimelens.cleaning.clean import CleanContext, CleanResult, clean_chunk
from crimelens.ingest import clean_each, ingest_file
from crimelens.sources.mapping import Mapping
from crimelens.sources.readers import RawChunk

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from crimelens.spark.store import SparkLakeStore
    from crimelens.store.base import IngestReport
    from crimelens.store.lakefs import LakeFS

#: Id strategies whose repeat counts run across chunks (see the module docstring).
SEQUENTIAL_IDS = ("content_ordinal", "field_or_content")
_RECORD = "__record"
_CHUNK = "__chunk"
_OUT = pa.schema([("chunk", pa.int64()), ("kind", pa.string()), ("payload", pa.binary())])


def _ipc(table: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return bytes(sink.getvalue().to_pybytes())


def _from_ipc(data: bytes) -> pa.Table:
    return pa.ipc.open_stream(pa.py_buffer(data)).read_all()


def _clean_partition(batches: Iterable[pa.RecordBatch], header: list[str], mapping: Mapping,
                     base: dict[str, Any]) -> Iterator[pa.RecordBatch]:
    """``mapInArrow`` body: regroup the partition's rows by chunk and clean each with the core."""
    batches = list(batches)
    if not batches:
        return
    rows = pa.Table.from_batches(batches)
    for chunk_id in sorted(set(rows.column(_CHUNK).to_pylist())):
        part = rows.filter(pa.compute.equal(rows.column(_CHUNK), chunk_id))
        raw = part.select([f"c{i}" for i in range(len(header))]).rename_columns(header)
        records = pd.Series(part.column(_RECORD).to_numpy(), dtype="int64")
        ctx = CleanContext(**base)
        res = clean_chunk(RawChunk(raw, records), mapping, ctx)
        stats = {"read": res.read, "unmapped": dict(res.unmapped), "flags": dict(res.flags),
                 "by_reason": dict(res.by_reason), "fallback": res.fallback_dates}
        yield pa.RecordBatch.from_pydict({
            "chunk": [chunk_id] * 4,
            "kind": ["incidents", "personal", "quarantine", "stats"],
            "payload": [_ipc(res.incidents), _ipc(res.personal), _ipc(res.quarantine),
                        json.dumps(stats).encode()],
        }, schema=_OUT)


class SparkCleaner:
    """A :data:`crimelens.ingest.Cleaner` that cleans chunks on Spark (see the module docstring)."""

    def __init__(self, spark: SparkSession, lfs: LakeFS, staging: str = "_staging") -> None:
        self.spark = spark
        self.lfs = lfs
        self.staging = staging
        self.notes: list[str] = []

    def __call__(self, chunks: Iterable[RawChunk], mapping: Mapping, ctx: CleanContext) -> Iterator[CleanResult]:
        it = iter(chunks)
        if mapping.id_strategy in SEQUENTIAL_IDS:
            self.notes.append(f"id strategy {mapping.id_strategy!r} counts repeats across the file: "
                              "cleaned on the driver, in order")
            yield from clean_each(it, mapping, ctx)
            return
        if ctx.crs is None:
            first = next(it, None)
            if first is None:
                return
            yield clean_chunk(first, mapping, ctx)  # fixes ctx.crs as a sequential load would
        work = f"{self.staging}/spark-{uuid.uuid4().hex}"
        try:
            yield from self._on_spark(it, mapping, ctx, work)
        finally:
            self.lfs.delete_dir(work)

    def _on_spark(self, chunks: Iterator[RawChunk], mapping: Mapping, ctx: CleanContext,
                  work: str) -> Iterator[CleanResult]:
        raw_dir, out_dir = f"{work}/raw", f"{work}/clean"
        header: list[str] | None = None
        malformed: list[CleanResult] = []
        n = 0
        for i, chunk in enumerate(chunks):
            if chunk.malformed:  # rows the reader could not split: quarantined by the core, here
                empty = RawChunk(chunk.table.slice(0, 0), chunk.records.iloc[:0], chunk.malformed)
                malformed.append(clean_chunk(empty, mapping, ctx))
            if not chunk.table.num_rows:
                continue
            header = header or list(chunk.table.column_names)
            cols = {f"c{j}": chunk.table.column(j).cast(pa.string()) for j in range(chunk.table.num_columns)}
            cols[_RECORD] = pa.array(chunk.records.to_numpy(), type=pa.int64())
            cols[_CHUNK] = pa.array([i] * chunk.table.num_rows, type=pa.int64())
            self.lfs.write_parquet(f"{raw_dir}/chunk-{i:07d}.parquet", pa.table(cols))
            n += 1
        yield from malformed
        if not n or header is None:
            return
        base = {"source": ctx.source, "file": ctx.file, "batch_id": ctx.batch_id, "ingested_at": ctx.ingested_at,
                "now": ctx.now, "key": ctx.key, "crs": ctx.crs}
        names = header

        def clean(batches: Iterable[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
            return _clean_partition(batches, names, mapping, base)

        frame = self.spark.read.parquet(self.lfs.spark_uri(raw_dir))
        frame.mapInArrow(clean, "chunk long, kind string, payload binary").write.partitionBy("chunk").parquet(
            self.lfs.spark_uri(out_dir))
        done = {int(rel.split("/chunk=", 1)[1].split("/", 1)[0]) for rel in self.lfs.files_under(out_dir, ".parquet")}
        for chunk_id in sorted(done):
            table = self.lfs.read_parquet(f"{out_dir}/chunk={chunk_id}")
            got = dict(zip(table.column("kind").to_pylist(), table.column("payload").to_pylist(), strict=True))
            stats = json.loads(got["stats"])
            yield CleanResult(
                incidents=_from_ipc(got["incidents"]), personal=_from_ipc(got["personal"]),
                quarantine=_from_ipc(got["quarantine"]), read=int(stats["read"]),
                unmapped=Counter(stats["unmapped"]), flags=Counter(stats["flags"]),
                by_reason=Counter(stats["by_reason"]), fallback_dates=int(stats["fallback"]),
            )


def ingest_file_spark(store: SparkLakeStore, path: str | Path, **kwargs: Any) -> IngestReport:
    """:func:`crimelens.ingest.ingest_file` with the cleaning on ``store``'s Spark session."""
    cleaner = SparkCleaner(store.spark, store.lfs)
    report = ingest_file(store, path, cleaner=cleaner, **kwargs)
    report.notes.extend(cleaner.notes)
    return report
