"""Stage fetched records as one CSV file, then load it with :func:`crimelens.ingest.ingest_file`.

Going through a file keeps a fetch exactly like a file ingest: one atomic transaction, the
usual accounting (read = stored + updated + duplicates + quarantined), and a SHA-256 no-op
when the same data is fetched again (the staged bytes depend only on the records and their
order, which every connector keeps stable).
"""

from __future__ import annotations

import csv
import json
import logging
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from crimelens.exceptions import InputError

if TYPE_CHECKING:
    from crimelens.sources.mapping import Mapping as SourceMapping
    from crimelens.store.base import IngestReport, Store

log = logging.getLogger(__name__)

Record = Mapping[str, Any]


@dataclass
class FetchResult:
    """What a connector did: the ingest report plus where the data came from."""

    report: IngestReport
    url: str
    pages: int
    records: int
    staged: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """The ingest report's fields plus ``url``, ``pages``, ``records_fetched`` and ``staged``."""
        return {**self.report.to_dict(), "url": self.url, "pages": self.pages,
                "records_fetched": self.records, "staged": self.staged}


def cell(value: Any) -> str:
    """One CSV cell: ``""`` for null, ``true``/``false``, numbers as text, objects as compact JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return str(value)


class Stager:
    """Spool records page by page (JSON lines), then write one CSV with the union of their keys.

    Columns appear in first-seen order, followed by ``columns`` (the mapping's) that no record
    had, so the mapping always finds its columns even where a portal omits null fields.
    """

    def __init__(self, path: Path, columns: Iterable[str] = ()) -> None:
        self.path = path
        self.extra = list(columns)
        self.header: dict[str, None] = {}
        self.records = 0
        self._spool_path = path.with_name(path.name + ".jsonl")
        self._spool = self._spool_path.open("w", encoding="utf-8")

    def add(self, records: Iterable[Record]) -> int:
        """Spool one page of records; return how many."""
        n = 0
        for rec in records:
            for k in rec:
                self.header.setdefault(str(k), None)
            self._spool.write(json.dumps(rec, ensure_ascii=False, separators=(",", ":")) + "\n")
            n += 1
        self.records += n
        return n

    def finish(self) -> Path:
        """Write the CSV file and remove the spool."""
        self._spool.close()
        header = list(self.header) + [c for c in sorted(set(self.extra)) if c not in self.header]
        if not header:
            self._spool_path.unlink(missing_ok=True)
            raise InputError("nothing was fetched (no records) and no mapping names the columns")
        with self.path.open("w", newline="", encoding="utf-8") as out, \
                self._spool_path.open(encoding="utf-8") as spool:
            w = csv.writer(out, lineterminator="\n")
            w.writerow(header)
            for line in spool:
                rec = json.loads(line)
                w.writerow([cell(rec.get(c)) for c in header])
        self._spool_path.unlink(missing_ok=True)
        return self.path

    def abort(self) -> None:
        """Close and remove the spool (after an error)."""
        self._spool.close()
        self._spool_path.unlink(missing_ok=True)


def stage_and_ingest(
    store: Store,
    pages: Iterable[list[dict[str, Any]]],
    *,
    key: bytes,
    url: str,
    name: str,
    mapping: SourceMapping | None = None,
    source: str | None = None,
    workdir: Path | None = None,
    keep: Path | None = None,
) -> FetchResult:
    """Stage every page to ``name`` (a ``.csv`` file name), then ingest it atomically.

    The staged file lives in a temporary folder under ``workdir`` (next to the store) and is
    removed afterwards, unless ``keep`` names where to write it instead. ``url`` (already
    free of tokens) is recorded in the report's notes.
    """
    from crimelens.ingest import ingest_file

    if keep is not None and keep.suffix.lower() != ".csv":
        raise InputError(f"{keep}: the staged file is CSV; give a path ending in .csv")
    with _staging_path(name, workdir, keep) as path:
        stager = Stager(path, mapping.columns() if mapping is not None else ())
        count = 0
        try:
            for page in pages:
                stager.add(page)
                count += 1
                log.debug("page %d: %d records so far", count, stager.records)
        except BaseException:
            stager.abort()
            raise
        staged = stager.finish()
        report = ingest_file(store, staged, key=key, mapping=mapping, source=source, origin=url,
                             strict=True)  # a sync job: a changed set of columns means the feed drifted
        report.notes.append(f"fetched from {url}: {stager.records:,} records in {count} pages")
        return FetchResult(report=report, url=url, pages=count, records=stager.records,
                           staged=str(keep) if keep is not None else None)


@contextmanager
def _staging_path(name: str, workdir: Path | None, keep: Path | None) -> Iterator[Path]:
    """The staging file path: ``keep``, else a file in a temporary folder removed afterwards."""
    if keep is not None:
        keep.parent.mkdir(parents=True, exist_ok=True)
        yield keep
        return
    if workdir is not None:
        workdir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".crimelens-fetch-", dir=workdir) as tmp:
        yield Path(tmp) / name


def safe_name(*parts: str) -> str:
    """A file name made of ``parts`` (letters, digits, ``-`` and ``.`` only) ending in ``.csv``."""
    text = "-".join(p for p in parts if p)
    clean = "".join(ch if ch.isalnum() or ch in "-." else "-" for ch in text).strip("-.")
    return (clean[:120] or "fetch") + ".csv"

