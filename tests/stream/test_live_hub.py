"""A separate ``crimelens stream`` process reaches the service's live feed (issue 19, gap 1).

On PostgreSQL the loader NOTIFYs inside the load's transaction and every service process LISTENs
(:mod:`crimelens.service.batchfeed`). Against the real PostgreSQL and NATS servers: a rolled-back
load never notifies and a committed one does; a ``crimelens stream`` subprocess loading into the
database the service (one worker, then ``--workers 2``) serves makes an ``incidents`` event reach
SSE clients (httpx streaming) carrying exactly the ids the store holds for that batch, each batch
once per connection, and an upload loaded inside a worker (announced in-process *and* heard by
NOTIFY) is also delivered once per connection. Skips with a reason without either server.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from crimelens.service.batchfeed import FEED_FIELDS
from tests.conftest import CHICAGO_HEADER, TEST_KEY
from tests.service.conftest import PASSWORDS, PgTemplate, chicago_rows, pg_admin, pg_template, pg_url, write_rows
from tests.service.test_pg_workers import _env, serving
from tests.stream.conftest import JetStream, bodies, socrata_record

httpx = pytest.importorskip("httpx")
pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")
pytestmark = [pytest.mark.service, pytest.mark.slow]
__all__ = ["pg_template"]  # the session fixture, shared with tests/service
FIELDS = {*FEED_FIELDS, "lat", "lon"}


@pytest.fixture
def database(pg_template: PgTemplate) -> Iterator[str]:
    name = f"live_hub_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template.database}")
    try:
        yield pg_url(name)
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class _FailingCommit:
    """The store's connection, except that the first ``COMMIT`` fails (after the NOTIFY was queued)."""

    def __init__(self, conn: Any) -> None:
        self._conn, self.failed = conn, False

    def execute(self, query: Any, params: Any = None) -> Any:
        if query == "COMMIT" and not self.failed:
            self.failed = True
            raise RuntimeError("commit refused by the test")
        return self._conn.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._conn, name)


def test_a_rolled_back_load_never_notifies_and_a_committed_one_does(database: str, tmp_path: Path) -> None:
    import psycopg

    from crimelens.ingest import ingest_file
    from crimelens.sources.mapping import load_preset
    from crimelens.store.postgres import BATCH_CHANNEL, PostgresStore

    store = PostgresStore(database)
    listener = psycopg.connect(database, autocommit=True)
    listener.execute(f"LISTEN {BATCH_CHANNEL}")
    csv = write_rows(tmp_path / "a.csv", chicago_rows(30, seed=8, start_id=77_000_000, days=3), CHICAGO_HEADER)
    real = store.conn
    store.conn = _FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(RuntimeError, match="commit refused"):
        ingest_file(store, csv, key=TEST_KEY, mapping=load_preset("chicago"))
    assert [n.payload for n in listener.notifies(timeout=1.0)] == []
    assert real.execute("SELECT count(*) FROM incidents WHERE incident_id LIKE '770000%'").fetchone() == (0,)
    store.conn = real
    report = ingest_file(store, csv, key=TEST_KEY, mapping=load_preset("chicago"))
    got = [n.payload for n in listener.notifies(timeout=2.0, stop_after=1)]
    assert got == [f"{store.schema} {report.batch_id}"]
    listener.close()
    store.close()


class _Sse:
    """An SSE client on ``/api/v1/events`` in a thread, collecting ``(event, data)`` pairs."""

    def __init__(self, base: str, token: str) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(base, token), daemon=True)
        self._thread.start()
        assert self.connected.wait(20), "the SSE connection did not open"

    def _run(self, base: str, token: str) -> None:
        with httpx.Client(timeout=httpx.Timeout(30, read=2.0)) as c, c.stream(
                "GET", f"{base}/api/v1/events?heartbeat_s=0.5", headers={"Authorization": f"Bearer {token}"}) as r:
            assert r.status_code == 200
            ev, data = "message", ""
            for line in r.iter_lines():
                self.connected.set()
                if self._stop.is_set():
                    return
                if line.startswith("event:"):
                    ev = line[6:].strip()
                elif line.startswith("data:"):
                    data += line[5:].strip()
                elif line == "":
                    if data:
                        self.events.append((ev, json.loads(data)))
                    ev, data = "message", ""

    def incidents(self) -> list[dict[str, Any]]:
        return [d for e, d in self.events if e == "incidents"]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)


@pytest.fixture(params=[1, 2], ids=["1-worker", "2-workers"])
def served(request: pytest.FixtureRequest, database: str, tmp_path: Path) -> Iterator[tuple[str, str]]:
    with serving(database, tmp_path, request.param) as base:
        time.sleep(0.5)  # every worker listening
        yield base, database


def _wait(check: Any, timeout_s: float) -> None:
    end = time.time() + timeout_s
    while not check():
        assert time.time() < end, "not within the bound"
        time.sleep(0.1)


def _batch_ids(database: str, like: str) -> dict[str, set[str]]:
    from crimelens.store.postgres import PostgresStore

    store = PostgresStore(database, read_only=True)
    try:
        rows = store.conn.execute("SELECT f.batch_id, i.incident_id FROM files f JOIN incidents i USING (batch_id) "
                                  "WHERE f.file LIKE %s", [like]).fetchall()
    finally:
        store.close()
    out: dict[str, set[str]] = {}
    for batch, incident in rows:
        out.setdefault(batch, set()).add(incident)
    return out


def test_a_separate_stream_process_reaches_every_sse_client_once(
    served: tuple[str, str], jetstream: JetStream, tmp_path: Path
) -> None:
    base, database = served
    token = httpx.post(f"{base}/api/v1/auth/login", timeout=30,
                       json={"username": "analyst", "password": PASSWORDS["analyst"]}).json()["access_token"]
    clients = [_Sse(base, token) for _ in range(3)]  # with 2 workers they land on either process
    try:
        jetstream.publish(bodies([socrata_record(i) for i in range(120)]))
        t0 = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-m", "crimelens.cli.app", "stream", "--url", jetstream.url, "--stream", jetstream.name,
             "--subject", jetstream.subject, "--preset", "chicago_socrata", "--db", database, "--batch", "50",
             "--max-wait", "0.3", "--once"], env=_env(tmp_path), capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        stored = _batch_ids(database, "nats:%")
        assert len(stored) == 3 and sum(map(len, stored.values())) == 120
        for c in clients:
            _wait(lambda c=c: {d["batch_id"] for d in c.incidents()} >= set(stored), 15)
        print(f"stream process -> {len(clients)} SSE clients: {time.perf_counter() - t0:.2f} s")
        # an upload loaded inside a worker: announced there and heard by NOTIFY, still once per client
        before = set(_batch_ids(database, "%"))
        csv = write_rows(tmp_path / "u.csv", chicago_rows(25, seed=9, start_id=66_000_000, days=2), CHICAGO_HEADER)
        h = {"Authorization": f"Bearer {token}"}
        r = httpx.post(f"{base}/api/v1/ingest", headers=h, data={"preset": "chicago"}, timeout=30,
                       files={"file": (csv.name, csv.read_bytes(), "text/csv")})
        assert r.status_code == 202, r.text
        _wait(lambda: httpx.get(f"{base}/api/v1/jobs/{r.json()['id']}", headers=h).json()["status"] == "done", 60)
        upload = {b: ids for b, ids in _batch_ids(database, "%").items() if b not in before}
        assert len(upload) == 1 and len(next(iter(upload.values()))) == 25
        for c in clients:
            _wait(lambda c=c: set(upload) <= {d["batch_id"] for d in c.incidents()}, 15)
        time.sleep(2.5)  # past a poll of the files log: a late duplicate would have arrived
        for c in clients:
            got = [d["batch_id"] for d in c.incidents()]
            assert sorted(got) == sorted({**stored, **upload}), got  # each batch once, nothing else
            for d in c.incidents():
                assert set(d["incident_ids"]) == {**stored, **upload}[d["batch_id"]]
                assert all(set(i) == FIELDS for i in d["items"])  # no personal field
    finally:
        for c in clients:
            c.close()


def test_the_files_log_poll_announces_a_batch_no_notification_reached(database: str, tmp_path: Path) -> None:
    from crimelens.ingest import ingest_file
    from crimelens.service.app import create_app
    from crimelens.service.batchfeed import BatchListener
    from crimelens.sources.mapping import load_preset
    from crimelens.store.postgres import PostgresStore
    from tests.service.conftest import service_settings

    svc = create_app(service_settings(database)).state.svc
    try:
        feed = BatchListener(svc)  # not started: no LISTEN, only the fallback
        feed._poll()  # the start: the template's loads are history
        assert [e for e in svc.rt.events.history if e["event"] == "incidents"] == []
        store = PostgresStore(database)
        csv = write_rows(tmp_path / "p.csv", chicago_rows(12, seed=11, start_id=55_000_000, days=2), CHICAGO_HEADER)
        report = ingest_file(store, csv, key=TEST_KEY, mapping=load_preset("chicago"))
        store.close()
        feed._poll()
        feed._poll()  # a second look at the same window announces nothing again
        events = [e["data"] for e in svc.rt.events.history if e["event"] == "incidents"]
        assert [d["batch_id"] for d in events] == [report.batch_id]
        assert len(events[0]["incident_ids"]) == events[0]["stored"] == 12
        assert feed.high_water is not None
    finally:
        svc.rt.close()


def test_an_alert_raised_in_one_worker_reaches_the_others_once(database: str) -> None:
    """Two service processes on one database (as ``--workers 2``): an alert raised in one, then
    acknowledged in the other, is published once per process with its action."""
    import pandas as pd

    from crimelens.alerts.model import Alert
    from crimelens.service.app import create_app
    from crimelens.service.batchfeed import BatchListener
    from tests.service.conftest import service_settings

    svcs = [create_app(service_settings(database)).state.svc for _ in range(2)]
    try:
        feeds = []
        for svc in svcs:
            feed = BatchListener(svc)  # not started: its polls are driven here
            svc.alerts.monitor.feed.subscribe(feed.alerts.mine)  # as start() does
            feed._poll()  # the start: alerts already stored are history
            feeds.append(feed)
        day = pd.Timestamp("2024-03-04", tz="UTC")
        alert = Alert(kind="threshold", area_level="district", area="004", category="burglary",
                      window_start=day, window_end=day + pd.Timedelta(days=1), observed=7.0, severity="high")
        svcs[0].alerts.monitor.process([alert], now=day + pd.Timedelta(days=1), deliver=False)  # raised in worker 0

        def seen(svc: Any) -> list[tuple[str, str]]:
            return [(e["data"]["action"], e["data"]["alert"]["alert_id"]) for e in svc.rt.events.history
                    if e["event"] == "alert"]

        for _ in range(2):  # a second poll of the same window publishes nothing again
            for feed in feeds:
                feed._poll()
        assert seen(svcs[0]) == seen(svcs[1]) == [("new", alert.alert_id)]
        svcs[1].alerts.set_status(alert.alert_id, resolve=False, label=None, note=None, username="analyst")
        for _ in range(2):
            for feed in feeds:
                feed._poll()
        assert seen(svcs[0]) == seen(svcs[1]) == [("new", alert.alert_id), ("acknowledged", alert.alert_id)]
    finally:
        for svc in svcs:
            svc.rt.close()
