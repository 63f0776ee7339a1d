"""Live path latency (issue 19): events/s through each broker into a store, on to an alert and a browser.

    flock /tmp/bench.lock nice -n 19 python bench/live.py [--rate 1000] [--seconds 60]
        [--brokers nats,mqtt,amqp] [--batch 1000] [--max-wait 0.25] [--no-browser]

For each broker a **publisher process** sends gunshot-detection events (the ``gunshot_detection``
preset's JSON) at ``--rate`` per second for ``--seconds``, each stamped with its publish time;
the **consumer** (``crimelens.stream.consume``, as ``crimelens stream`` runs it, in this process)
loads them in micro-batches into a fresh PostgreSQL database (``$CRIMELENS_BENCH_PG``'s server).
A **service** (``crimelens serve``, its own process) runs on that database and hears each commit
through NOTIFY (``crimelens.service.batchfeed``); a **headless Chromium page** (its own process,
bench/live_page.py) is signed in to the dashboard and notes when each ``incidents`` SSE event
reaches the page's one event reader (``CL.events``), with the batch's incident ids. After each
commit the bench notes, for every message of the batch, *publish → stored* (committed and
acknowledged) and runs the sensor rule "3 detections within 500 m in 1 hour"
(:func:`crimelens.alerts.series.evaluate_rules`, the rule code the alert monitor uses) on the
detections of the last hour; *publish → alert* is the time from publishing the detection that
completes a cluster to the rule raising its alert; *publish → browser* is from publishing each
event to the page receiving the event that carries its id (all events, not a sample).
Most events are vendor-classified fireworks (mapped to ``public_order`` by a bench mapping that
extends the preset), so the rule's input is the 1-2 gunshot detections per second of the planted
clusters: one cluster of 3 detections within 200 m every 2 seconds, each at a new spot.
``--no-browser`` loads into a DuckDB file with no service or page (the earlier set-up).

Reported per broker: events published and stored, sustained throughput (stored / (last commit −
first publish)), p50/p95/p99 publish→stored, →alert and →browser (ms), events that never reached
the page, the page's full dashboard redraws (``page_redraws``; ``CRIMELENS_BENCH_REDRAW_MS=0``
gives it one per batch, as before the coalescing), batches, the consumer's CPU seconds and events
stored per CPU second, and the consumer process's peak resident memory (VmHWM; each broker runs
in a fresh process) and its growth over the run. The broker URLs default to this machine's
services (``CRIMELENS_NATS_URL``, ``CRIMELENS_MQTT_URL``, ``CRIMELENS_AMQP_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import multiprocessing as mp
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

NATS_URL = os.environ.get("CRIMELENS_NATS_URL", "nats://127.0.0.1:4222")
MQTT_URL = os.environ.get("CRIMELENS_MQTT_URL", "mqtt://127.0.0.1:1883")
AMQP_URL = os.environ.get("CRIMELENS_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672")
KEY = b"bench-pseudonym-key-0123456789ab"
MAPPING = """extends = "gunshot_detection"
name = "bench_gunshots"

[categories]
firework = "public_order"
default = "gunshot_detected"
"""
RULES = {"rule": [{"name": "gunfire cluster", "type": "series", "categories": ["gunshot_detected"],
                   "min_count": 3, "radius_m": 500, "hours": 1, "severity": "high"}]}
LAT0, LON0 = 41.75, -87.70


def _event(i: int, rng: np.random.Generator, cluster: tuple[int, float, float] | None) -> dict[str, Any]:
    if cluster is None:
        lat, lon, kind = LAT0 + rng.uniform(0, 0.2), LON0 + rng.uniform(0, 0.25), "firework"
    else:
        _, lat, lon = cluster
        lat, lon, kind = lat + rng.uniform(-0.001, 0.001), lon + rng.uniform(-0.001, 0.001), "multiple_gunshots"
    return {"id": f"B-{i:08d}", "detected_at": pd.Timestamp.now(tz="UTC").isoformat(), "lat": round(lat, 6),
            "lon": round(lon, 6), "rounds": int(rng.integers(1, 9)), "confidence": 0.9, "type": kind}


def _schedule(rate: float, seconds: float) -> list[tuple[int, tuple[int, float, float] | None]]:
    """Which events are cluster detections: 3 in a row every 2 s, each cluster at a new spot 2+ km apart."""
    n = int(rate * seconds)
    plan: list[tuple[int, tuple[int, float, float] | None]] = [(i, None) for i in range(n)]
    every = max(int(rate * 2), 4)
    for c, start in enumerate(range(every // 2, n - 2, every)):
        spot = (c, LAT0 + 0.02 * (c % 10), LON0 + 0.025 * (c // 10))
        for k in range(3):
            plan[start + k * max(1, int(rate * 0.1))] = (start + k * max(1, int(rate * 0.1)), spot)
    return plan


def _publisher(kind: str, target: dict[str, str], rate: float, seconds: float, ready: Any, done: Any) -> None:
    rng = np.random.default_rng(7)
    plan = _schedule(rate, seconds)
    ready.wait()
    t0 = time.time()

    def body(i: int, cluster: tuple[int, float, float] | None) -> bytes:
        ev = _event(i, rng, cluster)
        ev["published_at_ns"] = time.time_ns()
        return json.dumps(ev).encode()

    def pace(i: int) -> None:
        delay = t0 + i / rate - time.time()
        if delay > 0:
            time.sleep(delay)

    if kind == "mqtt":
        import paho.mqtt.client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        client = mqtt.Client(CallbackAPIVersion.VERSION2)
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(1000)
        client.connect("127.0.0.1", int(target["port"]))
        client.loop_start()
        last = None
        for i, cl in plan:
            pace(i)
            last = client.publish(target["topic"], body(i, cl), qos=1)
        if last is not None:
            last.wait_for_publish(30)
        client.disconnect()
        client.loop_stop()
    else:
        asyncio.run(_publish_async(kind, target, plan, body, rate, t0))
    done.set()


async def _publish_async(kind: str, target: dict[str, str], plan: list[Any], body: Any, rate: float,
                         t0: float) -> None:
    async def pace(i: int) -> None:
        delay = t0 + i / rate - time.time()
        if delay > 0:
            await asyncio.sleep(delay)

    if kind == "nats":
        import nats

        nc = await nats.connect(target["url"])
        js = nc.jetstream()
        pending: list[Any] = []
        for i, cl in plan:
            await pace(i)
            pending.append(await js.publish_async(target["subject"], body(i, cl)))
            if len(pending) >= 2000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
        await nc.close()
    else:
        import aio_pika

        conn = await aio_pika.connect(target["url"] + "/")
        ch = await conn.channel(publisher_confirms=False)
        for i, cl in plan:
            await pace(i)
            msg = aio_pika.Message(body(i, cl), delivery_mode=aio_pika.DeliveryMode.PERSISTENT)
            await ch.default_exchange.publish(msg, routing_key=target["queue"])
        await conn.close()


def _rss() -> tuple[int, int]:
    """(VmRSS, VmHWM) of this process in KiB."""
    got = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(("VmRSS:", "VmHWM:")):
            got[line.split(":")[0]] = int(line.split()[1])
    return got.get("VmRSS", 0), got.get("VmHWM", 0)


def _cpu() -> float:
    """CPU seconds (user + system) this process has used: the consumer's cost, free of the machine's load."""
    use = resource.getrusage(resource.RUSAGE_SELF)
    return use.ru_utime + use.ru_stime


def _setup(kind: str, tag: str) -> tuple[dict[str, str], str, Any]:
    """Broker objects for one run: the publisher's target, the consumer URL, and a cleanup."""
    if kind == "nats":
        import nats

        name, subject = f"BENCH_{tag}", f"bench.{tag}"

        async def make(delete: bool) -> None:
            nc = await nats.connect(NATS_URL)
            js = nc.jetstream()
            await (js.delete_stream(name) if delete else js.add_stream(name=name, subjects=[subject]))
            await nc.close()

        asyncio.run(make(False))
        return {"url": NATS_URL, "subject": subject}, NATS_URL, lambda: asyncio.run(make(True))
    if kind == "mqtt":
        port = MQTT_URL.rsplit(":", 1)[1].split("/")[0]
        topic = f"bench/{tag}"
        return {"port": port, "topic": topic}, f"{MQTT_URL}/{topic}", lambda: None
    import aio_pika

    queue = f"bench_{tag}"

    async def make_q(delete: bool) -> None:
        conn = await aio_pika.connect(AMQP_URL + "/")
        ch = await conn.channel()
        await (ch.queue_delete(queue) if delete else ch.declare_queue(queue, durable=True))
        await conn.close()

    asyncio.run(make_q(False))
    return {"url": AMQP_URL, "queue": queue}, f"{AMQP_URL}/{queue}", lambda: asyncio.run(make_q(True))


def run_broker(kind: str, rate: float, seconds: float, batch: int, max_wait: float, folder: Path,
               browser: bool = True) -> dict[str, Any]:
    """One broker's run; returns its row of figures."""
    with contextlib.ExitStack() as stack:
        ctx = mp.get_context("spawn")
        if not browser:
            return _run_broker(kind, rate, seconds, batch, max_wait, folder, str(folder / f"{kind}.duckdb"), None)
        import live_page

        db, base = stack.enter_context(live_page.service(folder))
        ready, stop = ctx.Event(), ctx.Event()
        out = folder / "arrivals.json"
        proc = ctx.Process(target=live_page.page, args=(base, str(out), ready, stop), daemon=True)
        proc.start()
        stack.callback(proc.kill)
        if not ready.wait(120):
            raise RuntimeError("the dashboard page did not sign in and connect")
        return _run_broker(kind, rate, seconds, batch, max_wait, folder, db, (stop, proc, out))


def _run_broker(kind: str, rate: float, seconds: float, batch: int, max_wait: float, folder: Path, db: str,
                page: tuple[Any, Any, Path] | None) -> dict[str, Any]:
    from crimelens.alerts.rules import RuleBook
    from crimelens.alerts.series import evaluate_rules
    from crimelens.sources.mapping import load_mapping
    from crimelens.store import connect
    from crimelens.stream import StreamOptions, consume

    tag = uuid.uuid4().hex[:8]
    target, url, cleanup = _setup(kind, tag)
    mapping_file = folder / "bench_gunshots.toml"
    mapping_file.write_text(MAPPING)
    mapping = load_mapping(mapping_file)
    book = RuleBook.from_dict(RULES)
    store = connect(db)
    stored_lat: list[float] = []
    stored_at: dict[str, int] = {}
    alert_lat: list[float] = []
    recent = pd.DataFrame()
    published: dict[str, int] = {}
    alerted: set[str] = set()
    first_pub: list[int] = []
    last_commit = [0.0]
    rss0 = _rss()[0]
    cpu0 = _cpu()
    ctx = mp.get_context("spawn")
    ready, done = ctx.Event(), ctx.Event()
    pub = ctx.Process(target=_publisher, args=(kind, target, rate, seconds, ready, done), daemon=True)
    pub.start()
    stop = threading.Event()

    def on_batch(report: Any, messages: list[Any]) -> None:
        nonlocal recent
        now_ns = time.time_ns()
        last_commit[0] = now_ns / 1e9
        for m in messages:
            try:
                ev = json.loads(m.data)
            except ValueError:
                continue
            stored_lat.append((now_ns - ev["published_at_ns"]) / 1e6)
            published[ev["id"]] = ev["published_at_ns"]
            stored_at[ev["id"]] = now_ns
            if not first_pub:
                first_pub.append(ev["published_at_ns"])
        new = store.execute("SELECT source, incident_id, occurred_at, category, category_group, ucr_part1, "  # type: ignore[attr-defined]
                            "crimes_against, x, y, lat, lon, district, beat, time_precision, batch_id "
                            "FROM incidents WHERE batch_id = ? AND category = 'gunshot_detected'", [report.batch_id])
        if len(new):
            recent = pd.concat([recent, new], ignore_index=True) if len(recent) else new
            at = pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1)
            recent = recent[pd.to_datetime(recent["occurred_at"], utc=True) >= at - pd.Timedelta(hours=1)]
            ids = {f"{s}:{i}" for s, i in zip(new["source"], new["incident_id"], strict=True)}
            raised = time.time_ns()
            for alert in evaluate_rules(book, recent, at, must_include=ids):
                newest = max(alert.incident_ids, key=lambda k: published.get(k.split(":", 1)[1], 0))
                if newest not in alerted and all(k not in alerted for k in alert.incident_ids):
                    alerted.update(alert.incident_ids)
                    alert_lat.append((raised - published[newest.split(":", 1)[1]]) / 1e6)
        if done.is_set() and len(stored_lat) >= int(rate * seconds):
            stop.set()

    opts = StreamOptions(stream=f"BENCH_{tag}", subject=target.get("subject", ""), url=url,
                         durable=f"bench-{tag}", batch=batch, max_wait=max_wait, idle_exit=10.0)
    def start_publishing() -> None:
        time.sleep(1.0)
        ready.set()

    runner = threading.Thread(target=start_publishing, daemon=True)
    runner.start()  # the consumer subscribes first (an MQTT session must exist before publishing)
    started = time.time()
    summary = consume(store, mapping, opts, key=KEY, on_batch=on_batch, stop=stop)
    wall = time.time() - started
    cpu = _cpu() - cpu0
    pub.join(30)
    store.close()
    cleanup()
    browser_lat: list[float] = []
    hop_lat: list[float] = []
    missing = None
    redraws: int | None = None
    if page is not None:  # the last events' way to the page, then what the page saw
        import live_page

        time.sleep(5.0)
        page[0].set()
        page[1].join(60)
        arrivals = json.loads(page[2].read_text()) if page[2].exists() else []
        browser_lat, missing = live_page.browser_latency(arrivals, published)
        hop_lat, _ = live_page.browser_latency(arrivals, stored_at)  # commit seen by the bench -> page
        redraws_file = Path(str(page[2]) + ".redraws")
        redraws = int(redraws_file.read_text()) if redraws_file.exists() else None
    rss, hwm = _rss()
    n = int(rate * seconds)
    span = last_commit[0] - first_pub[0] / 1e9 if first_pub else math.nan

    def pct(values: list[float], q: float) -> float:
        return round(float(np.percentile(values, q)), 1) if values else math.nan

    return {"broker": kind, "published": n, "stored": summary.stored, "duplicates": summary.duplicates,
            "batches": summary.batches, "throughput_per_s": round(summary.stored / span, 1) if span else math.nan,
            "stored_p50_ms": pct(stored_lat, 50), "stored_p95_ms": pct(stored_lat, 95),
            "stored_p99_ms": pct(stored_lat, 99), "alerts": len(alert_lat), "alert_p50_ms": pct(alert_lat, 50),
            "alert_p95_ms": pct(alert_lat, 95), "alert_p99_ms": pct(alert_lat, 99),
            "browser_p50_ms": pct(browser_lat, 50), "browser_p95_ms": pct(browser_lat, 95),
            "browser_p99_ms": pct(browser_lat, 99), "browser_missing": missing,
            "stored_to_browser_p50_ms": pct(hop_lat, 50), "stored_to_browser_p95_ms": pct(hop_lat, 95),
            "page_redraws": redraws,
            "rss_peak_mib": round(hwm / 1024, 1), "rss_growth_mib": round((rss - rss0) / 1024, 1),
            "wall_s": round(wall, 1), "consumer_cpu_s": round(cpu, 1),
            "events_per_cpu_s": round(summary.stored / cpu, 1) if cpu else math.nan}


def main() -> None:
    """Parse options, run each broker in turn, print the table."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rate", type=float, default=1000.0, help="events per second")
    ap.add_argument("--seconds", type=float, default=60.0, help="how long to publish")
    ap.add_argument("--brokers", default="nats,mqtt,amqp")
    ap.add_argument("--batch", type=int, default=1000, help="largest micro-batch")
    ap.add_argument("--max-wait", type=float, default=0.25, help="seconds a micro-batch waits to fill")
    ap.add_argument("--no-browser", action="store_true",
                    help="DuckDB store, no service or page (publish->stored and ->alert only)")
    args = ap.parse_args()
    print(f"# bench/live.py  {datetime.now().isoformat(timespec='seconds')}  {platform.node()}  "
          f"{os.cpu_count()} CPUs  python {platform.python_version()}")
    print(f"# rate {args.rate:g}/s for {args.seconds:g} s, batch {args.batch}, max-wait {args.max_wait} s")
    kinds = [b.strip() for b in args.brokers.split(",") if b.strip()]
    rows = []
    if len(kinds) == 1:  # one broker: run it here
        with tempfile.TemporaryDirectory(prefix="crimelens-live-") as tmp:
            rows.append(run_broker(kinds[0], args.rate, args.seconds, args.batch, args.max_wait, Path(tmp),
                                   browser=not args.no_browser))
        print(json.dumps(rows[-1]), flush=True)
    else:  # each broker in a fresh process, so its memory figures are its own
        for kind in kinds:
            out = subprocess.run([sys.executable, __file__, "--brokers", kind, "--rate", str(args.rate), "--seconds",
                                  str(args.seconds), "--batch", str(args.batch), "--max-wait", str(args.max_wait),
                                  *(["--no-browser"] if args.no_browser else [])],
                                 capture_output=True, text=True, check=False)
            found = [ln for ln in out.stdout.splitlines() if ln.startswith("{")]
            if out.returncode or not found:
                print(f"# {kind}: failed (exit {out.returncode}): {out.stderr.strip().splitlines()[-1:]}")
                continue
            rows.append(json.loads(found[-1]))
            print(found[-1], flush=True)
    cols = ["broker", "published", "stored", "throughput_per_s", "stored_p50_ms", "stored_p95_ms", "stored_p99_ms",
            "alerts", "alert_p50_ms", "alert_p95_ms", "alert_p99_ms", "browser_p50_ms", "browser_p95_ms",
            "browser_p99_ms", "browser_missing", "stored_to_browser_p50_ms", "stored_to_browser_p95_ms",
            "batches", "rss_peak_mib", "rss_growth_mib",
            "events_per_cpu_s"]
    print("\n| " + " | ".join(cols) + " |\n|" + "---|" * len(cols))
    for r in rows:
        print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
