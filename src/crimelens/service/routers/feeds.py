"""``GET /feeds/items``: stored news and press-release items (``crimelens feeds sync``), not police records.

The fields a dashboard layer needs (title, link, time, the crime type guessed from the text, the
place resolved and its precision, the point, the sentiment label, the feed), newest first; the
provenance internals stay in the store. ``[]`` before any feed has been synced (no tables yet).
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query

from crimelens.service.deps import Svc, Viewer
from crimelens.service.schemas import errors

router = APIRouter(prefix="/feeds", tags=["feeds"], responses=errors(401, 403))

EXISTS_SQL = "SELECT count(*) FROM information_schema.tables WHERE table_name = 'feed_items'"
ITEM_FIELDS = ("id", "title", "link", "published_at", "category", "category_score", "place", "place_precision",
               "lat", "lon", "sentiment_label")
_SELECT = ("SELECT item_id, title, link, published_at, category, category_score, place, place_precision, lat, lon, "
           "sentiment_label, feed_url, provenance, fetched_at FROM feed_items")


def has_items_table(svc: Any) -> bool:
    """Whether ``feed_items`` exists in the service's store."""
    rows = svc.rt.query(EXISTS_SQL)
    return bool(rows and int(rows[0][0]) > 0)


def _stamp(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


def item_record(row: tuple[Any, ...]) -> dict[str, Any]:
    """One ``_SELECT`` row as the API's item: public fields and the feed's URL and title."""
    out = {k: _stamp(v) for k, v in zip(ITEM_FIELDS, row[:len(ITEM_FIELDS)], strict=True)}
    for k in ("category_score", "lat", "lon"):
        out[k] = None if out[k] is None or out[k] != out[k] else float(out[k])
    feed_url, provenance = row[len(ITEM_FIELDS)], row[len(ITEM_FIELDS) + 1]
    try:
        title = json.loads(provenance).get("feed_title") if isinstance(provenance, str) else None
    except ValueError:
        title = None
    out["feed"] = {"url": feed_url, "title": title or None}
    return out


def select_items(svc: Any, *, since: datetime | None = None, fetched_after: datetime | None = None,
                 limit: int = 500) -> list[tuple[Any, ...]]:
    """Rows of ``_SELECT`` (the last column is ``fetched_at``), newest published first."""
    where, params = [], []
    if since is not None:
        where.append("published_at >= ?")
        params.append(since)
    if fetched_after is not None:
        where.append("fetched_at > ?")
        params.append(fetched_after)
    sql = _SELECT + (" WHERE " + " AND ".join(where) if where else "") + \
        " ORDER BY published_at DESC NULLS LAST, item_id LIMIT ?"
    rows: list[tuple[Any, ...]] = svc.rt.query(sql, [*params, limit])
    return rows


@router.get("/items", summary="Stored news and press-release items (not police records), newest first")
def list_items(svc: Svc, _: Viewer,
               since: Annotated[datetime | None, Query(description="items published at or after this time")] = None,
               limit: int = Query(500, ge=1, le=5000)) -> list[dict[str, Any]]:
    """Items of every followed feed with the place resolved from their text and its precision."""
    if not has_items_table(svc):
        return []
    return [item_record(r) for r in select_items(svc, since=since, limit=limit)]
