"""The stops-and-arrests audit table and the area view (a stored area layer drawn on the map) in
headless Chromium: the numbers in each table equal the API's, and the API's equal known rates.
Skips, with the reason, without Chromium or playwright."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.service.conftest import PASSWORDS, service_settings
from tests.service.test_browser import live_server
from tests.service.test_browser_dashboard import CHROMIUM, browser, new_page, sign_in
from tests.service.test_dashboard_areas import expected_counts, grid_layer

pytestmark = [pytest.mark.slow, pytest.mark.service,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                 "(apt-get install chromium, or make system-deps)")]
pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
__all__ = ["browser"]  # the module-scoped Chromium fixture of the dashboard tests

#: 90 stops: every third of a Black person (30), the rest White (60); residents 10,000 and 50,000,
#: so 3.0 and 1.2 stops per 1,000 and a rate ratio of 2.5.
POPULATION = "group,population\nWhite,50000\nBlack,10000\n"


@pytest.fixture(scope="module")
def served(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, dict[str, int]]]:
    from crimelens.ingest import ingest_file
    from crimelens.service.app import create_app
    from crimelens.store import connect
    from crimelens.store.areas import save_layer
    from tests.conftest import TEST_KEY
    from tests.sources.kinds_files import STOPS_HEADER, stop_row, write

    d = tmp_path_factory.mktemp("panels")
    db = d / "p.duckdb"
    shutil.copy(template_store, db)
    want = expected_counts(str(db))
    rows = [stop_row(i, ethnicity="Black" if i % 3 == 0 else "White", linked="True" if i % 4 == 0 else "False")
            for i in range(90)]
    store = connect(str(db))
    try:
        ingest_file(store, write(d / "stops.csv", STOPS_HEADER, rows), key=TEST_KEY)
        save_layer(store, grid_layer())  # type: ignore[arg-type]
    finally:
        store.close()
    for url in live_server(create_app(service_settings(db))):
        yield url, want


def table_rows(pg: Any, table: str) -> list[list[str]]:
    rows: list[list[str]] = pg.eval_on_selector_all(
        f"#{table} tbody tr", "trs => trs.map(tr => [...tr.children].map(c => c.textContent.trim()))")
    return rows


def token(server: str, user: str) -> str:
    r = httpx.post(server + "/api/v1/auth/login", json={"username": user, "password": PASSWORDS[user]})
    t: str = r.json()["access_token"]
    return t


def test_stops_table_equals_the_api(browser: Any, served: tuple[str, dict[str, int]], tmp_path: Path) -> None:
    server, _ = served
    ctx, pg, problems = new_page(browser, server)
    sign_in(pg, server, "analyst")
    pop = tmp_path / "population.csv"
    pop.write_text(POPULATION)
    pg.set_input_files("#s-pop", str(pop))
    pg.wait_for_function("() => document.getElementById('stops-note').textContent.includes('2 groups')")
    with pg.expect_response(lambda r: "/fairness/stops" in r.url) as resp:
        pg.click("#stops-form button[type=submit]")
    sent = resp.value.request.post_data_json
    api = resp.value.json()
    pg.wait_for_function("() => document.querySelectorAll('#stops-table tbody tr').length === 2")
    assert "per 1,000 residents" in pg.inner_text("#stops-table caption")
    shown = {r[0]: r for r in table_rows(pg, "stops-table")}
    # the API's answer (same body, fetched outside the page) is the one the table shows
    again = httpx.post(server + "/api/v1/fairness/stops", json=sent,
                       headers={"Authorization": "Bearer " + token(server, "analyst")}).json()
    assert again["groups"] == api["groups"]
    for g in api["groups"]:
        row = shown[g["group"]]
        assert int(row[1]) == g["records"]
        assert float(row[3]) == pytest.approx(g["rate_per_1000"], abs=0.005)
        assert row[4] == f"{g['rate_ci'][0]:.2f} – {g['rate_ci'][1]:.2f}"
        if g["group"] != api["reference"]:
            assert float(row[5]) == pytest.approx(g["rate_ratio"], abs=0.005)
            assert row[6] == f"{g['rate_ratio_ci'][0]:.2f} – {g['rate_ratio_ci'][1]:.2f}"
        assert row[9].startswith(f"{100 * g['hit_rate']['rate']:.1f}%")
    # and the API's equal the planted rates
    assert float(shown["Black"][3]) == pytest.approx(3.0) and float(shown["White"][3]) == pytest.approx(1.2)
    assert float(shown["Black"][5]) == pytest.approx(2.5) and shown["White"][5] == "reference"
    ctx.close()
    assert problems == [], problems[:5]


def test_viewer_is_told_the_audit_is_for_analysts(browser: Any, served: tuple[str, dict[str, int]]) -> None:
    server, _ = served
    ctx, pg, _problems = new_page(browser, server)
    sign_in(pg, server, "viewer")
    pg.click("#stops-form button[type=submit]")
    assert "for analysts and administrators" in pg.inner_text("#stops-note")
    assert table_rows(pg, "stops-table") == []
    ctx.close()


def test_area_view_draws_the_stored_layer(browser: Any, served: tuple[str, dict[str, int]]) -> None:
    server, want = served
    ctx, pg, problems = new_page(browser, server)
    sign_in(pg, server, "analyst")
    pg.wait_for_function("() => document.querySelectorAll('#al-layer option').length > 1")
    with pg.expect_response(lambda r: "/choropleth/layers/tracts" in r.url) as resp:
        pg.select_option("#al-layer", "tracts")
    counts = resp.value.json()
    pg.wait_for_function("() => document.querySelectorAll('#al-table tbody tr').length === 12")
    shown = {r[0]: int(r[1]) for r in table_rows(pg, "al-table")}
    assert shown == {f["properties"]["area"]: f["properties"]["count"] for f in counts["features"]}
    # the page asks for the dashboard's period; over all weeks the counts are the ones counted here
    if "from=" not in resp.value.url:
        assert shown == want
    traces = pg.evaluate("document.getElementById('map').data.filter(t => t.legendgroup === 'arealayer')"
                         ".map(t => t.name)")
    assert traces == [c["label"] for c in counts["legend"]]
    legend = pg.eval_on_selector_all("#al-legend li", "ls => ls.map(l => Number(l.dataset.cls))")
    assert legend == sorted(legend) == list(range(1, len(counts["legend"]) + 1))
    with pg.expect_response(lambda r: "/choropleth/layers/tracts" in r.url) as resp:
        pg.select_option("#al-measure", "smoothed_rate")
    eb = resp.value.json()
    assert resp.value.request.post_data_json["population"] == "POP"
    pg.wait_for_function("() => document.getElementById('al-note').textContent.includes('empirical Bayes')")
    rows = {r[0]: float(r[3]) for r in table_rows(pg, "al-table")}
    assert rows == pytest.approx({f["properties"]["area"]: f["properties"]["value"] for f in eb["features"]})
    ctx.close()
    assert problems == [], problems[:5]
