"""Operations costs (issue 17): the /metrics middleware on request latency, and the encrypted
DuckDB store against the plain one. Both comparisons run in one process, on one machine, with the
two variants interleaved round by round so drift in the machine's load hits both alike.

    python bench/ops.py [--incidents 200000] [--requests 400] [--rounds 6]

1. **Metrics overhead.** Two apps on copies of one store, identical but for
   ``CRIMELENS_METRICS_ENABLED`` (the middleware counting every request by route template and
   status, plus its histogram). Requests go through the ASGI interface in process (no sockets, so
   the middleware's share is not hidden under network noise): the anonymous health route (the
   cheapest, the worst case for a relative cost) and an authenticated, cached aggregate. Reports
   p50/p95 of each and the p95 ratio with/without.
2. **Encryption at rest.** The same synthetic city loaded into a plain and an encrypted store
   (one atomic load each), then the same set of count queries (``store.counts``) and a full read
   of the incidents. Reports seconds and the encrypted/plain ratio. The cipher is OpenSSL when
   DuckDB's ``httpfs`` extension is installed, else DuckDB's built-in one (``mbedtls-unsafe``):
   the output says which.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

KEY = "bench-pseudonym-key-0123456789"
DB_KEY = "bench store encryption key 0123456789"
PASSWORD = "violet operations passphrase 7"


def load(db: Path, incidents: Any, key: Any = None) -> float:
    """Load ``incidents`` (an Arrow table) into a new store at ``db`` in one batch; seconds taken."""
    from crimelens.schema import PERSONAL_SCHEMA, QUARANTINE_SCHEMA
    from crimelens.store.base import IngestReport
    from crimelens.store.duckdb import DuckDBStore

    t = time.perf_counter()
    store = DuckDBStore(db, key=key)
    batch = uuid.uuid4().hex
    store.set_source_crs("synthetic", "EPSG:32616")
    with store.batch("synthetic", "bench", batch, batch) as w:
        w.add(incidents, PERSONAL_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
        w.commit(IngestReport(source="synthetic", file="bench", sha256=batch, batch_id=batch,
                              read=incidents.num_rows))
    store.close()  # the checkpoint (the encrypted blocks written) is part of the load
    return time.perf_counter() - t


def queries(db: Path, key: Any) -> dict[str, float]:
    """Seconds of the count queries and of a full read, on a fresh read-only open."""
    from crimelens.filters import IncidentFilter
    from crimelens.store.duckdb import DuckDBStore

    out: dict[str, float] = {}
    t = time.perf_counter()
    store = DuckDBStore(db, read_only=True, key=key)
    out["open"] = time.perf_counter() - t
    try:
        flt = IncidentFilter(start=datetime(2023, 3, 1), end=datetime(2024, 3, 1))
        t = time.perf_counter()
        for by in (["category"], ["hour", "weekday"], ["day", "category"], ["cell_100m"]):
            try:
                store.counts(by, flt)
            except Exception:  # noqa: BLE001 -- a grouping this store lacks is skipped in both variants
                continue
        out["counts"] = time.perf_counter() - t
        t = time.perf_counter()
        store.incidents()
        out["full_read"] = time.perf_counter() - t
    finally:
        store.close()
    return out


def encryption(n: int, rounds: int, work: Path) -> list[str]:
    """The encrypted store against the plain one; Markdown lines."""
    import duckdb

    from crimelens.schema import to_arrow
    from crimelens.store.keys import StoreKey
    from crimelens.synth import CityConfig, generate_city

    try:
        duckdb.connect().execute("LOAD httpfs")
        cipher = "openssl (httpfs)"
    except duckdb.Error:
        os.environ["CRIMELENS_DB_CRYPTO"] = "mbedtls-unsafe"
        cipher = "mbedtls-unsafe (no httpfs extension here)"
    table = to_arrow(generate_city(CityConfig(n_incidents=n, days=730, seed=11)).incidents)
    key = StoreKey(DB_KEY, "bench")
    res: dict[str, dict[str, list[float]]] = {"plain": {}, "encrypted": {}}
    sizes: dict[str, int] = {}
    for r in range(rounds):
        for name, k in (("plain", None), ("encrypted", key)) if r % 2 == 0 else (("encrypted", key), ("plain", None)):
            db = work / f"{name}-{r}.duckdb"
            res[name].setdefault("ingest", []).append(load(db, table, k))
            for q, s in queries(db, k).items():
                res[name].setdefault(q, []).append(s)
            sizes[name] = db.stat().st_size
            db.unlink()
    lines = [f"encryption at rest: {n:,} incidents, {rounds} rounds (median), cipher {cipher}", "",
             "| step | plain s | encrypted s | encrypted / plain |", "| --- | ---: | ---: | ---: |"]
    for step in res["plain"]:
        p, e = statistics.median(res["plain"][step]), statistics.median(res["encrypted"][step])
        lines.append(f"| {step} | {p:.3f} | {e:.3f} | {e / p:.2f} |")
    lines.append(f"| file size MB | {sizes['plain'] / 1e6:.1f} | {sizes['encrypted'] / 1e6:.1f} | "
                 f"{sizes['encrypted'] / sizes['plain']:.2f} |")
    return lines


def pct(xs: list[float]) -> tuple[float, float]:
    s = sorted(xs)
    return statistics.median(s) * 1e3, s[int(0.95 * (len(s) - 1))] * 1e3


async def _drive(app: Any, path: str, headers: dict[str, str], n: int) -> list[float]:
    import httpx

    out = []
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
        for _ in range(n):
            t = time.perf_counter()
            r = await c.get(path, headers=headers)
            out.append(time.perf_counter() - t)
            if r.status_code != 200:
                raise SystemExit(f"{path}: HTTP {r.status_code} {r.text[:200]}")
    return out


def _app(db: Path, enabled: bool) -> Any:
    from crimelens.service.app import create_app
    from crimelens.settings import Settings

    os.environ["CRIMELENS_METRICS_ENABLED"] = "true" if enabled else "false"
    os.environ["CRIMELENS_METRICS_TOKEN"] = "bench-metrics-token-0123456789"
    settings = Settings(db=str(db), pseudonym_key=KEY, argon2_time_cost=1, argon2_memory_kib=1024,  # type: ignore[arg-type]
                        rate_login_per_minute=100_000, rate_search_per_minute=10_000_000, upload_dir=db.parent / "up")
    app = create_app(settings)
    app.state.svc.rt.warm()
    return app


def middleware_cost(calls: int, rounds: int) -> list[str]:
    """Microseconds the middleware adds to one request: a bare ASGI app answering at once, called
    directly with and without :class:`MetricsMiddleware` (no client, no sockets: only the
    middleware's own work differs); Markdown lines."""
    from crimelens.service.metrics import Metrics, MetricsMiddleware

    async def bare(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    wrapped = MetricsMiddleware(bare, Metrics())
    scope = {"type": "http", "method": "GET", "path": "/api/v1/health", "headers": [], "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b""}

    async def send(_: Any) -> None:
        return None

    async def loop(app: Any) -> float:
        t = time.perf_counter()
        for _ in range(calls):
            await app(dict(scope), receive, send)
        return (time.perf_counter() - t) / calls

    got: dict[str, list[float]] = {"bare": [], "wrapped": []}
    for r in range(rounds):
        order = (("bare", bare), ("wrapped", wrapped))
        for name, app in order if r % 2 == 0 else order[::-1]:
            got[name].append(asyncio.run(loop(app)))
    b, w = min(got["bare"]), min(got["wrapped"])
    return [f"middleware alone: {calls:,} calls x {rounds} rounds, best round: bare {b * 1e6:.1f} us, "
            f"with the middleware {w * 1e6:.1f} us per request, so **{(w - b) * 1e6:.1f} us added**"]


def overhead(n: int, requests: int, rounds: int, work: Path) -> list[str]:
    """p95 latency with and without the metrics middleware; Markdown lines."""
    from crimelens.schema import to_arrow
    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime
    from crimelens.settings import Settings
    from crimelens.synth import CityConfig, generate_city

    base = work / "svc.duckdb"
    load(base, to_arrow(generate_city(CityConfig(n_incidents=n, days=730, seed=5)).incidents))
    rt = Runtime(Settings(db=str(base), pseudonym_key=KEY, argon2_time_cost=1, argon2_memory_kib=1024))  # type: ignore[arg-type]
    Accounts(rt).create("runner", Role.analyst, PASSWORD)
    rt.close()
    apps: dict[str, Any] = {}
    for name, enabled in (("with", True), ("without", False)):
        (work / name).mkdir()
        shutil.copy(base, work / name / "svc.duckdb")
        apps[name] = _app(work / name / "svc.duckdb", enabled)
    assert hasattr(apps["with"].state, "metrics") and apps["without"].state.metrics_settings.enabled is False

    async def token(app: Any) -> dict[str, str]:
        import httpx

        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://bench") as c:
            r = await c.post("/api/v1/auth/login", json={"username": "runner", "password": PASSWORD})
            return {"Authorization": f"Bearer {r.json()['access_token']}"}

    heads = {name: asyncio.run(token(app)) for name, app in apps.items()}
    routes: dict[str, Callable[[str], dict[str, str]]] = {
        "/api/v1/health": lambda _: {}, "/api/v1/aggregates/categories": lambda name: heads[name]}
    lines = [f"/metrics middleware: {requests} requests x {rounds} rounds per variant and route, in-process ASGI", "",
             "| route | p50 without ms | p50 with ms | p95 without ms | p95 with ms | p95 with / without "
             "| median of per-round p95 ratios |", "| --- | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for path, head in routes.items():
        got: dict[str, list[float]] = {"with": [], "without": []}
        for name in apps:
            asyncio.run(_drive(apps[name], path, head(name), 50))  # warm-up: caches, first-call costs
        ratios = []  # each round's pair ran back to back: a burst of load elsewhere hits one pair only
        for r in range(rounds):
            pair: dict[str, float] = {}
            for name in ("with", "without") if r % 2 == 0 else ("without", "with"):
                times = asyncio.run(_drive(apps[name], path, head(name), requests))
                got[name] += times
                pair[name] = pct(times)[1]
            ratios.append(pair["with"] / pair["without"])
        (p50w, p95w), (p50o, p95o) = pct(got["with"]), pct(got["without"])
        lines.append(f"| {path} | {p50o:.3f} | {p50w:.3f} | {p95o:.3f} | {p95w:.3f} | {p95w / p95o:.3f} "
                     f"| {statistics.median(ratios):.3f} |")
    for app in apps.values():
        app.state.svc.rt.close()
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=200_000)
    ap.add_argument("--requests", type=int, default=400)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--skip", choices=("metrics", "encryption"), action="append", default=[])
    a = ap.parse_args()
    print(f"machine: {platform.node()} {platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, {datetime.now().isoformat(timespec='minutes')}, "
          f"load average {os.getloadavg()[0]:.1f} at start")
    print(f"command: python bench/ops.py {' '.join(sys.argv[1:])}".rstrip())
    with tempfile.TemporaryDirectory(prefix="crimelens-ops-") as d:
        if "metrics" not in a.skip:
            print("\n".join(["", *middleware_cost(20_000, 8)]))
            print("\n".join(["", *overhead(min(a.incidents, 100_000), a.requests, a.rounds, Path(d))]))
        if "encryption" not in a.skip:
            print("\n".join(["", *encryption(a.incidents, max(2, a.rounds // 2), Path(d))]))


if __name__ == "__main__":
    main()
