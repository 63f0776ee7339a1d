"""``crimelens feeds add URL | sync | list``: RSS/Atom news feeds into ``feed_items`` (never incidents).

Fetching goes through the SEC-14 fetcher built by :data:`crimelens.cli.fetch_cmds.fetcher_factory`:
a registered feed's own host is allowed for it, besides ``CRIMELENS_FETCH_ALLOW_HOSTS`` and
``--allow-host`` (which a redirect to another host needs).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated
from urllib.parse import urlsplit

import typer

from crimelens.cli.common import DbOpt, JsonOpt, db_url, emit, errors_to_exit

if TYPE_CHECKING:
    from crimelens.connectors.fetch import Fetcher

feeds_app = typer.Typer(help="RSS/Atom news feeds: add, sync, list (stored apart from incidents).",
                        no_args_is_help=True)
AllowHostOpt = Annotated[list[str] | None, typer.Option(
    "--allow-host", help="Another host (or *.suffix) a feed may redirect to (repeatable).")]


@feeds_app.command("add")
def add(
    url: Annotated[str, typer.Argument(help="The feed's https:// URL.")],
    title: Annotated[str | None, typer.Option(help="A name for the feed [default: its own title].")] = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Register a feed (fetched at the next ``feeds sync``)."""
    with errors_to_exit():
        from crimelens.connectors.feeds import FeedTables
        from crimelens.store import connect

        store = connect(db_url(db))
        try:
            added = FeedTables(store).add(url, title)
        finally:
            store.close()
    emit({"url": url, "added": added}, as_json, f"{'added' if added else 'already registered'}: {url}")


@feeds_app.command("sync")
def sync(
    allow_host: AllowHostOpt = None,
    db: DbOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Fetch every registered feed, keep new items (deduplicated by GUID/link) with their NLP fields.

    A feed that answers with HTML, a body over the size limit, or anything that is not RSS/Atom is
    refused (reported, the others still sync); the command then exits with code 2.
    """
    from crimelens.cli.fetch_cmds import fetcher_factory

    with errors_to_exit():
        from crimelens.connectors.feeds import MAX_FEED_BYTES, FeedTables, learn_gazetteer, sync_all
        from crimelens.settings import Settings
        from crimelens.store import connect

        settings = Settings()
        hosts = [h.strip() for h in settings.fetch_allow_hosts.split(",") if h.strip()] + list(allow_host or [])

        def fetcher_for(url: str) -> Fetcher:
            fetcher = fetcher_factory([*hosts, urlsplit(url).hostname or ""], settings)
            fetcher.max_bytes = min(fetcher.max_bytes, MAX_FEED_BYTES)
            return fetcher

        store = connect(db_url(db))
        try:
            tables = FeedTables(store)
            reports = sync_all(tables, fetcher_for, learn_gazetteer(store))
        finally:
            store.close()
    rows = [r.to_dict() for r in reports]
    lines = [f"{r['url']}: {r['items']} items, {r['new']} new, {r['duplicates']} already stored"
             + (f"  places {r['placed']}" if r["placed"] else "") if r["status"] == "ok"
             else f"{r['url']}: refused: {r['error']}" for r in rows]
    emit({"feeds": rows, "new": sum(r["new"] for r in rows)}, as_json,
         "\n".join(lines) if lines else "no feeds registered (crimelens feeds add URL)")
    if any(r["status"] != "ok" for r in rows):
        raise typer.Exit(2)


@feeds_app.command("list")
def list_feeds(db: DbOpt = None, as_json: JsonOpt = False) -> None:
    """Registered feeds with their item counts and last sync."""
    import pandas as pd

    with errors_to_exit():
        from crimelens.connectors.feeds import FeedTables
        from crimelens.store import connect

        store = connect(db_url(db))
        try:
            tables = FeedTables(store)
            feeds = tables.feeds()
            counts = tables.items()["feed_url"].value_counts()
        finally:
            store.close()
    rows = [{"url": str(r["url"]), "title": r["title"], "items": int(counts.get(r["url"], 0)),
             "last_sync": None if pd.isna(r["last_sync"]) else str(r["last_sync"]),
             "last_status": r["last_status"]} for r in feeds.to_dict("records")]
    emit(rows, as_json, "\n".join(f"{r['url']}  {r['items']} items  last sync {r['last_sync']} ({r['last_status']})"
                                  for r in rows) or "no feeds registered")


def register(app: typer.Typer) -> None:
    """Add ``crimelens feeds`` to ``app``."""
    app.add_typer(feeds_app, name="feeds")
