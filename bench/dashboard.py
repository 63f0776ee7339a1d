"""Dashboard timings in headless Chromium: first paint after sign-in and time-slider steps.

    nice -n 19 python bench/dashboard.py [--incidents 2000000] [--steps 6] [--db PATH]

The store is built once (the synthetic city of bench/service.py) and reused when ``--db``
exists; its basemap is rendered beside it. The service runs in this process (uvicorn in a
thread, the rollup warmed first, as ``crimelens serve`` does); Chromium signs in and the bench
times:

* **first paint**: from pressing "Sign in" to the status line saying "Updated" (map with tiles,
  layers and every chart and table drawn; caches cold);
* **slider step**: from moving the 1-week slider to "Updated" again (map, charts, CompStat);
  "cold" steps are weeks not seen before, "warm" the same weeks again. Also printed per step: the
  same interval timed inside the page (no Playwright round trips), the time to the last byte of
  the step's API answers (the rest is the browser drawing), each cold step's requests (start and
  last byte, ms after the move) and the time inside Plotly.react per chart.

The baseline, in the same process: the store queries a step needs (cells, hour × weekday,
categories for that week) run directly on DuckDB, so the ratio says what the service and the
browser add on top of the database.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CHROMIUM = "/usr/bin/chromium"
PASSWORD = "dashboard bench passphrase 7"


def _service_bench() -> Any:
    spec = importlib.util.spec_from_file_location("bench_service", HERE / "service.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def floor_steps(db: Path, steps: int) -> tuple[list[str], list[float]]:
    """The weeks the bench steps through, and the queries each step needs run straight on DuckDB
    (before the service opens the file: one writing process per DuckDB store)."""
    from crimelens.filters import IncidentFilter
    from crimelens.store.duckdb import DuckDBStore

    store = DuckDBStore(str(db), read_only=True)
    try:
        weeks = [str(w)[:10] for w in store.execute(
            "SELECT DISTINCT CAST(date_trunc('week', occurred_at) AS DATE) AS w FROM incidents ORDER BY 1", [])["w"]]
        picks = [weeks[len(weeks) - 3 - 3 * i] for i in range(steps)]
        took = []
        for week in picks:
            start = datetime.fromisoformat(week)
            flt = IncidentFilter(start=start, end=start + timedelta(days=7))
            t = time.perf_counter()
            store.counts(["crs", "cell:500"], flt)
            store.counts(["hour", "weekday"], flt)
            store.counts(["category"], flt)
            took.append(time.perf_counter() - t)
        return picks, took
    finally:
        store.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=2_000_000)
    ap.add_argument("--steps", type=int, default=6)
    ap.add_argument("--db", type=Path, default=None)
    a = ap.parse_args()
    db = a.db or HERE / "data" / f"dashboard_{a.incidents}.duckdb"
    db.parent.mkdir(parents=True, exist_ok=True)
    if not db.exists():
        _service_bench().build_store(db, a.incidents)
    tiles = Path(f"{db}.basemap.mbtiles")
    from crimelens.service.demo import build_basemap

    if not tiles.exists():
        build_basemap(db, tiles, zooms=(11, 12, 13))
    picks, floors = floor_steps(db, a.steps)
    from pydantic import SecretStr

    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime
    from crimelens.settings import Settings

    settings = Settings(db=str(db), pseudonym_key=SecretStr("bench-pseudonym-key-0123456789"), basemap=tiles,
                        rate_search_per_minute=100_000)
    rt = Runtime(settings)
    acc = Accounts(rt)
    if acc.get("dashbench") is None:
        acc.create("dashbench", Role.analyst, PASSWORD)
    rt.close()

    import uvicorn
    from playwright.sync_api import sync_playwright

    from crimelens.service.app import create_app
    sys.path.insert(0, str(HERE.parent))
    from tests.service.test_security import free_port

    app = create_app(settings)
    t = time.perf_counter()
    app.state.svc.rt.warm()
    warm_s = time.perf_counter() - t
    # then as `crimelens serve` does: the start-up heap frozen (where the tree under test has
    # service/heap.py) and the hot spot cell index built in the background
    try:
        from crimelens.service import heap
    except ImportError:
        out_heap = "absent"
    else:
        out_heap = f"{heap.settle()} objects frozen"
    from crimelens.service import cellindex
    cellindex.ready(app.state.svc.rt, app.state.svc.rt.settings.hotspot_cell_m)
    port = free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    url = f"http://127.0.0.1:{port}"
    out: dict[str, object] = {"incidents": a.incidents, "rollup_warm_s": round(warm_s, 2), "heap": out_heap}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--disable-gpu"])
        pg = b.new_page(viewport={"width": 1440, "height": 1000})
        pg.goto(url + "/")
        out["login_fcp_ms"] = round(pg.evaluate(
            "performance.getEntriesByName('first-contentful-paint').map(e => e.startTime)[0] || 0"))
        pg.fill("#username", "dashbench")
        pg.fill("#password", PASSWORD)

        def until_updated(n: int) -> int:
            pg.wait_for_function("(n) => (CL.state.updates || 0) > n || document.getElementById('status')"
                                 ".textContent.startsWith('Could not')", arg=n, timeout=600_000)
            status = str(pg.evaluate("document.getElementById('status').textContent"))
            if status.startswith("Could not"):
                sys.exit(f"dashboard.py: the page says {status!r}")
            return int(pg.evaluate("CL.state.updates"))

        def fetches() -> dict[str, int]:
            """The slowest API calls since the last call (route: ms, request start to last byte)."""
            got = pg.evaluate("performance.getEntriesByType('resource').filter(e => e.name.includes('/api/'))"
                              ".map(e => [new URL(e.name).pathname, e.duration])")
            pg.evaluate("performance.clearResourceTimings()")
            slow: dict[str, int] = {}
            for name, ms in got:
                slow[name] = max(slow.get(name, 0), round(ms))
            return dict(sorted(slow.items(), key=lambda kv: -kv[1])[:6])

        # time spent inside Plotly.react per chart (the browser's drawing, apart from waiting on the API)
        pg.evaluate("""() => { const react = Plotly.react; window.__plotMs = {};
            Plotly.react = async function (gd, ...rest) {
              const t = performance.now(); const out = await react.call(this, gd, ...rest);
              const id = typeof gd === 'string' ? gd : gd.id;
              window.__plotMs[id] = (window.__plotMs[id] || []).concat([performance.now() - t]);
              return out; }; }""")

        def plot_ms() -> dict[str, int]:
            """Median ms inside Plotly.react per chart since the last call."""
            got: dict[str, list[float]] = pg.evaluate(
                "() => { const m = window.__plotMs; window.__plotMs = {}; return m; }")
            return {k: round(statistics.median(v)) for k, v in sorted(got.items())}

        t = time.perf_counter()
        pg.click("#login-form button[type=submit]")
        done = until_updated(0)
        out["first_paint_s"] = round(time.perf_counter() - t, 3)
        out["first_paint_slowest_fetches_ms"] = fetches()
        out["first_paint_plotly_ms"] = plot_ms()
        t = time.perf_counter()
        pg.select_option("#t-window", "1")
        done = until_updated(done)
        out["window_on_s"] = round(time.perf_counter() - t, 3)
        weeks = pg.evaluate("CL.state.weeks")
        index = [weeks.index(w) for w in picks]

        waits: list[float] = []  # per step: ms from the move to the last API byte (0: no API call)
        in_page: list[float] = []  # per step: ms from the move to "Updated", timed in the page
        per_step: list[dict[str, list[int]]] = []  # per step: API route -> [start, last byte] ms after the move

        def steps() -> list[float]:
            nonlocal done
            took = []
            for i in index:
                t0 = time.perf_counter()
                pg.evaluate("(v) => { const s = document.getElementById('t-week'); s.value = v;"
                            " window.__t0 = performance.now(); s.dispatchEvent(new Event('change')); }", str(i))
                done = until_updated(done)
                took.append(time.perf_counter() - t0)
                page, last, each = pg.evaluate("""() => { const t0 = window.__t0; const es = performance
                    .getEntriesByType('resource').filter(e => e.startTime >= t0 && e.name.includes('/api/'));
                    const end = es.length ? Math.max(...es.map(e => e.responseEnd)) - t0 : 0;
                    const each = es.map(e => [new URL(e.name).pathname, Math.round(e.startTime - t0),
                                              Math.round(e.responseEnd - t0)]);
                    return [(CL.state.updatedAt || t0) - t0, end, each]; }""")  # 0: a page that does not record it
                in_page.append(page)
                waits.append(last)
                per_step.append({name.rsplit("/", 1)[-1]: [start, end] for name, start, end in each})
            return took

        fetches()
        plot_ms()
        cold = steps()
        out["cold_steps_slowest_fetches_ms"] = fetches()
        out["cold_steps_plotly_p50_ms"] = plot_ms()
        out["cold_steps_in_page_ms"] = [round(x) for x in in_page]
        out["cold_steps_last_api_byte_ms"] = [round(x) for x in waits]
        out["cold_steps_fetch_start_end_ms"] = list(per_step)
        per_step.clear()
        in_page.clear()
        warm = steps()
        out["warm_steps_in_page_ms"] = [round(x) for x in in_page]
        out["warm_steps_slowest_fetches_ms"] = fetches()
        out["warm_steps_plotly_p50_ms"] = plot_ms()
        pg.screenshot(path=str(db.parent / "dashboard-bench.png"))
        b.close()
    srv.should_exit = True
    med = statistics.median
    out.update({"slider_step_cold_ms": [round(x * 1e3) for x in cold],
                "slider_step_warm_ms": [round(x * 1e3) for x in warm],
                "slider_step_cold_p50_ms": round(med(cold) * 1e3), "slider_step_warm_p50_ms": round(med(warm) * 1e3),
                "floor_direct_queries_p50_ms": round(med(floors) * 1e3, 1),
                "cold_step_over_floor": round(med(cold) / med(floors), 1)})
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
