"""The Patrol plan panel in headless Chromium: a stored shift plan drawn on the map with unit numbers.

Skips, with the reason, without Chromium or playwright (fixtures of test_browser_dashboard.py).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

import pytest

from crimelens.patrol.plans_table import save_plan
from crimelens.store import connect
from tests.service.conftest import service_settings
from tests.service.test_browser import live_server
from tests.service.test_browser_dashboard import CHROMIUM, new_page, sign_in

pytestmark = [pytest.mark.slow, pytest.mark.service,
              pytest.mark.skipif(not CHROMIUM.exists(), reason="needs Debian's Chromium at /usr/bin/chromium "
                                 "(apt-get install chromium, or make system-deps)")]
playwright_api = pytest.importorskip("playwright.sync_api", reason="needs the playwright Python package")


def _plan() -> dict[str, Any]:
    """Two shifts; the evening has 3 units, each covering one cell (a 0.002° square)."""
    feats: list[dict[str, Any]] = []
    for shift, units in (("day", 2), ("evening", 3)):
        for u in range(1, units + 1):
            lon, lat = -87.70 + 0.01 * u, 41.85 + (0.01 if shift == "evening" else 0.0)
            feats.append({"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
                          "properties": {"kind": "site", "shift": shift, "hours": "x", "unit": u, "cell_id": u}})
            ring = [[lon - 0.001, lat - 0.001], [lon + 0.001, lat - 0.001], [lon + 0.001, lat + 0.001],
                    [lon - 0.001, lat + 0.001], [lon - 0.001, lat - 0.001]]
            feats.append({"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
                          "properties": {"kind": "covered", "shift": shift, "hours": "x", "cell_id": u,
                                         "expected": 0.1}})
    return {"type": "FeatureCollection", "features": feats,
            "plan": {"method": "rl", "day": "2022-06-06", "units": 3, "policy": "patrol-rl@v1",
                     "shifts": [{"name": "day", "start_hour": 7, "end_hour": 19},
                                {"name": "evening", "start_hour": 19, "end_hour": 7}],
                     "harm_prevented_per_shift": [0.5, 0.75]}}


@pytest.fixture(scope="module")
def served(template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    from crimelens.service.app import create_app

    db = tmp_path_factory.mktemp("plans") / "d.duckdb"
    shutil.copy(template_store, db)
    with closing(connect(str(db))) as store:
        plan_id = save_plan(store, _plan())
    for url in live_server(create_app(service_settings(db))):
        yield url, plan_id


def test_panel_draws_the_chosen_shift_with_unit_numbers(served: tuple[str, str]) -> None:
    server, plan_id = served
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=["--no-sandbox", "--disable-gpu"])
        ctx, pg, problems = new_page(b, server)
        sign_in(pg, server)
        pg.wait_for_function("(id) => [...document.querySelectorAll('#pp-plan option')].some(o => o.value === id)",
                             arg=plan_id, timeout=30_000)
        pg.select_option("#pp-plan", plan_id)
        pg.wait_for_function("() => document.querySelectorAll('#pp-table tr').length >= 3", timeout=30_000)
        pg.select_option("#pp-shift", "evening")
        pg.wait_for_function("() => (document.getElementById('map').data || []).some(t => t.legendgroup === "
                             "'patrolplan' && t.mode === 'markers+text' && t.text.length === 3)", timeout=30_000)
        units = pg.evaluate("() => document.getElementById('map').data.find(t => t.legendgroup === 'patrolplan' "
                            "&& t.mode === 'markers+text').text")
        assert units == ["1", "2", "3"]
        cells = pg.evaluate("() => document.getElementById('map').data.find(t => t.legendgroup === 'patrolplan' "
                            "&& t.fill === 'toself').x.filter(v => v === null).length")
        assert cells == 3  # one outline per covered cell of the evening shift
        rows = pg.evaluate("() => [...document.querySelectorAll('#pp-table tr')].slice(1).map(r => "
                           "[...r.cells].map(c => c.textContent))")
        assert [r[0] for r in rows] == ["day", "evening"] and [r[2] for r in rows] == ["2", "3"]
        pg.select_option("#pp-shift", "day")
        pg.wait_for_function("() => document.getElementById('map').data.some(t => t.legendgroup === 'patrolplan' "
                             "&& t.mode === 'markers+text' && t.text.length === 2)", timeout=30_000)
        ctx.close()
        b.close()
        assert problems == [], problems[:5]
