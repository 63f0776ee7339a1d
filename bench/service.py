"""Service latency: p50/p95 of the aggregate and hot spot endpoints with concurrent clients,
against the same DuckDB queries run directly (the floor), on one large synthetic store.

    python bench/service.py [--incidents 2000000] [--clients 32] [--requests 20] [--db PATH]
    python bench/service.py --pg postgresql://postgres@127.0.0.1/postgres [--workers 2] ...

``--pg URL`` runs the same method on PostgreSQL instead (the store built once in the schema
``bench_<incidents>`` and reused; the floor on one connection per client thread; the service
with ``--workers`` processes against the one database).

The store is built once (synthetic city → canonical table → one atomic load) and reused when
``--db`` exists. The floor runs first (the service then owns the file: one writer per DuckDB
store), then the service runs in its own process and an async client fires ``--clients``
concurrent request loops. "cold" requests use a different date window each time (no cache);
"warm" repeat one filter (served from the per-generation result cache).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import date, timedelta
from pathlib import Path

KEY = "bench-pseudonym-key-0123456789"
PASSWORD = "latency runner passphrase 1"


def build_store(db: Path | str, n: int) -> None:
    import pyarrow as pa

    from crimelens.schema import PERSONAL_SCHEMA, QUARANTINE_SCHEMA, to_arrow
    from crimelens.store import connect
    from crimelens.store.base import IngestReport
    from crimelens.synth import CityConfig, generate_city

    t = time.perf_counter()
    city = generate_city(CityConfig(n_incidents=n, days=730, seed=11))
    table = to_arrow(city.incidents)
    store = connect(str(db))
    batch = uuid.uuid4().hex
    crs = str(city.incidents["crs"].dropna().iloc[0])
    store.set_source_crs("synthetic", crs)
    with store.batch("synthetic", "bench", batch, batch) as w:
        w.add(table, PERSONAL_SCHEMA.empty_table(), QUARANTINE_SCHEMA.empty_table())
        w.commit(IngestReport(source="synthetic", file="bench", sha256=batch, batch_id=batch, read=n))
    store.close()
    print(f"built {n:,} incidents in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    del pa


def windows(k: int) -> list[tuple[str, str]]:
    start = date(2023, 1, 2)
    return [((start + timedelta(days=7 * i)).isoformat(), (start + timedelta(days=7 * i + 364)).isoformat())
            for i in range(k)]


def pct(xs: list[float]) -> dict[str, float]:
    s = sorted(xs)
    return {"p50_ms": round(statistics.median(s) * 1e3, 1), "p95_ms": round(s[int(0.95 * (len(s) - 1))] * 1e3, 1),
            "n": len(s)}


def floor(db: Path | str, clients: int, requests: int) -> dict[str, dict[str, float]]:
    """The same store.counts queries, run directly on cursors with the same concurrency."""
    from datetime import datetime

    from crimelens.filters import IncidentFilter
    from crimelens.store.duckdb import DuckDBStore

    if isinstance(db, str):
        return pg_floor(db, clients, requests)
    store = DuckDBStore(str(db), read_only=True)
    wins = windows(clients * requests)
    out: dict[str, dict[str, float]] = {}
    for name, by in (("categories", ["category", "category_group"]), ("timeseries", ["day", "time_precision"]),
                     ("hour_weekday", ["hour", "weekday", "time_precision"]), ("cells_250m", ["crs", "cell:250"])):
        def one(i: int, by: list[str] = by) -> float:
            cur = DuckDBStore.__new__(DuckDBStore)
            cur.url, cur.read_only, cur.con = store.url, True, store.con.cursor()
            a, b = wins[i]
            t = time.perf_counter()
            cur.counts(by, IncidentFilter(start=datetime.fromisoformat(a), end=datetime.fromisoformat(b)))
            dt = time.perf_counter() - t
            cur.con.close()
            return dt

        with ThreadPoolExecutor(clients) as ex:
            out[name] = pct(list(ex.map(one, range(clients * requests))))

    def gi(i: int) -> float:  # the hot spot computation the endpoint runs, called directly
        from crimelens.service.products import hotspots

        cur = DuckDBStore.__new__(DuckDBStore)
        cur.url, cur.read_only, cur.con = store.url, True, store.con.cursor()
        a, b = wins[i]
        t = time.perf_counter()
        hotspots(cur, IncidentFilter(start=datetime.fromisoformat(a), end=datetime.fromisoformat(b)), 250.0, None)
        dt = time.perf_counter() - t
        cur.con.close()
        return dt

    with ThreadPoolExecutor(clients) as ex:
        out["hotspots_250m"] = pct(list(ex.map(gi, range(clients * max(2, requests // 4)))))
    store.close()
    return out


def pg_floor(url: str, clients: int, requests: int) -> dict[str, dict[str, float]]:
    """The floor on PostgreSQL: the same ``counts`` queries, one connection per client thread."""
    import threading
    from datetime import datetime

    from crimelens.filters import IncidentFilter
    from crimelens.service.products import hotspots
    from crimelens.store.postgres import PostgresStore

    local = threading.local()
    opened: list[PostgresStore] = []

    def store() -> PostgresStore:
        if not hasattr(local, "s"):
            local.s = PostgresStore(url, read_only=True)
            opened.append(local.s)
        return local.s  # type: ignore[no-any-return]

    wins = windows(clients * requests)
    pool = ThreadPoolExecutor(clients)  # one pool: its threads (and their connections) serve every endpoint
    out: dict[str, dict[str, float]] = {}
    for name, by in (("categories", ["category", "category_group"]), ("timeseries", ["day", "time_precision"]),
                     ("hour_weekday", ["hour", "weekday", "time_precision"]), ("cells_250m", ["crs", "cell:250"])):
        def one(i: int, by: list[str] = by) -> float:
            a, b = wins[i]
            t = time.perf_counter()
            store().counts(by, IncidentFilter(start=datetime.fromisoformat(a), end=datetime.fromisoformat(b)))
            return time.perf_counter() - t

        out[name] = pct(list(pool.map(one, range(clients * requests))))

    def gi(i: int) -> float:
        a, b = wins[i]
        t = time.perf_counter()
        hotspots(store(), IncidentFilter(start=datetime.fromisoformat(a), end=datetime.fromisoformat(b)),  # type: ignore[arg-type]
                 250.0, None)
        return time.perf_counter() - t

    out["hotspots_250m"] = pct(list(pool.map(gi, range(clients * max(2, requests // 4)))))
    pool.shutdown()
    for s in opened:
        s.close()
    return out


async def _get(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes) -> int:
    """One keep-alive HTTP/1.1 GET; returns the status (the body is read and dropped)."""
    writer.write(request)
    status = int((await reader.readline()).split()[1])
    length, chunked = 0, False
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        if name.lower() == "content-length":
            length = int(value)
        elif name.lower() == "transfer-encoding" and "chunked" in value.lower():
            chunked = True
    if not chunked:
        await reader.readexactly(length)
        return status
    while (size := int((await reader.readline()).strip(), 16)) > 0:
        await reader.readexactly(size + 2)
    await reader.readline()
    return status


async def load(port: int, token: str, path: str, clients: int, requests: int, cold: bool) -> dict[str, float]:
    """``clients`` keep-alive connections, each sending ``requests`` GETs one after another.

    A minimal asyncio client rather than httpx: the load generator shares the machine's cores
    with the service, so its own cost per request must be small.
    """
    wins = windows(clients * requests)
    lat: list[float] = []

    async def client(c: int) -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            for r in range(requests):
                a, b = wins[c * requests + r] if cold else wins[0]
                url = f"/api/v1{path}{'&' if '?' in path else '?'}from={a}&to={b}"
                req = (f"GET {url} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n").encode()
                t = time.perf_counter()
                status = await _get(reader, writer, req)
                lat.append(time.perf_counter() - t)
                if status != 200:
                    raise SystemExit(f"{url}: HTTP {status}")
        finally:
            writer.close()

    await asyncio.gather(*(client(c) for c in range(clients)))
    return pct(lat)


def service(db: Path | str, clients: int, requests: int, port: int,
            workers: int = 1, settle: float = 0.0) -> dict[str, dict[str, dict[str, float]]]:
    import httpx

    env = dict(os.environ, CRIMELENS_DB=str(db), CRIMELENS_PORT=str(port), CRIMELENS_PSEUDONYM_KEY=KEY,
               CRIMELENS_RATE_SEARCH_PER_MINUTE="1000000", CRIMELENS_RATE_LOGIN_PER_MINUTE="1000")
    code = ("from crimelens.settings import Settings\nfrom crimelens.service.auth import Accounts, Role\n"
            "from crimelens.service.runtime import Runtime\ns = Settings()\nrt = Runtime(s)\na = Accounts(rt)\n"
            f"a.get('bench') or a.create('bench', Role.analyst, {PASSWORD!r})\nrt.close()\n"
            f"from crimelens.service.serve import serve\nserve(s, log_level='warning', workers={workers})\n")
    proc = subprocess.Popen([sys.executable, "-c", code], env=env)
    base = f"http://127.0.0.1:{port}/api/v1"
    try:
        for _ in range(600):
            if proc.poll() is not None:
                raise SystemExit("the service did not start")
            try:
                if httpx.get(base + "/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        # each worker builds its hot spot cell index in the background at start (service/cellindex.py);
        # let that finish so the first measured endpoint does not share the cores with it
        time.sleep(settle)
        login = {"username": "bench", "password": PASSWORD}
        token = httpx.post(base + "/auth/login", json=login).json()["access_token"]
        out: dict[str, dict[str, dict[str, float]]] = {}
        for name, path in (("categories", "/aggregates/categories"),
                           ("timeseries", "/aggregates/timeseries?period=day"),
                           ("hour_weekday", "/aggregates/hour-weekday"), ("hotspots_250m", "/hotspots?cell_m=250")):
            n_req = requests if "hotspots" not in name else max(2, requests // 4)
            out[name] = {"cold": asyncio.run(load(port, token, path, clients, n_req, cold=True)),
                         "warm": asyncio.run(load(port, token, path, clients, n_req, cold=False))}
        return out
    finally:
        proc.terminate()
        proc.wait(30)


def _pg_has_store(server: str, schema: str) -> bool:
    import psycopg

    with psycopg.connect(server, autocommit=True) as con:
        row = con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = %s "
                          "AND table_name = 'incidents'", [schema]).fetchone()
        if not (row and row[0]):
            return False
        n = con.execute(f"SELECT count(*) FROM {schema}.incidents").fetchone()
        return bool(n and n[0])


def pg_upkeep(url: str) -> float:
    """Migrate a reused PostgreSQL store (the covering index of step 4) and VACUUM (ANALYZE) it, as a
    load by this code does right after it commits (store/pgtune.py); the seconds it took."""
    from crimelens.store.postgres import PostgresStore

    t = time.perf_counter()
    store = PostgresStore(url)
    store.conn.execute("VACUUM (ANALYZE) incidents")
    store.close()
    return round(time.perf_counter() - t, 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--incidents", type=int, default=2_000_000)
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--requests", type=int, default=20)
    ap.add_argument("--direct-requests", type=int, default=None,
                    help="requests per client of the direct (floor) queries [default: --requests]")
    ap.add_argument("--db", type=Path, default=None)
    ap.add_argument("--port", type=int, default=8765)
    ap.add_argument("--pg", default=None, help="a PostgreSQL server URL: run on PostgreSQL instead of DuckDB")
    ap.add_argument("--workers", type=int, default=1, help="service worker processes (PostgreSQL only)")
    ap.add_argument("--settle", type=float, default=15.0,
                    help="seconds to wait after the service answers /health (its background index builds)")
    args = ap.parse_args()
    os.environ.setdefault("CRIMELENS_PSEUDONYM_KEY", KEY)
    db: Path | str
    if args.pg:
        db = f"{args.pg}{'&' if '?' in args.pg else '?'}schema=bench_{args.incidents}"
        if not _pg_has_store(args.pg, f"bench_{args.incidents}"):
            build_store(db, args.incidents)
        print(f"upkeep of the reused store: {pg_upkeep(db)} s", file=sys.stderr)
    else:
        db = args.db or Path("bench/data") / f"service_{args.incidents}.duckdb"
        db.parent.mkdir(parents=True, exist_ok=True)
        if not db.exists():
            build_store(db, args.incidents)
    result = {"incidents": args.incidents, "clients": args.clients, "cpus": os.cpu_count(),
              "backend": "postgres" if args.pg else "duckdb", "workers": args.workers,
              "load_average": os.getloadavg()[0],
              "direct_requests": args.direct_requests or args.requests,
              "direct": floor(db, args.clients, args.direct_requests or args.requests),
              "service": service(db, args.clients, args.requests, args.port, args.workers, args.settle),
              "load_average_end": os.getloadavg()[0]}
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
