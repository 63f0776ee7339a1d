"""``crimelens serve --stream URL`` on DuckDB: the stream runs inside the service (issue 19, gap 1).

While the service holds a DuckDB file, DuckDB lets no other process open it: a separate
``crimelens stream --db`` on the same file is refused as busy. With ``--stream`` the service's own
consumer loads the real NATS JetStream stream, each micro-batch reaches an SSE client (httpx
streaming) with its incident ids, and after shutdown the store holds each record exactly once.
Skips with a reason without NATS.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from crimelens.store import connect
from tests.service.conftest import PASSWORDS, template_store
from tests.service.test_pg_workers import _env, serving
from tests.stream.conftest import JetStream, bodies, socrata_record
from tests.stream.test_live_hub import _Sse, _wait

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")
pytestmark = [pytest.mark.service, pytest.mark.slow]
__all__ = ["template_store"]  # the session fixture, shared with tests/service


def test_serve_stream_consumes_into_duckdb_and_reaches_the_live_feed(
    template_store: Path, jetstream: JetStream, tmp_path: Path
) -> None:
    db = tmp_path / "live.duckdb"
    shutil.copy(template_store, db)
    ids = {str(13_000_000 + i) for i in range(80)}
    args = ("--stream", jetstream.url, "--stream-name", jetstream.name, "--stream-subject", jetstream.subject,
            "--stream-preset", "chicago_socrata")
    with serving(str(db), tmp_path, 1, *args) as base:
        token = httpx.post(f"{base}/api/v1/auth/login", timeout=30,
                           json={"username": "analyst", "password": PASSWORDS["analyst"]}).json()["access_token"]
        sse = _Sse(base, token)
        try:
            t0 = time.perf_counter()
            jetstream.publish(bodies([socrata_record(i) for i in range(80)]))
            _wait(lambda: {i for d in sse.incidents() for i in d["incident_ids"]} >= ids, 20)
            print(f"publish -> SSE through serve --stream: {time.perf_counter() - t0:.2f} s")
            seen = [i for d in sse.incidents() for i in d["incident_ids"]]
            assert sorted(seen) == sorted(ids)  # each once
        finally:
            sse.close()
        other = subprocess.run(  # a second process cannot open the file the service holds
            [sys.executable, "-m", "crimelens.cli.app", "stream", "--url", jetstream.url, "--stream", jetstream.name,
             "--subject", jetstream.subject, "--preset", "chicago_socrata", "--db", str(db), "--once"],
            env=_env(tmp_path), capture_output=True, text=True, timeout=60)
        assert other.returncode != 0 and "busy" in other.stderr, other.stderr
    store = connect(str(db), read_only=True)
    got = store.execute("SELECT incident_id, count(*) AS n FROM incidents WHERE "  # type: ignore[attr-defined]
                        "incident_id LIKE '130000%' GROUP BY 1")
    store.close()
    assert set(got["incident_id"]) == ids and set(got["n"]) == {1}
