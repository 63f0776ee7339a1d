"""The morning-briefing dashboard in headless Chromium (Debian's, driven by Playwright).

Basemap tiles drawn under the map (an MBTiles file the test renders from the store), legends in
class order, the time slider and play control, comparison with last year, drill-down from a map
click (paged; personal fields after a stated reason, which the audit log records; near-repeat
neighbours), the server-classified choropleth, PNG and CSV exports of every panel, saved views
opened by URL, the print layout, 1024 px, and axe-core (from npm) with no serious or critical
violations. Screenshots go to the test output directory (and to docs/img/ with
``CRIMELENS_DOCS_IMG=1``). Skips, with the reason, without Chromium, playwright or axe-core.
"""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest

from tests.service.conftest import PASSWORDS, service_settings
from tests.service.test_browser import live_server

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
DOCS_IMG = ROOT / "docs" / "img"
pytestmark = [pytest.mark.slow, pytest.mark.service,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                 "(apt-get install chromium, or make system-deps)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dashboard-screenshots")
    print(f"screenshots in {out}")
    return out


def snap(target: Any, shots: Path, name: str, **kw: Any) -> None:
    """Screenshot to the test output (and docs/img/ when asked)."""
    target.screenshot(path=str(shots / name), **kw)
    if os.environ.get("CRIMELENS_DOCS_IMG") == "1":
        DOCS_IMG.mkdir(parents=True, exist_ok=True)
        shutil.copy(shots / name, DOCS_IMG / name)


@pytest.fixture(scope="module")
def server(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from crimelens.service.app import create_app
    from crimelens.service.demo import build_basemap

    d = tmp_path_factory.mktemp("dash")
    db = d / "d.duckdb"
    shutil.copy(template_store, db)
    tiles = build_basemap(db, d / "city.mbtiles", zooms=(10, 11, 12))
    yield from live_server(create_app(service_settings(db).model_copy(update={"basemap": tiles})))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        yield b
        b.close()


def new_page(browser: Any, server: str, width: int = 1440, height: int = 1100) -> tuple[Any, Any, list[str]]:
    ctx = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
    pg = ctx.new_page()
    problems: list[str] = []
    pg.on("request", lambda r: problems.append("outside: " + r.url)
          if not r.url.startswith((server, "data:", "blob:")) else None)
    pg.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    return ctx, pg, problems


def sign_in(pg: Any, server: str, user: str = "analyst", url: str = "/") -> None:
    pg.goto(server + url)
    pg.fill("#username", user)
    pg.fill("#password", PASSWORDS[user])
    pg.click("#login-form button[type=submit]")
    wait_updated(pg)


def wait_updated(pg: Any, previous: str = "") -> str:
    pg.wait_for_function("(prev) => { const s = document.getElementById('status').textContent;"
                         " return s.startsWith('Updated') && s !== prev; }", arg=previous, timeout=60_000)
    text: str = pg.inner_text("#status")
    return text


@pytest.fixture(scope="module")
def page(browser: Any, server: str) -> Iterator[Any]:
    ctx, pg, problems = new_page(browser, server)
    tiles: list[int] = []
    pg.on("response", lambda r: tiles.append(r.status) if "/tiles/" in r.url else None)
    sign_in(pg, server)
    pg.tiles = tiles
    yield pg
    ctx.close()
    assert problems == [], problems[:5]


@pytest.fixture(scope="module")
def token(server: str) -> str:
    r = httpx.post(server + "/api/v1/auth/login", json={"username": "analyst", "password": PASSWORDS["analyst"]})
    t: str = r.json()["access_token"]
    return t


def api(server: str, token: str, path: str, **kw: Any) -> Any:
    r = httpx.request(kw.pop("method", "GET"), server + "/api/v1" + path,
                      headers={"Authorization": f"Bearer {token}", **kw.pop("headers", {})}, **kw)
    assert r.status_code == 200, r.text
    return r.json()


def legend_groups(pg: Any) -> dict[str, list[str]]:
    out: dict[str, list[str]] = pg.evaluate("""() => Object.fromEntries(
        [...document.querySelectorAll('#map-legend > li')].map(g => [g.firstChild.textContent,
          [...g.querySelectorAll('li')].map(li => li.dataset.cls + '|' + li.textContent)]))""")
    return out


def plotly_legend_order(pg: Any, group: str) -> list[str]:
    """Trace names of one legend group in the order Plotly lists them (by legendrank)."""
    names: list[str] = pg.evaluate("""(g) => document.getElementById('map').data
        .filter(t => t.legendgroup === g).sort((a, b) => a.legendrank - b.legendrank).map(t => t.name)""", group)
    return names


def test_basemap_under_the_map_and_density_legend_in_order(page: Any, shots: Path) -> None:
    images = page.evaluate("document.getElementById('map').layout.images")
    tiles = [i for i in images if i.get("name") != "cells"]
    assert tiles and all(i["source"].startswith("/tiles/") and i["layer"] == "below" for i in tiles)
    # the cells are one picture laid above the tiles, below the traces
    assert images[-1]["name"] == "cells" and images[-1]["source"].startswith("data:image/png")
    assert images[-1]["layer"] == "below"
    page.wait_for_function("() => document.querySelectorAll('#map image').length > 0", timeout=15_000)
    assert page.tiles and 200 in page.tiles
    groups = legend_groups(page)
    density = groups["incidents per cell"]
    assert [e.split("|")[0] for e in density] == ["1", "2", "3", "4", "5"]
    # the labels' lower bounds rise class by class (the old page listed 5, 4, 2, 1, 3)
    assert plotly_legend_order(page, "incidents per cell") == [e.split("|")[1] for e in density]
    hot = plotly_legend_order(page, "Gi* hot spots")
    assert hot[0].startswith("Hot spot, 99%") and hot[-1].startswith("Cold spot, 99%")
    snap(page, shots, "dashboard-map.png", full_page=True)


def test_slider_moves_map_charts_and_compstat(page: Any, server: str, token: str, shots: Path) -> None:
    page.select_option("#t-window", "1")
    status = wait_updated(page)
    weeks = page.evaluate("CL.state.weeks")
    assert len(weeks) > 50
    i = len(weeks) - 10
    timings = []
    for step in (i, i + 1, i + 2):
        started = time.perf_counter()
        page.evaluate("(v) => { const s = document.getElementById('t-week'); s.value = v;"
                      " s.dispatchEvent(new Event('change')); }", str(step))
        status = wait_updated(page, status)
        timings.append(time.perf_counter() - started)
        week = weeks[step]
        assert week in page.inner_text("#t-label")
        shown = sum(r["value"] for r in page.evaluate("CL.map.rows()") if r["layer"] == "density")
        end = page.evaluate("(w) => CL.addDays(w, 7)", week)
        cells = api(server, token, f"/aggregates/cells?from={week}&to={end}&cell_m=500")["features"]
        assert shown == sum(f["properties"]["count"] for f in cells)
        bars = sum(page.evaluate("document.getElementById('categories').data[0].x"))
        cats = api(server, token, f"/aggregates/categories?from={week}&to={end}")["rows"]
        assert bars == sum(r["count"] for r in sorted(cats, key=lambda r: -r["count"])[:15])
        assert page.evaluate("document.getElementById('trend').layout.shapes[0].x0") == week
        assert end in page.inner_text("#compstat caption") or page.evaluate("(e) => CL.addDays(e, -1)", end) in \
            page.inner_text("#compstat caption")
    print("slider step timings (s):", [round(t, 3) for t in timings])
    snap(page, shots, "dashboard-slider.png", full_page=True)
    # play advances week by week, then pauses
    page.evaluate("document.getElementById('t-week').value = String(document.getElementById('t-week').max - 6)")
    before = int(page.input_value("#t-week"))
    page.evaluate("""() => { window.__labels = []; new MutationObserver(() => window.__labels.push([performance.now(),
        document.getElementById('t-label').textContent])).observe(document.getElementById('t-label'),
        { childList: true, characterData: true, subtree: true }); }""")
    page.click("#play")
    page.wait_for_function("(b) => Number(document.getElementById('t-week').value) >= b + 2", arg=before,
                           timeout=30_000)
    page.click("#play")
    assert page.get_attribute("#play", "aria-pressed") == "false"
    wait_updated(page, "")
    # playback asks for the next week ahead of showing it, by the very URLs its redraw then reuses
    # (a mismatch would ask the server twice for one week)
    shown = weeks[before + 1]
    asked = page.evaluate("(w) => performance.getEntriesByType('resource').filter(e => e.name.includes('from=' + w)"
                          " && /[/](aggregates|hotspots)/.test(e.name)).map(e => [e.name, e.startTime])", shown)
    paths = sorted(u.split("/api/v1")[1].split("?")[0] for u, _ in asked)
    assert paths == ["/aggregates/categories", "/aggregates/cells", "/aggregates/hour-weekday", "/hotspots"], paths
    moved = page.evaluate("(w) => window.__labels.find(l => l[1].includes(w))[0]", shown)
    # asked while the week before still showed: play waits 700 ms between weeks (a mutation is seen
    # only after the task that made it, so without asking ahead the requests would start just before)
    assert all(moved - start > 350 for _, start in asked), (asked, moved)


def test_comparison_with_the_same_period_last_year(page: Any, server: str, token: str, shots: Path) -> None:
    page.select_option("#t-window", "4")
    status = wait_updated(page)
    page.check("#t-compare")
    wait_updated(page, status)
    per = page.evaluate("CL.period()")
    ly = page.evaluate("CL.lastYear(CL.period())")
    def total(a: str, b: str) -> int:
        return sum(f["properties"]["count"] for f in
                   api(server, token, f"/aggregates/cells?from={a}&to={b}&cell_m=500")["features"])
    now, then = total(per["from"], per["to"]), total(ly["from"], ly["to"])
    note = page.inner_text("#map-note")
    assert f"This period: {now} incidents" in note and f"): {then}" in note
    changes = [e.split("|")[1] for e in legend_groups(page)["change vs same period last year"]]
    assert changes == ["much fewer", "fewer", "slightly fewer", "slightly more", "more", "much more"]
    diff = sum(r["value"] for r in page.evaluate("CL.map.rows()") if r["layer"] == "change vs last year")
    assert diff == now - then
    snap(page, shots, "dashboard-compare.png", full_page=True)
    page.uncheck("#t-compare")
    wait_updated(page)


def click_first_cell(page: Any) -> dict[str, float]:
    """Move to the centre of the busiest density cell on the map and click there; return its box."""
    pt = page.evaluate("""() => { const gd = document.getElementById('map');
        const cells = CL.map.clickables().filter(c => c.what.title.startsWith('Cell'));
        const n = (c) => Number(c.what.title.split(' with ')[1].split(' ')[0]);
        const best = cells.reduce((a, c) => (n(c) > n(a) ? c : a), cells[0]);
        const xa = gd._fullLayout.xaxis, ya = gd._fullLayout.yaxis;
        const r = gd.querySelector('.nsewdrag').getBoundingClientRect();
        return { x: r.left + xa.l2p(best.lon), y: r.top + ya.l2p(best.lat), box: best.what.box }; }""")
    page.mouse.move(pt["x"], pt["y"])
    page.mouse.click(pt["x"], pt["y"])
    box: dict[str, float] = pt["box"]
    return box


def test_drilldown_from_a_map_click_with_reason_and_near_repeats(page: Any, server: str, token: str,
                                                                 shots: Path) -> None:
    page.select_option("#t-window", "0")
    wait_updated(page)
    box = click_first_cell(page)
    page.wait_for_selector("#drill:not([hidden]) #drill-table tbody tr", timeout=20_000)
    q = "&".join(f"{k}={v}" for k, v in box.items())
    total = api(server, token, f"/drilldown/cell?{q}&limit=1")["total"]
    size = page.evaluate("CL.drill.SIZE")
    assert total > size and f"of {total}" in page.inner_text("#drill-page")
    assert page.locator("#drill-table tbody tr").count() == size
    first = page.inner_text("#drill-table tbody tr:first-child")
    page.click("#drill-next")
    page.wait_for_function("() => document.getElementById('drill-page').textContent"
                           ".startsWith('Incidents ' + (CL.drill.SIZE + 1))")
    assert page.inner_text("#drill-table tbody tr:first-child") != first
    # personal fields: only after a reason, which the audit log keeps
    assert "suspect" not in page.inner_text("#drill-table thead")
    page.click("#drill-personal")
    reason = "Briefing follow-up on burglary series 0412"
    page.fill("#drill-reason-text", reason)
    page.click("#drill-reason button[type=submit]")
    page.wait_for_function("() => document.querySelector('#drill-table thead').textContent.includes('suspect')")
    admin = httpx.post(server + "/api/v1/auth/login",
                       json={"username": "admin", "password": PASSWORDS["admin"]}).json()["access_token"]
    audit = api(server, admin, "/audit?limit=50")
    rows = audit["items"] if isinstance(audit, dict) else audit
    assert any(r.get("event") == "person.read" and r.get("reason") == reason for r in rows)
    page.locator("#drill-table tbody button").first.click()
    page.wait_for_selector("#nr-table:not([hidden])")
    dists = page.evaluate("[...document.querySelectorAll('#nr-table tbody tr')]"
                          ".map(r => Number(r.cells[2].textContent))")
    assert all(0 <= d <= 200 for d in dists)
    snap(page.locator("#drill"), shots, "dashboard-drilldown.png")
    page.click("#drill-close")


def test_viewer_gets_no_personal_fields_button(browser: Any, server: str) -> None:
    ctx, pg, problems = new_page(browser, server)
    sign_in(pg, server, "viewer")
    click_first_cell(pg)
    pg.wait_for_selector("#drill:not([hidden]) #drill-table tbody tr", timeout=20_000)
    assert pg.locator("#drill-personal").is_hidden()
    assert "address" in pg.inner_text("#drill-table thead")
    ctx.close()
    assert problems == []


def test_choropleth_by_area_classified_on_the_server(page: Any, tmp_path: Path, shots: Path) -> None:
    page.select_option("#c-layer", "district")
    page.select_option("#c-scheme", "natural_breaks")
    page.wait_for_function("() => [...document.querySelectorAll('#map-legend > li')].some(g => g.firstChild.textContent"
                           ".startsWith('district: incidents (natural breaks)'))", timeout=30_000)
    group = next(g for g in legend_groups(page) if g.startswith("district: incidents"))
    entries = legend_groups(page)[group]
    assert [e.split("|")[0] for e in entries] == [str(i) for i in range(1, len(entries) + 1)]
    lowers = [float(e.split("|")[1].split(" – ")[0].replace(",", "")) for e in entries]
    assert lowers == sorted(lowers) and len(entries) >= 3
    assert plotly_legend_order(page, group) == [e.split("|")[1] for e in entries]
    # rates per 1,000 from a residents file
    areas = sorted({r["area"] for r in page.evaluate("CL.map.rows()") if r.get("area")})
    pop = tmp_path / "residents.csv"
    pop.write_text("area,population\n" + "".join(f"{a},{1000 + 700 * i}\n" for i, a in enumerate(areas)))
    page.select_option("#c-measure", "smoothed_rate")
    page.wait_for_function("() => document.getElementById('status').textContent.startsWith('Could not') ||"
                           " document.getElementById('status').textContent.startsWith('Updated')")
    page.set_input_files("#c-pop", str(pop))
    page.wait_for_function("() => [...document.querySelectorAll('#map-legend > li')].some(g => g.firstChild.textContent"
                           ".includes('per 1,000 residents'))", timeout=30_000)
    snap(page, shots, "dashboard-choropleth.png", full_page=True)
    page.select_option("#c-layer", "")
    page.wait_for_function("() => ![...document.querySelectorAll('#map-legend > li')]"
                           ".some(g => g.firstChild.textContent.includes('per 1,000'))", timeout=30_000)


def test_every_panel_exports_png_and_csv(page: Any, tmp_path: Path) -> None:
    panels = page.evaluate("[...document.querySelectorAll('main section.card[aria-labelledby]:not([hidden])')]"
                           ".map(s => s.getAttribute('aria-labelledby'))")
    assert {"map-title", "trend-title", "cs-title", "feed-title", "alerts-title"} <= set(panels)
    for sec in panels:
        for kind in ("png", "csv"):
            # Chromium throttles a page that starts more than about ten downloads in a second (no
            # person clicks that fast); a pause between clicks keeps the test to what a reader does.
            page.wait_for_timeout(1_100)
            with page.expect_download(timeout=30_000) as dl:
                page.click(f"section[aria-labelledby={sec}] .export button[data-export={kind}]")
            path = tmp_path / dl.value.suggested_filename
            dl.value.save_as(path)
            data = path.read_bytes()
            if kind == "png":
                assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 1000, sec
            else:
                rows = list(csv.reader(io.StringIO(data.decode())))
                assert len(rows) >= 1 and any(rows), sec
    rows = list(csv.reader(io.StringIO((tmp_path / next(p.name for p in tmp_path.iterdir()
                                                         if "map" in p.name and p.suffix == ".csv")).read_text())))
    assert rows[0] == ["layer", "area", "class", "value", "lon", "lat"] and len(rows) > 10


def test_saved_view_round_trips_through_the_url(page: Any, browser: Any, server: str, shots: Path) -> None:
    page.select_option("#f-category", "property")
    page.select_option("#t-window", "4")
    page.click("#apply")
    wait_updated(page)
    page.fill("#v-name", "Monday briefing")
    page.click("#v-save")
    page.wait_for_selector("#v-status:has-text('Saved')")
    url = page.url
    params = dict(parse_qsl(url.split("#", 1)[1]))
    assert params["view"] == "Monday briefing" and params["category"] == "property" and params["window"] == "4"
    allowed = {"view", "from", "to", "category", "area_col", "area", "source", "week", "window", "compare",
               "choro", "measure", "scheme", "layers"}
    assert set(params) <= allowed  # filters only: never a record or a personal field
    ctx, other, problems = new_page(browser, server)
    sign_in(other, server, "analyst", url=url[len(server):])
    assert other.input_value("#f-category") == "property" and other.input_value("#t-window") == "4"
    assert other.input_value("#v-name") == "Monday briefing"
    assert other.inner_text("#t-label") == page.inner_text("#t-label")
    assert sorted(other.evaluate("document.getElementById('categories').data[0].y")) == \
        sorted(page.evaluate("document.getElementById('categories').data[0].y"))
    ctx.close()
    assert problems == []
    assert "Monday briefing" in page.evaluate("Object.keys(CL.share.views())")


def test_print_layout_for_the_briefing(page: Any, shots: Path, tmp_path: Path) -> None:
    page.emulate_media(media="print")
    try:
        assert page.locator(".export").first.is_hidden() and page.locator("#play").is_hidden()
        assert page.locator("#briefing-title").is_visible()
        snap(page, shots, "dashboard-print.png", full_page=True)
        pdf = page.pdf(path=str(tmp_path / "briefing.pdf"), landscape=True)
        assert pdf[:4] == b"%PDF" and len(pdf) > 20_000
    finally:
        page.emulate_media(media="screen")


def test_usable_at_1024_px(browser: Any, server: str, shots: Path) -> None:
    ctx, pg, problems = new_page(browser, server, width=1024, height=768)
    sign_in(pg, server)
    assert pg.evaluate("document.documentElement.scrollWidth") <= 1024
    box = pg.locator("#map").bounding_box()
    assert box and box["width"] > 700
    snap(pg, shots, "dashboard-1024.png", full_page=True)
    ctx.close()
    assert problems == []


@pytest.mark.skipif(not AXE.exists(), reason="needs axe-core from npm (make install runs "
                    "`npm install --no-save --prefix . axe-core@4` where npm exists)")
def test_axe_core_finds_no_serious_or_critical_violations(browser: Any, server: str, shots: Path) -> None:
    ctx, pg, problems = new_page(browser, server)
    pg.goto(server + "/")
    results = {}
    for view in ("login", "dashboard"):
        if view == "dashboard":
            sign_in(pg, server)
            pg.select_option("#t-window", "4")
            wait_updated(pg)
            click_first_cell(pg)  # the drill-down panel open too
            pg.wait_for_selector("#drill:not([hidden]) #drill-table tbody tr", timeout=20_000)
        pg.evaluate(AXE.read_text() + "\n;0")
        res = pg.evaluate("axe.run(document, { runOnly: { type: 'tag', values: "
                          "['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa'] } })")
        bad = [(v["id"], v["impact"], [n["target"] for n in v["nodes"]][:3]) for v in res["violations"]
               if v["impact"] in ("serious", "critical")]
        results[view] = {"passes": len(res["passes"]),
                         "violations": [(v["id"], v["impact"]) for v in res["violations"]]}
        assert bad == [], f"{view}: {bad}"
    (shots / "axe-results.json").write_text(json.dumps(results, indent=1))
    print("axe-core:", json.dumps(results))
    ctx.close()
    assert problems == []
