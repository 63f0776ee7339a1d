"""News items reach the live feed (PostgreSQL): items another connection stores after the first
poll are published once as a ``feed`` event, with the public fields of ``GET /feeds/items``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crimelens.service.batchfeed import BatchListener
from tests.service.conftest import Env, PgTemplate, make_env
from tests.service.test_feeds_api import store_news


@pytest.fixture
def pg_env(pg_template: PgTemplate, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(pg_template, tmp_path)


def _published(svc: Any, title: str) -> list[dict[str, Any]]:
    return [i for e in list(svc.rt.events.history) if e["event"] == "feed"
            for i in e["data"]["items"] if i["title"] == title]


def test_items_stored_after_the_first_poll_are_published_once(pg_env: Env) -> None:
    svc = pg_env.app.state.svc
    store_news(pg_env.url, [("old", "Burglary on Wentworth", 41.78, -87.63, "2024-05-01T10:00")])
    listener = BatchListener(svc, poll_s=60)
    listener._poll()  # the first poll: what is stored is history
    assert listener.news.high_water is not None
    store_news(pg_env.url, [("new", "Carjacking on Halsted", 41.7796, -87.6445, "2024-05-04T23:55"),
                            ("far", "Community picnic", None, None, "2024-05-02T09:00")])
    listener._poll()
    got = _published(svc, "Carjacking on Halsted")
    assert len(got) == 1
    item = got[0]
    assert item["place_precision"] == "block" and abs(item["lat"] - 41.7796) < 1e-9
    assert item["feed"]["url"].startswith("https://") and "provenance" not in item
    assert len(_published(svc, "Community picnic")) == 1  # unplaced items are news too (the layer skips them)
    listener._poll()
    assert len(_published(svc, "Carjacking on Halsted")) == 1  # not twice after two polls
    again = BatchListener(svc, poll_s=60)  # a second listener in the same process publishes nothing again
    again._poll()
    again._poll()
    assert len(_published(svc, "Carjacking on Halsted")) == 1
    assert len(_published(svc, "Burglary on Wentworth")) <= 1


def test_a_first_poll_before_any_feed_table_keeps_what_comes_later(pg_env: Env) -> None:
    svc = pg_env.app.state.svc
    listener = BatchListener(svc, poll_s=60)
    listener._poll()  # no feed tables yet
    store_news(pg_env.url, [("x", "Robbery on State Street", 41.8, -87.627, "2024-05-05T07:30")])
    listener._poll()
    assert len(_published(svc, "Robbery on State Street")) == 1
