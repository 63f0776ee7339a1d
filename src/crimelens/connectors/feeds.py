"""RSS and Atom feeds (news, press releases) into their own tables, through the text pipeline.

A feed is added once (``feeds``), then each sync fetches it through the SEC-14
:class:`~crimelens.connectors.fetch.Fetcher` (https only, allow-listed host, public addresses,
size and time limits), refuses a body that is HTML or not a feed, parses it with ``feedparser``
(from the bytes fetched: feedparser itself never opens a URL here), and keeps each item once:
its id is the SHA-256 of the feed URL and the item's GUID (else its link, else its title and
date), so a re-fetched or re-ordered feed adds only what is new. New items go through
:func:`crimelens.text.newsitems.analyse` (crime type, topics, sentiment, place resolved against
the gazetteer learned from the store's own incidents) and into ``feed_items`` with their
provenance. Feed items are never written to ``incidents``: they are what the public is told,
not police records.

The tables live beside the store's own ones, DuckDB or PostgreSQL (created here with
``CREATE TABLE IF NOT EXISTS`` when the store is opened for writing, like the alert tables).
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import feedparser
import pandas as pd

from crimelens.app_tables import FEEDS_DDL
from crimelens.connectors.fetch import FetchError
from crimelens.exceptions import CrimelensError, InputError
from crimelens.text.gazetteer import Gazetteer
from crimelens.text.newsitems import analyse
from crimelens.text.nlp import clean_text

if TYPE_CHECKING:
    from crimelens.connectors.fetch import Fetcher
    from crimelens.store.base import Store

#: Largest feed body accepted (bytes); a bigger answer is abandoned by the fetcher.
MAX_FEED_BYTES = 5 * 1024 * 1024
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8"

_COLUMNS = ("item_id", "feed_url", "guid", "link", "title", "summary", "published_at", "fetched_at", "category",
            "category_score", "category_method", "topics", "sentiment", "sentiment_label", "place",
            "place_precision", "lat", "lon", "provenance")


class FeedError(CrimelensError, ValueError):
    """A feed answered with something that is not an RSS or Atom feed (HTML, garbage)."""


@dataclass(frozen=True, slots=True)
class FeedItem:
    """One entry of a feed, as text."""

    item_id: str
    guid: str | None
    link: str | None
    title: str
    summary: str
    published_at: pd.Timestamp | None


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A feed's title, format (``rss20``, ``atom10``...) and items."""

    title: str
    version: str
    items: list[FeedItem]


@dataclass
class SyncReport:
    """What one feed's sync did."""

    url: str
    status: str = "ok"
    items: int = 0
    new: int = 0
    duplicates: int = 0
    error: str | None = None
    placed: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict."""
        return asdict(self)


def item_id(feed_url: str, guid: str | None, link: str | None, title: str, published: str | None) -> str:
    """The dedup key: SHA-256 of the feed URL and the GUID, else the link, else title and date."""
    key = guid or link or f"{title}\x1f{published or ''}"
    return hashlib.sha256(f"{feed_url}\x00{key}".encode()).hexdigest()


def _looks_like_html(body: bytes, content_type: str) -> bool:
    head = body[:512].lstrip().lower()
    return "html" in content_type.lower() or head.startswith((b"<!doctype html", b"<html"))


def parse_feed(feed_url: str, body: bytes, *, content_type: str = "") -> ParsedFeed:
    """Parse a fetched body; :class:`FeedError` for HTML or anything that is not RSS/Atom."""
    if _looks_like_html(body, content_type):
        raise FeedError(f"{feed_url}: the server returned an HTML page, not an RSS/Atom feed")
    doc = feedparser.parse(body, sanitize_html=True, resolve_relative_uris=False)
    if not doc.get("version"):
        reason = doc.get("bozo_exception")
        raise FeedError(f"{feed_url}: not an RSS or Atom feed" + (f" ({type(reason).__name__})" if reason else ""))
    items = []
    for e in doc.entries:
        guid = e.get("id") or None
        link = e.get("link") or None
        title = str(e.get("title") or "").strip()
        summary = clean_text(str(e.get("summary") or ""))  # plain text: markup never reaches a page
        stamp = e.get("published_parsed") or e.get("updated_parsed")
        published = pd.Timestamp(*stamp[:6], tz="UTC") if stamp else None
        raw_date = e.get("published") or e.get("updated")
        items.append(FeedItem(item_id(feed_url, guid, link, title, raw_date), guid, link, title, summary, published))
    return ParsedFeed(str(doc.feed.get("title") or ""), str(doc.version), items)


class FeedTables:
    """The ``feeds`` and ``feed_items`` tables beside a store's own (DuckDB or PostgreSQL).

    Every statement goes through the store's ``execute`` (``?`` placeholders on both backends),
    so the SQL here is the subset both read alike.
    """

    def __init__(self, store: Store) -> None:
        run = getattr(store, "execute", None)
        if run is None:
            raise InputError("this store cannot hold feed items: give a DuckDB file or a postgresql:// --db")
        self.store = store
        self._run: Callable[..., pd.DataFrame] = run
        self.lock = threading.RLock()
        if not getattr(store, "read_only", False):
            for ddl in FEEDS_DDL:
                self._run(ddl)

    def _query(self, sql: str, params: list[Any] | None = None) -> pd.DataFrame:
        with self.lock:
            return self._run(sql, params or [])

    def add(self, url: str, title: str | None = None) -> bool:
        """Register ``url`` (https only); False when it was there already."""
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.hostname:
            raise InputError(f"{url}: a feed URL must be https://host/...")
        if len(self._query("SELECT url FROM feeds WHERE url = ?", [url])):
            return False
        self._query("INSERT INTO feeds (url, title, added_at) VALUES (?, ?, now())", [url, title])
        return True

    def feeds(self) -> pd.DataFrame:
        """The registered feeds."""
        return self._query("SELECT url, title, added_at, last_sync, last_status FROM feeds ORDER BY added_at")

    def items(self, feed_url: str | None = None) -> pd.DataFrame:
        """Stored items, newest first (``topics`` as lists)."""
        where, params = ("WHERE feed_url = ?", [feed_url]) if feed_url else ("", [])
        frame = self._query(f"SELECT {', '.join(_COLUMNS)} FROM feed_items {where} "  # noqa: S608 -- fixed text
                            "ORDER BY published_at DESC NULLS LAST", params)
        frame["topics"] = frame["topics"].map(lambda t: json.loads(t) if isinstance(t, str) else [])
        return frame

    def known(self, ids: list[str]) -> set[str]:
        """Which of ``ids`` are stored already."""
        if not ids:
            return set()
        marks = ", ".join("?" * len(ids))
        rows = self._query(f"SELECT item_id FROM feed_items WHERE item_id IN ({marks})", ids)  # noqa: S608
        return set(rows["item_id"])

    def insert(self, rows: pd.DataFrame) -> None:
        """Append analysed items (an item already stored is left as it is)."""
        sql = (f"INSERT INTO feed_items ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))}) "  # noqa: S608
               "ON CONFLICT (item_id) DO NOTHING")
        for rec in rows[list(_COLUMNS)].to_dict("records"):
            self._query(sql, [_plain(rec[c]) for c in _COLUMNS])

    def mark(self, url: str, status: str) -> None:
        """Record a sync's time and outcome."""
        self._query("UPDATE feeds SET last_sync = now(), last_status = ? WHERE url = ?", [status, url])


def _plain(value: Any) -> Any:
    """A value both database drivers bind: None for missing, datetimes and Python numbers."""
    if value is None or (isinstance(value, float) and value != value) or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.to_pydatetime()
    if hasattr(value, "item"):  # numpy scalars
        return value.item()
    return value


def learn_gazetteer(store: Store) -> Gazetteer:
    """The city's gazetteer from the store's incidents (addresses and named areas with points)."""
    frame = store.incidents(columns=["address", "lat", "lon", "neighbourhood"])
    return Gazetteer.learn(frame)


def sync_feed(tables: FeedTables, url: str, fetcher: Fetcher, gazetteer: Gazetteer | None) -> SyncReport:
    """Fetch one feed, keep its new items (analysed), and report; refusals are reported, not raised."""
    report = SyncReport(url)
    try:
        resp = fetcher.request("GET", url, accept=ACCEPT)
        parsed = parse_feed(url, resp.body, content_type=resp.headers.get("content-type", ""))
    except (FetchError, FeedError) as exc:
        report.status, report.error = "refused", str(exc).splitlines()[0]
        tables.mark(url, f"refused: {report.error}"[:500])
        return report
    report.items = len(parsed.items)
    seen = tables.known([i.item_id for i in parsed.items])
    fresh = list({i.item_id: i for i in parsed.items if i.item_id not in seen}.values())
    report.duplicates = report.items - len(fresh)
    if fresh:
        rows = _rows(url, resp.url, resp.body, parsed, fresh, gazetteer)
        tables.insert(rows)
        report.placed = {str(k): int(v) for k, v in rows["place_precision"].value_counts().items()}
    report.new = len(fresh)
    tables.mark(url, "ok")
    return report


def _rows(url: str, final_url: str, body: bytes, parsed: ParsedFeed, items: list[FeedItem],
          gazetteer: Gazetteer | None) -> pd.DataFrame:
    nlp = analyse([i.title for i in items], [i.summary for i in items], gazetteer)
    now = pd.Timestamp.now(tz="UTC")
    provenance = json.dumps({
        "feed_url": url, "fetched_url": final_url, "fetched_at": now.isoformat(), "format": parsed.version,
        "feed_title": parsed.title, "body_sha256": hashlib.sha256(body).hexdigest(),
        "parser": f"feedparser {feedparser.__version__}", "crime_type": "lexicon", "sentiment": "vader",
        "gazetteer_entries": len(gazetteer) if gazetteer is not None else 0,
    })
    frame = pd.DataFrame({
        "item_id": [i.item_id for i in items], "feed_url": url, "guid": [i.guid for i in items],
        "link": [i.link for i in items], "title": [i.title for i in items],
        "summary": [i.summary for i in items],
        "published_at": pd.Series([i.published_at for i in items], dtype="datetime64[ns, UTC]"),
        "fetched_at": now, "provenance": provenance,
    })
    nlp = nlp.assign(topics=nlp["topics"].map(json.dumps))
    return pd.concat([frame, nlp.reset_index(drop=True)], axis=1)


FetcherFor = Callable[[str], "Fetcher"]


def sync_all(tables: FeedTables, fetcher_for: FetcherFor, gazetteer: Gazetteer | None) -> list[SyncReport]:
    """Sync every registered feed; ``fetcher_for(url)`` gives the fetcher allowed to reach it."""
    return [sync_feed(tables, str(u), fetcher_for(str(u)), gazetteer) for u in tables.feeds()["url"]]
