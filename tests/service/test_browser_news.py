"""The "News" map layer in headless Chromium: stored feed items drawn apart from incidents.

Items written to ``feed_items`` (:class:`FeedTables`, as ``crimelens feeds sync`` stores them) appear
as the layer's points, one per located item the API lists; hover text names the place and its
precision; a click on the legend entry hides the layer. On PostgreSQL, items stored by another connection while the
page is open are added to the layer without a reload (the ``feed`` event). Skips, with the reason, without Chromium
or playwright (fixtures of test_browser_dashboard.py).
"""

from __future__ import annotations

import shutil
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.service.conftest import PASSWORDS, PgTemplate, pg_admin, pg_url, service_settings
from tests.service.test_browser import live_server
from tests.service.test_browser_dashboard import CHROMIUM, new_page, sign_in
from tests.service.test_feeds_api import store_news

pytestmark = [pytest.mark.slow, pytest.mark.service,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                 "(apt-get install chromium, or make system-deps)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
NEWS = "(t) => t.legendgroup === 'news'"


@pytest.fixture(scope="module")
def served(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from crimelens.service.app import create_app

    db = tmp_path_factory.mktemp("news") / "n.duckdb"
    shutil.copy(template_store, db)
    store_news(str(db), [("a", "Carjacking on Halsted", 41.7796, -87.6445, "2024-05-04T23:55"),
                         ("b", "Community picnic", None, None, "2024-05-02T09:00"),
                         ("c", "Robbery on State Street", 41.8, -87.627, "2024-05-05T07:30"),
                         ("d", "Shots fired in Englewood", 41.78, -87.645, "2024-05-06T01:10")])
    yield from live_server(create_app(service_settings(db)))


def test_news_items_are_a_separate_layer_with_place_and_precision(served: str) -> None:
    r = httpx.post(served + "/api/v1/auth/login", json={"username": "viewer", "password": PASSWORDS["viewer"]})
    token = r.json()["access_token"]
    items = httpx.get(served + "/api/v1/feeds/items", headers={"Authorization": f"Bearer {token}"}).json()
    located = [i for i in items if i["lat"] is not None]
    assert len(items) == 4 and len(located) == 3
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"])
        ctx, pg, problems = new_page(b, served)
        sign_in(pg, served)
        pg.wait_for_function(f"() => (document.getElementById('map').data || []).some({NEWS})", timeout=30_000)
        trace = pg.evaluate(f"() => {{ const t = document.getElementById('map').data.find({NEWS}); "
                            "return {name: t.name, x: t.x, y: t.y, ids: t.customdata, hover: t.hovertext, "
                            "symbol: t.marker.symbol}; }")
        assert trace["name"] == "News items (not police records)"
        assert sorted(trace["ids"]) == sorted(i["id"] for i in located)
        assert sorted(trace["x"]) == sorted(i["lon"] for i in located)
        assert trace["symbol"] == "star-open"
        others = pg.evaluate("() => document.getElementById('map').data.filter(t => t.legendgroup !== 'news' "
                             "&& t.marker && t.marker.symbol === 'star-open').length")
        assert others == 0  # no incident layer shares the symbol
        carjack = next(i for i in located if i["title"] == "Carjacking on Halsted")
        halsted = trace["hover"][trace["ids"].index(carjack["id"])]
        assert "Carjacking on Halsted" in halsted and "063XX S HALSTED ST (block precision)" in halsted
        pg.click("#map .legend .traces:has(text.legendtext:text-is('News items (not police records)')) .legendtoggle")
        pg.wait_for_function(f"() => document.getElementById('map').data.find({NEWS}).visible === 'legendonly'",
                             timeout=10_000)
        ctx.close()
        b.close()
        assert problems == [], problems[:5]


def test_items_stored_while_the_page_is_open_join_the_layer(pg_template: PgTemplate) -> None:
    from crimelens.service.app import create_app

    name = f"svc_news_{uuid.uuid4().hex[:10]}"
    pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template.database}")
    url = pg_url(name)
    try:
        for server in live_server(create_app(service_settings(url))):
            with playwright_api.sync_playwright() as p:
                b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                      args=["--no-sandbox", "--disable-gpu"])
                ctx, pg, problems = new_page(b, server)
                sign_in(pg, server)
                pg.wait_for_function("() => document.getElementById('live-note').textContent.startsWith('Connected')",
                                     timeout=30_000)
                assert pg.evaluate(f"() => document.getElementById('map').data.filter({NEWS}).length") == 0
                store_news(url, [("a", "Carjacking on Halsted", 41.7796, -87.6445, "2024-05-04T23:55"),
                                 ("c", "Robbery on State Street", 41.8, -87.627, "2024-05-05T07:30"),
                                 ("b", "Community picnic", None, None, "2024-05-02T09:00")])
                pg.wait_for_function(f"() => (document.getElementById('map').data || []).some(t => ({NEWS})(t) "
                                     "&& t.x.length === 2)", timeout=20_000)
                assert pg.evaluate("() => window.CL.news.items().length") == 3
                feed_rows = pg.evaluate("() => document.querySelectorAll('#live-list li[data-kind=feed]').length")
                assert feed_rows == 3  # the Live panel lists each item once
                ctx.close()
                b.close()
                assert problems == [], problems[:5]
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
