"""``GET /api/v1/feeds/items`` on both stores: items written to ``feed_items`` by :class:`FeedTables`."""

from __future__ import annotations

import json
from contextlib import closing
from typing import Any

import pandas as pd

from crimelens.connectors.feeds import FeedTables, item_id
from crimelens.store import connect

from .conftest import Env

FEED = "https://news.example-pd.gov/press.rss"


def news_rows(specs: list[tuple[str, str, float | None, float | None, str]]) -> pd.DataFrame:
    """``feed_items`` rows for (guid, title, lat, lon, published) specs, as a sync would store them."""
    now = pd.Timestamp.now(tz="UTC")
    rows: list[dict[str, Any]] = []
    for guid, title, lat, lon, published in specs:
        located = lat is not None
        rows.append({
            "item_id": item_id(FEED, guid, None, title, None), "feed_url": FEED, "guid": guid,
            "link": f"https://news.example-pd.gov/{guid}", "title": title, "summary": title,
            "published_at": pd.Timestamp(published, tz="UTC"), "fetched_at": now,
            "category": "robbery" if located else "unknown", "category_score": 1.0 if located else 0.0,
            "category_method": "lexicon", "topics": json.dumps(["robbery"]), "sentiment": -0.4,
            "sentiment_label": "negative", "place": "063XX S HALSTED ST" if located else None,
            "place_precision": "block" if located else "none", "lat": lat, "lon": lon,
            "provenance": json.dumps({"feed_url": FEED, "feed_title": "Police News - District 7"}),
        })
    return pd.DataFrame(rows)


def store_news(url: str, specs: list[tuple[str, str, float | None, float | None, str]]) -> None:
    """Write items to the store at ``url`` through :class:`FeedTables` (its own connection)."""
    with closing(connect(url)) as store:
        tables = FeedTables(store)
        tables.add(FEED, "Police News - District 7")
        tables.insert(news_rows(specs))


def test_items_are_listed_newest_first_without_provenance(env: Env) -> None:
    h = env.auth("viewer")
    r = env.client.get("/api/v1/feeds/items", headers=h)
    assert r.status_code == 200, r.text
    assert r.json() == []  # no feed tables yet
    store_news(env.url, [("a", "Carjacking on Halsted", 41.7796, -87.6445, "2024-05-04T23:55"),
                         ("b", "Community picnic", None, None, "2024-05-02T09:00"),
                         ("c", "Robbery on State Street", 41.8, -87.627, "2024-05-05T07:30")])
    items = env.client.get("/api/v1/feeds/items", headers=h).json()
    assert [i["title"] for i in items] == ["Robbery on State Street", "Carjacking on Halsted", "Community picnic"]
    first = items[1]
    assert first["place"] == "063XX S HALSTED ST" and first["place_precision"] == "block"
    assert abs(first["lat"] - 41.7796) < 1e-9 and abs(first["lon"] + 87.6445) < 1e-9
    assert first["feed"] == {"url": FEED, "title": "Police News - District 7"}
    assert first["published_at"].startswith("2024-05-04T23:55")
    assert items[2]["lat"] is None and items[2]["place_precision"] == "none"
    assert "provenance" not in first and "summary" not in first and len(first["id"]) == 64
    since = env.client.get("/api/v1/feeds/items", params={"since": "2024-05-04T00:00:00Z", "limit": 1},
                           headers=h).json()
    assert [i["title"] for i in since] == ["Robbery on State Street"]
    assert env.client.get("/api/v1/feeds/items").status_code == 401
    assert env.client.get("/api/v1/feeds/items", params={"limit": 0}, headers=h).status_code == 422
