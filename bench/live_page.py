"""The browser end of bench/live.py: a service on PostgreSQL and a signed-in dashboard page.

:func:`service` makes a fresh PostgreSQL database (the store the bench's consumer writes), an
account, and runs ``crimelens serve`` on it in its own process, so the consumer is a separate
process and its loads reach the service through NOTIFY (``crimelens.service.batchfeed``).
:func:`page` (run in its own process) opens the dashboard in headless Chromium, signs in, and
subscribes to the page's one SSE reader (``CL.events``, the reader the dashboard's panels use),
noting ``Date.now()`` and the batch's incident ids for every ``incidents`` event; at the end it
writes them to a JSON file, and how many full dashboard redraws the page made meanwhile (live
incidents redraw at most once per ``CL.liveRedrawMs``, default 12 s; ``CRIMELENS_BENCH_REDRAW_MS=0``
gives the page a redraw per batch, as before). :func:`browser_latency` maps them back to publish times.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

PG_SERVER = os.environ.get("CRIMELENS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
CHROMIUM = "/usr/bin/chromium"
USER, PASSWORD = "livepage", "amber lantern quay 19"
KEY = "bench-pseudonym-key-0123456789ab"
_SUBSCRIBE = """() => { window.__arrivals = [];
  CL.events.subscribe((ev, d) => {
    if (ev === "incidents") window.__arrivals.push([Date.now(), d.incident_ids || []]); });
  return true; }"""


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=5) as con:
        con.execute(sql)


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CRIMELENS_PSEUDONYM_KEY": KEY,
            "CRIMELENS_ARGON2_TIME_COST": "1", "CRIMELENS_ARGON2_MEMORY_KIB": "1024",
            "CRIMELENS_RATE_SEARCH_PER_MINUTE": "100000"}


@contextmanager
def service(folder: Path) -> Iterator[tuple[str, str]]:
    """A fresh database and ``crimelens serve`` on it: yields (store URL, service base URL)."""
    from pydantic import SecretStr

    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime
    from crimelens.settings import Settings

    name = f"bench_live_{uuid.uuid4().hex[:10]}"
    _admin(f"CREATE DATABASE {name}")
    url = PG_SERVER.rsplit("/", 1)[0] + "/" + name
    proc = None
    try:
        rt = Runtime(Settings(db=url, pseudonym_key=SecretStr(KEY), argon2_time_cost=1, argon2_memory_kib=1024))
        Accounts(rt).create(USER, Role.analyst, PASSWORD)
        rt.close()
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        log = (folder / "serve.log").open("w")
        proc = subprocess.Popen([sys.executable, "-m", "crimelens.cli.app", "serve", "--db", url, "--port", str(port)],
                                env=_env(), stdout=log, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        _wait_up(base, proc)
        yield url, base
    finally:
        if proc is not None:
            proc.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(20)
            if proc.poll() is None:
                proc.kill()
        _admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _wait_up(base: str, proc: subprocess.Popen[bytes]) -> None:
    import httpx

    end = time.time() + 60
    while time.time() < end:
        try:
            if httpx.get(base + "/api/v1/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if proc.poll() is not None:
            raise RuntimeError(f"crimelens serve exited with {proc.returncode}")
        time.sleep(0.2)
    raise RuntimeError("crimelens serve did not answer within 60 s")


def page(base: str, out: str, ready: Any, stop: Any) -> None:
    """Open the dashboard signed in, note incidents events until ``stop``, write them to ``out``."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update"])
        pg = browser.new_page(viewport={"width": 1440, "height": 1000})
        pg.goto(base + "/")
        pg.fill("#username", USER)
        pg.fill("#password", PASSWORD)
        pg.press("#password", "Enter")
        end = time.time() + 60
        while not pg.evaluate("() => !!(window.CL && CL.events.connected())"):
            if time.time() > end:
                raise RuntimeError("the page's event stream did not connect")
            time.sleep(0.1)
        redraw_ms = os.environ.get("CRIMELENS_BENCH_REDRAW_MS")
        if redraw_ms is not None:  # 0: a full redraw per batch, as before the coalescing
            pg.evaluate(f"() => {{ window.CL.liveRedrawMs = {int(redraw_ms)}; }}")
        pg.evaluate(_SUBSCRIBE)
        start = int(pg.evaluate("() => CL.state.updates || 0"))
        ready.set()
        while not stop.wait(0.5):
            pass
        arrivals = pg.evaluate("() => window.__arrivals")
        Path(out).write_text(json.dumps(arrivals))
        Path(out + ".redraws").write_text(str(int(pg.evaluate("() => CL.state.updates || 0")) - start))
        browser.close()


def browser_latency(arrivals: list[list[Any]], published: dict[str, int]) -> tuple[list[float], int]:
    """``published`` (id → time ns: its publish, or its commit) → page arrival (ms) of every event
    seen in the page (first arrival), and how many of them never arrived."""
    seen: dict[str, float] = {}
    for at_ms, ids in arrivals:
        for i in ids:
            seen.setdefault(str(i), float(at_ms))
    lat = [seen[i] - ns / 1e6 for i, ns in published.items() if i in seen]
    return lat, sum(1 for i in published if i not in seen)
