"""RSS/Atom feeds from a real local HTTPS server into ``feed_items``, through the text pipeline."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pytest

pytest.importorskip("feedparser", reason="feedparser is not installed (pip install 'crimelens[stream]')")
pytest.importorskip("vaderSentiment", reason="vaderSentiment is not installed (pip install 'crimelens[nlp]')")

from typer.testing import CliRunner

from crimelens.cli import fetch_cmds
from crimelens.cli.app import app
from crimelens.connectors.feeds import FeedError, FeedTables, parse_feed, sync_feed
from crimelens.connectors.fetch import Fetcher
from crimelens.settings import Settings
from crimelens.sources.mapping import load_preset
from crimelens.store import connect
from crimelens.stream import Message, load_batch
from crimelens.text.gazetteer import Gazetteer, split_address
from crimelens.text.newsitems import crime_type
from tests.conftest import TEST_KEY
from tests.connectors.conftest import Request, Server
from tests.stream.conftest import socrata_record

runner = CliRunner()

# A police department's press-release feed (RSS 2.0), as recorded.
RSS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0" xmlns:atom="http://www.w3.org/2005/Atom">
<channel>
  <title>Police News - District 7</title>
  <link>https://localhost/news</link>
  <description>Press releases</description>
  <item>
    <title>Man shot in the 6300 block of South Halsted Street</title>
    <link>https://localhost/news/2024/05/04/shooting-halsted</link>
    <guid isPermaLink="false">pr-2024-0512</guid>
    <pubDate>Sat, 04 May 2024 23:55:00 -0500</pubDate>
    <description><![CDATA[<p>A 24-year-old man was <b>shot</b> and wounded late Saturday in the 6300 block
      of S. Halsted St. Detectives are asking for the public's help.</p>]]></description>
  </item>
  <item>
    <title>Arrest made after string of garage burglaries</title>
    <link>https://localhost/news/2024/05/03/burglary-arrest</link>
    <guid isPermaLink="false">pr-2024-0509</guid>
    <pubDate>Fri, 03 May 2024 14:10:00 -0500</pubDate>
    <description>Officers arrested a suspect linked to five burglaries near Wentworth Avenue. The community
      thanked officers for the great work.</description>
  </item>
  <item>
    <title>Community picnic this weekend</title>
    <link>https://localhost/news/2024/05/02/picnic</link>
    <guid isPermaLink="false">pr-2024-0507</guid>
    <pubDate>Thu, 02 May 2024 09:00:00 -0500</pubDate>
    <description>Join your neighbours in Englewood for a free picnic and music.</description>
  </item>
</channel>
</rss>
"""

# A local newspaper's crime section (Atom 1.0), as recorded; no GUID on one entry, only its link.
ATOM = b"""<?xml version="1.0" encoding="utf-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <title>South Side Weekly - Crime</title>
  <id>tag:localhost,2024:crime</id>
  <updated>2024-05-05T08:00:00Z</updated>
  <entry>
    <title>Two carjackings reported overnight</title>
    <id>tag:localhost,2024:entry-88</id>
    <link href="https://localhost/weekly/carjackings"/>
    <updated>2024-05-05T07:30:00Z</updated>
    <summary>Two drivers were robbed of their cars at gunpoint, police said; one on State Street.</summary>
  </entry>
  <entry>
    <title>Catalytic converter thefts rise</title>
    <link href="https://localhost/weekly/converters"/>
    <updated>2024-05-04T12:00:00Z</updated>
    <summary>Residents report a wave of catalytic converter thefts from parked cars.</summary>
  </entry>
</feed>
"""

HTML = b"<!DOCTYPE html><html><head><title>News</title></head><body><p>Our news page</p></body></html>"


def _store_with_blocks(path: Path) -> None:
    """A store whose incidents name a few South Side blocks (the gazetteer is learned from them)."""
    recs = []
    for i in range(12):
        block = ("063XX S HALSTED ST", 41.7793, -87.6440) if i % 3 == 0 else \
            ("002XX W 63RD ST", 41.7801, -87.6330) if i % 3 == 1 else ("001XX N STATE ST", 41.8840, -87.6279)
        recs.append(socrata_record(i, block=block[0], latitude=f"{block[1] + i * 1e-5:.6f}",
                                   longitude=f"{block[2]:.6f}"))
    store = connect(str(path))
    try:
        load_batch(store, load_preset("chicago_socrata"), [Message(i + 1, json.dumps(r).encode())
                                                           for i, r in enumerate(recs)], key=TEST_KEY, stream="seed")
    finally:
        store.close()


@pytest.fixture
def feeds_factory(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's fetcher hook: trust the test CA and reach 127.0.0.1, with the hosts the CLI resolved."""
    def factory(hosts: Sequence[str], settings: Settings) -> Fetcher:
        built = fetch_cmds.default_fetcher(hosts, settings)
        return server.fetcher(hosts=tuple(built.allow_hosts), max_bytes=built.max_bytes)

    monkeypatch.setattr(fetch_cmds, "fetcher_factory", factory)


def _serve(body: bytes, ctype: str = "application/rss+xml") -> object:
    def route(req: Request, handler: object) -> tuple[int, dict[str, str], bytes]:
        return 200, {"Content-Type": ctype}, body
    return route


@pytest.mark.usefixtures("feeds_factory")
def test_feeds_add_sync_dedup_and_nlp_fields(server: Server, tmp_path: Path) -> None:
    db = tmp_path / "f.duckdb"
    _store_with_blocks(db)
    server.routes["/police.rss"] = _serve(RSS)
    server.routes["/weekly.atom"] = _serve(ATOM, "application/atom+xml")
    for path in ("/police.rss", "/weekly.atom"):
        res = runner.invoke(app, ["feeds", "add", server.url(path), "--db", str(db)])
        assert res.exit_code == 0 and "added" in res.stdout, res.output
    res = runner.invoke(app, ["feeds", "add", server.url("/police.rss"), "--db", str(db)])
    assert "already registered" in res.stdout
    res = runner.invoke(app, ["feeds", "sync", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["new"] == 5 and [f["new"] for f in out["feeds"]] == [3, 2]

    store = connect(str(db), read_only=True)
    try:
        items = FeedTables(store).items().set_index("guid", drop=False)
        incidents = store.info()["incidents"]
    finally:
        store.close()
    assert incidents == 12  # feed items never become incidents
    shot = items.loc["pr-2024-0512"]
    assert shot["category"] == "aggravated_assault" and shot["category_method"] == "lexicon"
    assert shot["place_precision"] == "block" and shot["place"] == "6300 block of HALSTED ST"
    assert abs(shot["lat"] - 41.7793) < 0.001 and abs(shot["lon"] + 87.6440) < 0.001
    assert shot["sentiment"] < -0.05 and shot["sentiment_label"] == "negative"
    assert shot["published_at"] == pd.Timestamp("2024-05-05T04:55:00Z")
    assert "<b>" not in shot["summary"]  # feedparser sanitised the markup
    burglary = items.loc["pr-2024-0509"]
    assert burglary["category"] == "burglary" and burglary["place_precision"] == "none"  # Wentworth is unknown
    picnic = items.loc["pr-2024-0507"]
    assert picnic["category"] == "unknown" and picnic["sentiment"] > 0.05
    carjack = items[items["title"].str.startswith("Two carjackings")].iloc[0]
    assert carjack["category"] == "robbery"
    assert carjack["place"] == "STATE ST" and carjack["place_precision"] == "street"
    converters = items[items["link"] == "https://localhost/weekly/converters"]  # no GUID: the link is the key
    assert len(converters) == 1 and converters.iloc[0]["category"] == "theft_from_vehicle"
    assert converters.iloc[0]["guid"] is None or converters.iloc[0]["guid"] != converters.iloc[0]["guid"]
    assert all(isinstance(t, list) and t for t in items["topics"])
    prov = json.loads(shot["provenance"])
    assert prov["feed_url"] == server.url("/police.rss") and prov["format"] == "rss20"
    assert prov["gazetteer_entries"] > 0 and len(prov["body_sha256"]) == 64

    # a second sync (one item edited, the rest the same) adds nothing: GUIDs are the key
    server.routes["/police.rss"] = _serve(RSS.replace(b"Community picnic", b"Community picnic (updated)"))
    res = runner.invoke(app, ["feeds", "sync", "--db", str(db), "--json"])
    again = json.loads(res.stdout)
    assert again["new"] == 0 and [f["duplicates"] for f in again["feeds"]] == [3, 2]
    res = runner.invoke(app, ["feeds", "list", "--db", str(db), "--json"])
    assert [r["items"] for r in json.loads(res.stdout)] == [3, 2]


@pytest.mark.usefixtures("feeds_factory")
def test_html_garbage_and_huge_bodies_are_refused_with_one_line(server: Server, tmp_path: Path) -> None:
    db = str(tmp_path / "r.duckdb")
    server.routes["/page"] = _serve(HTML, "text/html; charset=utf-8")
    server.routes["/disguised"] = _serve(HTML, "application/rss+xml")
    server.routes["/garbage"] = _serve(b"\x00\x01 definitely not xml", "application/xml")
    server.routes["/huge"] = _serve(b"<rss version='2.0'><channel>" + b"<item><title>x</title></item>" * 250_000
                                    + b"</channel></rss>")
    server.routes["/ok"] = _serve(RSS)
    for path in ("/page", "/disguised", "/garbage", "/huge", "/ok"):
        assert runner.invoke(app, ["feeds", "add", server.url(path), "--db", db]).exit_code == 0
    res = runner.invoke(app, ["feeds", "sync", "--db", db])
    assert res.exit_code == 2
    lines = res.stdout.strip().splitlines()
    assert len(lines) == 5
    assert "refused" in lines[0] and "HTML page" in lines[0]
    assert "refused" in lines[1] and "HTML page" in lines[1]
    assert "refused" in lines[2] and "not an RSS or Atom feed" in lines[2]
    assert "refused" in lines[3] and "5242880" in lines[3].replace(",", "")
    assert "3 items, 3 new" in lines[4]  # the good feed still synced
    res = runner.invoke(app, ["feeds", "add", "http://localhost/feed.rss", "--db", db])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "https://" in res.stderr


def test_a_feed_on_a_host_that_is_not_allowed_never_connects(server: Server, tmp_path: Path) -> None:
    store = connect(str(tmp_path / "h.duckdb"))
    try:
        tables = FeedTables(store)
        tables.add(server.url("/police.rss"))
        report = sync_feed(tables, server.url("/police.rss"), server.fetcher(hosts=("news.example.org",)), None)
    finally:
        store.close()
    assert report.status == "refused" and "allow-list" in (report.error or "") and not server.seen


def test_parse_and_lexicon_and_gazetteer_units() -> None:
    with pytest.raises(FeedError, match="HTML"):
        parse_feed("https://x/", HTML)
    parsed = parse_feed("https://x/", ATOM)
    assert parsed.version == "atom10" and len({i.item_id for i in parsed.items}) == 2
    assert crime_type("Shots fired, no one was hit; police recovered a gun")[0] == "weapons"
    assert crime_type("The council met on Tuesday") == ("unknown", 0.0)
    assert split_address("063XX S HALSTED ST") == (6300, "HALSTED ST")
    assert split_address("0 Block of MARKET ST") == (0, "MARKET ST")
    frame = pd.DataFrame({"address": ["063XX S HALSTED ST"] * 3 + ["1200 Block of Main Street"] * 2,
                          "lat": [41.0, 41.1, 41.2, 40.0, 40.0], "lon": [-87.0] * 3 + [-86.0] * 2,
                          "neighbourhood": ["West Englewood"] * 3 + ["Downtown"] * 2})
    gaz = Gazetteer.learn(frame)
    assert gaz.resolve("near 1250 block of Main St.").precision == "block"
    assert gaz.resolve("In West Englewood, a fight").name == "WEST ENGLEWOOD"
    assert gaz.resolve("nothing").precision == "none"


@pytest.mark.real_data
def test_the_gazetteer_learned_from_real_chicago_blocks_places_a_press_release() -> None:
    path = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "chicago_2015_02" / "chicagoCrimes10k.csv"
    if not path.exists():
        pytest.skip(f"real data absent: {path}")
    raw = pd.read_csv(path, usecols=["Block", "Latitude", "Longitude"])
    gaz = Gazetteer.learn(raw.rename(columns={"Block": "address", "Latitude": "lat", "Longitude": "lon"}))
    top = raw["Block"].value_counts().index[0]  # the busiest block of the extract
    hundred, street = split_address(top)
    words = street.split()
    place = gaz.resolve(f"Police responded to the {hundred} block of {' '.join(words[:-1]).title()} "
                        f"{ {'ST': 'Street', 'AVE': 'Avenue'}.get(words[-1], words[-1]) } on Monday.")
    assert place.precision == "block" and place.name == f"{hundred} block of {street}"
    rows = raw[raw["Block"] == top]
    assert abs(place.lat - rows["Latitude"].median()) < 1e-9  # type: ignore[operator]


def test_feed_items_in_a_postgresql_store(server: Server) -> None:
    """The same tables and dedup on PostgreSQL (skipped when no server answers)."""
    import uuid

    psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    from tests.service.conftest import PG_SERVER, pg_or_skip

    pg_or_skip()
    schema = f"t_feeds_{uuid.uuid4().hex[:10]}"
    server.routes["/police.rss"] = _serve(RSS)
    store = connect(f"{PG_SERVER}?schema={schema}")
    try:
        tables = FeedTables(store)
        assert tables.add(server.url("/police.rss")) and not tables.add(server.url("/police.rss"))
        gaz = Gazetteer.learn(pd.DataFrame({"address": ["063XX S HALSTED ST"] * 2, "lat": [41.7793, 41.7795],
                                            "lon": [-87.6440, -87.6440]}))
        first = sync_feed(tables, server.url("/police.rss"), server.fetcher(), gaz)
        again = sync_feed(tables, server.url("/police.rss"), server.fetcher(), gaz)
        items = tables.items()
    finally:
        store.close()
        with psycopg.connect(PG_SERVER, autocommit=True) as con:
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    assert (first.new, again.new, again.duplicates) == (3, 0, 3)
    assert len(items) == 3 and set(items["place_precision"]) == {"block", "none"}
    assert items.iloc[0]["published_at"] == pd.Timestamp("2024-05-05T04:55:00Z")
