"""The store protocol every backend implements (the factory is :mod:`crimelens.store.connect`).

A store holds four tables: ``incidents`` (canonical, one row per ``(source, incident_id)``),
``incident_personal`` (restricted originals of personal fields), ``quarantine`` (rejected rows
with file, line, reason and raw values) and ``files`` (each ingested file's SHA-256 and its
accounting). Writes go through a :class:`BatchWriter` that commits a whole file or nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from crimelens.filters import IncidentFilter


@dataclass(slots=True)
class IngestReport:
    """Accounting of one load: ``read == stored + updated + duplicates + quarantined``."""

    source: str
    file: str
    sha256: str
    batch_id: str
    read: int = 0
    stored: int = 0
    updated: int = 0
    duplicates: int = 0
    quarantined: int = 0
    by_reason: dict[str, int] = field(default_factory=dict)
    unmapped: dict[str, int] = field(default_factory=dict)
    flags: dict[str, int] = field(default_factory=dict)
    preset: str = ""
    encoding: str = "utf-8"
    notes: list[str] = field(default_factory=list)
    skipped: bool = False
    seconds: float = 0.0

    def balanced(self) -> bool:
        """True when every read row is accounted for."""
        return self.read == self.stored + self.updated + self.duplicates + self.quarantined

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


class BatchWriter(Protocol):
    """One atomic load: route and write chunks, then :meth:`commit`; leaving the ``with`` block on
    an error rolls everything back.

    :meth:`route` is called once per chunk in file order and may run while :meth:`write` of an
    earlier chunk is still in progress in another thread, so that the deciding and the writing
    overlap; :meth:`write` calls come in the same order.
    """

    def route(self, incidents: pa.Table, personal: pa.Table) -> ChunkSplit:
        """Decide which rows of a cleaned chunk go straight in and which are staged."""

    def write(self, part: ChunkSplit | None, quarantine: pa.Table) -> None:
        """Write one routed chunk and quarantine rows inside the load's transaction."""

    def add(self, incidents: pa.Table, personal: pa.Table, quarantine: pa.Table) -> None:
        """Route and write one chunk in the calling thread (``write(route(...), quarantine)``)."""

    def commit(self, report: IngestReport) -> IngestReport:
        """Resolve new / updated / duplicate rows, write them and the file record, commit."""

    def __enter__(self) -> BatchWriter: ...

    def __exit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None: ...


@runtime_checkable
class Store(Protocol):
    """What every storage backend offers."""

    url: str

    def batch(self, source: str, file: str, sha256: str, batch_id: str) -> BatchWriter:
        """Start an atomic load of one file."""

    def file_seen(self, source: str, sha256: str) -> bool:
        """True if a file with this checksum was already loaded for ``source``."""

    def source_crs(self, source: str) -> str | None:
        """The local metric CRS recorded for ``source`` (fixed at its first load)."""

    def set_source_crs(self, source: str, crs: str | None, timezone: str = "UTC") -> None:
        """Record the local metric CRS and time zone of ``source`` (first load only)."""

    def incidents(
        self, flt: IncidentFilter | None = None, *, columns: Sequence[str] | None = None,
        limit: int | None = None, include_personal: bool = False,
    ) -> pd.DataFrame:
        """Canonical incidents matching ``flt``, ordered by ``occurred_at``."""

    def counts(
        self, by: Sequence[str], flt: IncidentFilter | None = None, *, tz: str | None = None
    ) -> pd.DataFrame:
        """Incident counts grouped by ``by`` columns or expressions (pushed down to the engine).

        Time keys are local wall-clock values in ``tz``, by default the zone of the filtered
        sources (UTC if they differ); the zone used is in ``result.attrs["timezone"]``. ``by``
        items are column names or the derived keys ``day``, ``week``, ``month``, ``hour``,
        ``weekday``, ``cell:<metres>`` (square cell of the dataset CRS: ``cell_x``/``cell_y``).
        Returns the keys plus a ``count`` column.
        """

    def quarantine(self, *, source: str | None = None, limit: int | None = None) -> pd.DataFrame:
        """Quarantined rows."""

    def info(self) -> dict[str, Any]:
        """Totals, counts by source and category, first and last ``occurred_at``, files."""

    def timezone(self, sources: Sequence[str] = ()) -> str:
        """The time zone shared by ``sources`` (all sources when empty); UTC when they differ."""

    def close(self) -> None:
        """Release the connection."""


@dataclass(slots=True)
class ChunkSplit:
    """One cleaned chunk divided for a batch writer (see :func:`split_chunk`)."""

    direct: pa.Table
    direct_personal: pa.Table
    staged: pa.Table  # with a ``seq`` column giving file order
    staged_personal: pa.Table


def split_chunk(
    incidents: pa.Table, personal: pa.Table, stored_ids: pa.Array, seq_start: int, *, distinct: int | None = None
) -> ChunkSplit:
    """Split a chunk into rows a batch writer can insert straight away and rows to stage.

    A row goes straight in when its id is neither already stored (``stored_ids``: by an earlier
    file or an earlier chunk of this load) nor repeated within the chunk; the others are staged
    and classified as updates or duplicates at commit. Personal rows follow their incident.
    ``distinct`` is the number of distinct ids in the chunk, when the caller knows it.
    """
    ids = incidents.column("incident_id")
    if distinct is None:
        distinct = pc.count_distinct(ids).as_py()
    if not len(stored_ids) and distinct == incidents.num_rows:
        # the common case: every id is new and appears once, so the whole chunk goes straight in
        staged = incidents.slice(0, 0)
        return ChunkSplit(incidents, personal, staged.append_column("seq", pa.array([], type=pa.int64())),
                          personal.slice(0, 0))
    counts = pc.value_counts(ids)
    repeated = counts.field("values").filter(pc.greater(counts.field("counts"), 1))
    to_stage = pc.or_(pc.is_in(ids, value_set=repeated), pc.is_in(ids, value_set=stored_ids))
    direct = incidents.filter(pc.invert(to_stage)) if pc.any(to_stage).as_py() else incidents
    staged = incidents.filter(to_stage)
    seq = pa.array(range(seq_start, seq_start + staged.num_rows), type=pa.int64())

    def follow(rows: pa.Table) -> pa.Table:
        if not personal.num_rows:
            return personal
        return personal.filter(pc.is_in(personal.column("incident_id"), value_set=rows.column("incident_id")))

    return ChunkSplit(direct, follow(direct), staged.append_column("seq", seq), follow(staged))


class IdTracker:
    """Every id one load has routed so far, to tell a later chunk's repeats without the database.

    A repeat must be staged, whether its first appearance went straight in or was staged, so
    that the file's last version wins at commit. Ids are held as 64-bit hashes in one sorted
    array (8 bytes each). A hash collision can only stage a new row, which commit then stores as
    new, so a false "seen" costs time, never a wrong result. Past ``limit`` ids the tracker
    saturates and answers "seen" for everything: the rest of a giant file is staged and sorted
    out at commit, and memory stays bounded.
    """

    def __init__(self, limit: int = 16_000_000) -> None:
        self.limit = limit
        self.saturated = False
        self._hashes = np.empty(0, dtype=np.uint64)

    def __len__(self) -> int:
        return len(self._hashes)

    def record(self, ids: pa.Array | pa.ChunkedArray) -> tuple[np.ndarray, bool]:
        """Record ``ids`` as routed; return a mask of those that already were, and whether the
        given ids are certainly distinct (no two share a hash).

        Once saturated, every id counts as routed before (and distinctness is not known).
        """
        if self.saturated:
            return np.ones(len(ids), dtype=bool), False
        h = pd.util.hash_array(ids.to_numpy(zero_copy_only=False), categorize=False)
        order = np.argsort(h)
        needles = h[order]  # sorted: the lookups walk the held array in order
        distinct = not bool((needles[1:] == needles[:-1]).any())
        pos = np.searchsorted(self._hashes, needles)
        held = np.zeros(len(h), dtype=bool)
        inside = pos < len(self._hashes)
        held[inside] = self._hashes[pos[inside]] == needles[inside]
        seen = np.empty(len(h), dtype=bool)
        seen[order] = held
        if len(self._hashes) + int((~held).sum()) > self.limit:
            self.saturated, self._hashes = True, np.empty(0, dtype=np.uint64)
        else:
            self._hashes = np.insert(self._hashes, pos[~held], needles[~held])
        return seen, distinct


class ChunkRouter:
    """What one load's batch writer carries from chunk to chunk to route them.

    The ids routed so far (an :class:`IdTracker`), the staging order of the next staged row, and
    how many rows went straight in. Each backend supplies only how to find ids that earlier
    loads stored.
    """

    def __init__(self, tracker_limit: int = 16_000_000) -> None:
        self.tracker = IdTracker(tracker_limit)
        self.seq = 0
        self.direct = 0

    def route(
        self, incidents: pa.Table, personal: pa.Table, stored: Callable[[pa.Array], pa.Array] | None = None
    ) -> ChunkSplit:
        """Split a chunk (see :func:`split_chunk`); ``stored(ids)`` returns those of ``ids`` that
        earlier loads stored (omit it when the source has none)."""
        ids = incidents.column("incident_id").combine_chunks()
        seen, distinct = self.tracker.record(ids)
        known = ids.filter(pa.array(seen))
        if stored is not None and len(ids):
            known = pa.concat_arrays([known, stored(ids)])
        part = split_chunk(incidents, personal, known, self.seq, distinct=len(ids) if distinct else None)
        self.seq += part.staged.num_rows
        self.direct += part.direct.num_rows
        return part
