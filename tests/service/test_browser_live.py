"""The dashboard's "Live" panel in headless Chromium: events reach an open page without a reload.

An ingest through the API publishes its new incidents on the SSE hub; the panel (static/live.js)
lists them within a bound. The test then cuts the page's stream, loads more rows while it is
down, restores it and asserts those rows arrive after the reconnect (Last-Event-ID replay), each
event shown once. Screenshot: test output (and docs/img/dashboard-live.png with
``CRIMELENS_DOCS_IMG=1``). Skips, with the reason, without Chromium or playwright.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CHICAGO_HEADER
from tests.service.conftest import PASSWORDS, chicago_rows, pg_admin, pg_url, service_settings, write_rows
from tests.service.test_browser import live_server
from tests.service.test_browser_dashboard import CHROMIUM, snap
from tests.service.test_pg_workers import _env, serving
from tests.stream.conftest import JetStream, bodies, jetstream, socrata_record

pytestmark = [pytest.mark.slow, pytest.mark.service,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                 "(apt-get install chromium, or make system-deps)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")
BOUND_S = 15.0
__all__ = ["jetstream"]  # the NATS stream fixture of tests/stream


@pytest.fixture(scope="module")
def server(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from crimelens.service.app import create_app

    db = tmp_path_factory.mktemp("live") / "l.duckdb"
    shutil.copy(template_store, db)
    yield from live_server(create_app(service_settings(db)))


def _ingest(server: str, token: str, path: Path) -> None:
    h = {"Authorization": f"Bearer {token}"}
    r = httpx.post(server + "/api/v1/ingest", headers=h, files={"file": (path.name, path.read_bytes(), "text/csv")},
                   data={"preset": "chicago"})
    assert r.status_code == 202, r.text
    job = r.json()["id"]
    for _ in range(600):
        status = httpx.get(f"{server}/api/v1/jobs/{job}", headers=h).json()["status"]
        if status in ("done", "failed"):
            assert status == "done"
            return
        time.sleep(0.1)
    raise AssertionError("ingest job did not finish")


def _wait(page: Any, expr: str, timeout_s: float) -> None:
    """Poll ``expr`` in the page (the CSP forbids wait_for_function's eval) until it is true."""
    end = time.perf_counter() + timeout_s
    while not page.evaluate(expr):
        assert time.perf_counter() < end, f"not true within {timeout_s} s: {expr}"
        time.sleep(0.05)


def _signed_in(p: Any, server: str) -> tuple[Any, Any]:
    """Chromium with the dashboard open, signed in as the analyst, its live stream connected."""
    browser = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=[
        "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
    page = browser.new_page(viewport={"width": 1440, "height": 1000})
    page.goto(server + "/")
    page.fill("#username", "analyst")
    page.fill("#password", PASSWORDS["analyst"])
    page.press("#password", "Enter")
    _wait(page, "() => window.CL.live && window.CL.live.connected()", 30)
    return browser, page


def _incident_rows(page: Any) -> int:
    return int(page.locator("#live-list li[data-kind='incident']").count())


def test_live_panel_receives_events_and_catches_up_after_reconnect(server: str, tmp_path: Path) -> None:
    token = httpx.post(server + "/api/v1/auth/login",
                       json={"username": "admin", "password": PASSWORDS["admin"]}).json()["access_token"]
    with playwright_api.sync_playwright() as p:
        browser, page = _signed_in(p, server)
        assert _incident_rows(page) == 0
        # 1. an ingest through the API reaches the open page within the bound
        first = write_rows(tmp_path / "a.csv", chicago_rows(4, seed=3, start_id=98_000_001, days=1), CHICAGO_HEADER)
        t0 = time.perf_counter()
        _ingest(server, token, first)
        _wait(page, "document.querySelectorAll(\"#live-list li[data-kind='incident']\").length >= 4", BOUND_S)
        print(f"ingest -> live panel {time.perf_counter() - t0:.2f} s")
        assert _incident_rows(page) == 4
        id_before = page.evaluate("window.CL.live.lastId()")
        # 2. cut the stream, load while it is down, restore it: the missed events arrive, once each
        page.evaluate("window.CL.live.drop(true)")
        _wait(page, "!window.CL.live.connected()", 10)
        second = write_rows(tmp_path / "b.csv", chicago_rows(3, seed=4, start_id=98_100_001, days=1), CHICAGO_HEADER)
        _ingest(server, token, second)
        time.sleep(0.5)
        assert _incident_rows(page) == 4, "events reached the page while its stream was cut"
        page.evaluate("window.CL.live.resume()")
        _wait(page, "document.querySelectorAll(\"#live-list li[data-kind='incident']\").length >= 7", BOUND_S)
        time.sleep(0.5)
        assert _incident_rows(page) == 7  # replayed after the reconnect, none shown twice
        assert int(page.evaluate("window.CL.live.lastId()")) > int(id_before)
        assert page.evaluate("window.CL.live.points().length") >= 1  # offered to the map as a layer
        snap(page.locator("#live"), tmp_path, "dashboard-live.png")
        browser.close()


def test_live_batches_redraw_the_charts_at_most_once_per_interval(server: str, tmp_path: Path) -> None:
    """Every batch reaches the feed and the Live panel at once; the charts, map and CompStat are
    redrawn for the first batch after a quiet spell, then at most once per ``CL.liveRedrawMs``."""
    every_ms = 10_000
    token = httpx.post(server + "/api/v1/auth/login",
                       json={"username": "admin", "password": PASSWORDS["admin"]}).json()["access_token"]
    with playwright_api.sync_playwright() as p:
        browser, page = _signed_in(p, server)
        _wait(page, "() => document.getElementById('status').textContent.startsWith('Updated')", 60)
        page.evaluate(f"() => {{ window.CL.liveRedrawMs = {every_ms}; }}")
        rows = _incident_rows(page)
        updates = int(page.evaluate("() => window.CL.state.updates"))
        _ingest(server, token, write_rows(tmp_path / "r1.csv", chicago_rows(2, seed=11, start_id=97_000_001, days=1),
                                          CHICAGO_HEADER))
        _wait(page, "() => window.CL.state.liveRedraws === 1 && window.CL.state.updates > " + str(updates), BOUND_S)
        t_first = time.perf_counter()
        for n, start in ((3, 97_100_001), (4, 97_200_001)):
            _ingest(server, token, write_rows(tmp_path / f"r{start}.csv",
                                              chicago_rows(n, seed=start % 97, start_id=start, days=1), CHICAGO_HEADER))
        _wait(page, f"() => document.querySelectorAll(\"#live-list li[data-kind='incident']\").length >= {rows + 9}",
              BOUND_S)
        assert page.locator("#feed li:has-text('97200001')").count() == 1  # the feed list is immediate too
        held_s = time.perf_counter() - t_first
        assert held_s < every_ms / 1000, f"the two later loads took {held_s:.1f} s; cannot check the coalescing"
        assert page.evaluate("() => window.CL.state.liveRedraws") == 1, "a later batch redrew before the interval"
        assert "7 new incidents" in page.inner_text("#live-cue")
        _wait(page, "() => window.CL.state.liveRedraws === 2", every_ms / 1000 + BOUND_S)
        _wait(page, "() => document.getElementById('live-cue').textContent.startsWith('updated')", BOUND_S)
        assert page.inner_text("#live-cue").endswith("· 7 new incidents")  # both later batches in one redraw
        print(f"first redraw at once; batches 2+3 drawn together after {time.perf_counter() - t_first:.1f} s")
        browser.close()


def test_a_separate_stream_process_reaches_the_live_panel(pg_template: Any, jetstream: JetStream,
                                                          tmp_path: Path) -> None:
    """PostgreSQL: a ``crimelens stream`` process (not the service) loads from NATS; its NOTIFY
    reaches the service, whose SSE hub puts the rows in the open page's Live panel."""
    pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")
    name = f"live_b_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template.database}")
    jetstream.publish(bodies([socrata_record(i) for i in range(30)]))  # consumed only once the page is open
    try:
        with serving(pg_url(name), tmp_path, 1) as base, playwright_api.sync_playwright() as p:
            browser, page = _signed_in(p, base)
            t0 = time.perf_counter()
            out = subprocess.run(
                [sys.executable, "-m", "crimelens.cli.app", "stream", "--url", jetstream.url, "--stream",
                 jetstream.name, "--subject", jetstream.subject, "--preset", "chicago_socrata", "--db", pg_url(name),
                 "--once", "--max-wait", "0.3"], env=_env(tmp_path), capture_output=True, text=True, timeout=120)
            assert out.returncode == 0, out.stderr
            _wait(page, "() => document.querySelectorAll(\"#live-list li[data-kind='incident']\").length >= 30",
                  BOUND_S)
            print(f"separate stream process -> live panel {time.perf_counter() - t0:.2f} s")
            time.sleep(2.5)  # past a poll of the files log: a duplicate would have arrived by now
            assert _incident_rows(page) == 30
            browser.close()
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
