"""Ingest: read a file, clean it chunk by chunk, and load it into a store atomically.

This is the application layer between the pure core (readers, mapping, cleaning) and a storage
adapter; it depends on the :class:`~crimelens.store.base.Store` protocol only, never on a
database library.
"""

from __future__ import annotations

import hashlib
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crimelens.cleaning.clean import CleanContext, CleanResult, clean_chunk
from crimelens.exceptions import MappingError
from crimelens.schema import QUARANTINE_SCHEMA
from crimelens.sources.detect import detect
from crimelens.sources.fit import fit_mapping
from crimelens.sources.mapping import Mapping
from crimelens.sources.readahead import ReadAhead
from crimelens.sources.readers import RawChunk, SourceFile, open_source, record_lines

if TYPE_CHECKING:
    from crimelens.store.base import IngestReport, Store

Progress = Callable[[int], None]

#: Cleans a file's raw chunks in order: one :class:`CleanResult` per chunk, in file order. The
#: default runs :func:`clean_chunk` here; :mod:`crimelens.spark.ingest` runs it on Spark.
Cleaner = Callable[[Iterable[RawChunk], Mapping, CleanContext], Iterable[CleanResult]]


def clean_each(chunks: Iterable[RawChunk], mapping: Mapping, ctx: CleanContext) -> Iterator[CleanResult]:
    """The default :data:`Cleaner`: :func:`clean_chunk` on each chunk in turn, in this process."""
    for chunk in chunks:
        yield clean_chunk(chunk, mapping, ctx)

#: Rows in the first chunk of a file: small, so that the store starts writing early.
FIRST_CHUNK_ROWS = 8_192

#: Cleaned chunks queued for the store's writer thread at most. Two let the writer take a chunk
#: that completes a row group (slow: it is compressed and written) without stalling cleaning.
WRITE_QUEUE = 2


def file_sha256(path: str | Path) -> str:
    """SHA-256 of a file's bytes, streamed."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while block := fh.read(1 << 22):
            h.update(block)
    return h.hexdigest()


def ingest_file(
    store: Store,
    path: str | Path,
    *,
    key: bytes,
    mapping: Mapping | None = None,
    source: str | None = None,
    now: pd.Timestamp | None = None,
    progress: Progress | None = None,
    chunk_rows: int = 250_000,
    origin: str | None = None,
    strict: bool = False,
    cleaner: Cleaner | None = None,
) -> IngestReport:
    """Load one file into ``store`` in a single transaction and return its accounting.

    Parameters
    ----------
    store
        Target store.
    path
        CSV (optionally .gz/.zip), Parquet or GeoJSON file.
    key
        Secret key for pseudonyms of personal fields (never stored with the data).
    mapping
        How the file's columns map to the canonical schema; detected from the header if absent.
    source
        Source name recorded with each incident; defaults to the mapping's name.
    now
        Reference time for "date in the future" (defaults to the current time).
    progress
        Called with the number of rows read so far after each chunk.
    origin
        What to record as the file in the load log and quarantine (e.g. the URL a connector
        fetched); defaults to the path.
    strict
        Refuse a file that lacks any column the mapping names; otherwise only required columns
        must be there and the rest are left empty with a note (:mod:`crimelens.sources.fit`).
    cleaner
        How chunks are cleaned (default :func:`clean_each`, in this process).

    Raises
    ------
    InputError
        For unreadable files, unknown headers, or a mapping naming required columns the file
        lacks (any column with ``strict``).
    """
    from crimelens.store.base import IngestReport

    started = time.perf_counter()
    # The checksum reads the whole file while the reader checks its encoding and parses the first
    # block, all side by side; nothing is written before the checksum says the file is new.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="crimelens-sha") as pool:
        digest = pool.submit(file_sha256, path)
        src = open_source(path, chunk_rows=chunk_rows)
        if mapping is None:
            fit = detect(src.columns)
            if strict and fit.missing:
                raise MappingError(f"{src.path.name}: preset {fit.mapping.name!r} names columns the file lacks: "
                                   f"{', '.join(fit.missing)}")
        else:
            fit = fit_mapping(mapping, src.columns, strict=strict, file=src.path.name)
        fit_notes = list(fit.notes)
        chosen = fit.mapping
        # The next block is parsed in a reader thread while this one is cleaned (Arrow parses
        # outside the GIL).
        with ReadAhead(_small_first(src.chunks())) as chunks:
            sha = digest.result()
            name = source or chosen.name
            report = IngestReport(source=name, file=origin or str(src.path), sha256=sha, batch_id=uuid.uuid4().hex,
                                  preset=chosen.name, encoding=src.encoding, notes=[*src.notes, *fit_notes])
            if store.file_seen(name, sha):
                report.skipped = True
                report.notes.append("file already ingested (same SHA-256): nothing to do")
                return report
            return _load(store, chunks, chosen, report, key=key, now=now, file=origin or src.path.name, src=src,
                         progress=progress, started=started, cleaner=cleaner)


def ingest_chunks(
    store: Store,
    chunks: Iterable[RawChunk],
    mapping: Mapping,
    *,
    key: bytes,
    file: str,
    sha256: str,
    batch_id: str | None = None,
    source: str | None = None,
    rejected: pa.Table | None = None,
    now: pd.Timestamp | None = None,
) -> IngestReport:
    """Load raw chunks held in memory (a stream's micro-batch, say) in one transaction.

    The in-memory counterpart of :func:`ingest_file`. ``file`` and ``sha256`` name the load in
    the store's load log (a checksum seen before is loaded again: repeated rows count as
    duplicates). Each chunk's table must hold every column the mapping names (null where a
    record lacks it); its ``records`` are the "line" numbers quarantined rows are reported with.
    ``rejected`` holds quarantine rows (``QUARANTINE_SCHEMA``, with this ``batch_id``) for
    records refused before cleaning; they count as read and quarantined.
    """
    from crimelens.store.base import IngestReport

    started = time.perf_counter()
    report = IngestReport(source=source or mapping.name, file=file, sha256=sha256,
                          batch_id=batch_id or uuid.uuid4().hex, preset=mapping.name)
    return _load(store, chunks, mapping, report, key=key, now=now, file=file, rejected=rejected, started=started)


def _load(
    store: Store, chunks: Iterable[RawChunk], chosen: Mapping, report: IngestReport, *, key: bytes,
    now: pd.Timestamp | None, file: str, started: float, src: SourceFile | None = None,
    rejected: pa.Table | None = None, progress: Progress | None = None, cleaner: Cleaner | None = None,
) -> IngestReport:
    """Clean ``chunks`` and load them as ``report``'s batch in one transaction (see :func:`ingest_file`)."""
    name, batch_id = report.source, report.batch_id
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    ctx = CleanContext(source=name, file=file, batch_id=batch_id,
                       ingested_at=pd.Timestamp.now(tz="UTC"), now=now, key=key,
                       crs=store.source_crs(name))
    known_crs = ctx.crs
    unmapped: Counter[str] = Counter()
    flags: Counter[str] = Counter()
    reasons: Counter[str] = Counter()
    fallback = 0
    held: list[pa.Table] = []  # quarantine rows, held until their line numbers are final
    # The store writes earlier chunks in one worker thread, in order, while the next is cleaned
    # (both engines do their work outside the GIL). At most WRITE_QUEUE chunks wait, so memory
    # stays bounded; the worker only ever touches the store inside the load's transaction, and
    # leaving the block waits for it before the writer commits or rolls back, so a load stays
    # all or nothing.
    with store.batch(name, report.file, report.sha256, batch_id) as writer, \
            ThreadPoolExecutor(max_workers=1, thread_name_prefix="crimelens-load") as pool:
        pending: deque[Future[None]] = deque()
        try:
            for res in (cleaner or clean_each)(chunks, chosen, ctx):
                if res.quarantine.num_rows:
                    held.append(res.quarantine)
                while len(pending) >= WRITE_QUEUE:
                    pending.popleft().result()  # re-raises the store's error, if any
                part = writer.route(res.incidents, res.personal)  # here, while earlier chunks are written
                pending.append(pool.submit(writer.write, part, QUARANTINE_SCHEMA.empty_table()))
                report.read += res.read
                unmapped.update(res.unmapped)
                flags.update(res.flags)
                reasons.update(res.by_reason)
                fallback += res.fallback_dates
                if progress is not None:
                    progress(report.read)
        except BaseException:
            pool.shutdown(cancel_futures=True)  # queued writes are dropped: the load rolls back
            raise
        while pending:
            pending.popleft().result()
        if rejected is not None and rejected.num_rows:
            held.append(rejected)
            report.read += rejected.num_rows
            reasons.update(rejected.column("reason").to_pylist())
        if report.read == 0 and src is not None:
            report.notes.append("file has a header but no rows")
        if held:
            lines = _final_lines(src, held) if src is not None else pa.concat_tables(held)
            writer.write(None, lines)
        if not known_crs:
            store.set_source_crs(name, ctx.crs, chosen.timezone)
        report.by_reason = dict(reasons.most_common())
        report.unmapped = dict(unmapped.most_common())
        report.flags = dict(flags.most_common())
        if fallback:
            report.notes.append(f"{fallback} dates did not match the mapping's format and were parsed leniently")
        report.seconds = round(time.perf_counter() - started, 3)
        report = writer.commit(report)
    return report


def _small_first(chunks: Iterable[RawChunk], rows: int = FIRST_CHUNK_ROWS) -> Iterator[RawChunk]:
    """The chunks, with a large first one cut in two: ``rows`` rows, then the rest.

    Cleaning and writing overlap chunk by chunk, so until the first chunk is cleaned the store
    has nothing to write; a small first chunk shortens that wait.
    """
    it = iter(chunks)
    first = next(it, None)
    if first is None:
        return
    if first.table.num_rows > 2 * rows:
        yield RawChunk(first.table.slice(0, rows), first.records.iloc[:rows], first.malformed)
        yield RawChunk(first.table.slice(rows), first.records.iloc[rows:].reset_index(drop=True))
    else:
        yield first
    yield from it


def _final_lines(src: SourceFile, held: list[pa.Table]) -> pa.Table:
    """Quarantine rows with exact physical line numbers.

    Cleaning numbers rows by record. That is the line number unless quoted fields hold line
    breaks or malformed rows were skipped; in those cases one pass of the csv module maps the
    k-th well-formed record and the j-th malformed one to the lines where they start.
    """
    table = pa.concat_tables(held)
    lines = table.column("line").to_numpy()
    malformed = pc.equal(table.column("reason"), "malformed_row").to_numpy(zero_copy_only=False)
    if src.kind != "csv" or not (src.multiline or malformed.any()):
        return table
    good, bad = record_lines(src)
    fixed = lines.copy()
    rec = lines[~malformed] - 2  # record 2 is the first data row
    fixed[~malformed] = np.where(rec < len(good), good[np.clip(rec, 0, max(len(good) - 1, 0))], lines[~malformed])
    fixed[malformed] = bad[: int(malformed.sum())] if len(bad) >= malformed.sum() else -1
    return table.set_column(table.schema.get_field_index("line"), "line", pa.array(fixed, type=pa.int64()))
