"""``crimelens serve --workers 2`` on PostgreSQL: /metrics counts the requests of both workers
(prometheus-client multiprocess mode), whichever worker answers the scrape, and the separate
``--metrics-bind`` port served by the supervising process agrees. Skips without PostgreSQL."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.service.conftest import PgTemplate, pg_admin, pg_url

httpx = pytest.importorskip("httpx")
parser = pytest.importorskip("prometheus_client.parser")

TOKEN = "workers-scrape-token-0123456789"
HEALTH = {"method": "GET", "route": "/api/v1/health", "status": "200"}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _health_count(text: str) -> float:
    for fam in parser.text_string_to_metric_families(text):
        for s in fam.samples:
            if s.name == "crimelens_http_requests_total" and s.labels == HEALTH:
                return s.value
    return 0.0


@pytest.fixture
def served(pg_template: PgTemplate, tmp_path: Path) -> Iterator[tuple[str, str]]:
    name = f"svc_m_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template.database}")
    port, mport = _free_port(), _free_port()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CRIMELENS_PSEUDONYM_KEY": TEST_KEY.decode(),
           "CRIMELENS_METRICS_TOKEN": TOKEN, "CRIMELENS_UPLOAD_DIR": str(tmp_path / "uploads")}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimelens.cli.app", "serve", "--db", pg_url(name), "--port", str(port),
         "--workers", "2", "--metrics-bind", f"127.0.0.1:{mport}"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 60
        while time.time() < end:
            try:
                if httpx.get(f"{base}/livez", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        else:
            raise AssertionError("the service did not start")
        time.sleep(1.0)  # both workers up
        yield base, f"http://127.0.0.1:{mport}"
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.mark.slow
def test_two_workers_are_counted_together(served: tuple[str, str]) -> None:
    base, metrics_port = served
    auth = {"Authorization": f"Bearer {TOKEN}"}
    n = 40
    for _ in range(n):  # a fresh connection each, so the kernel spreads them over the workers
        with httpx.Client(timeout=10) as c:
            assert c.get(f"{base}/api/v1/health").status_code == 200
    scrapes = set()
    for _ in range(10):  # scrapes land on either worker; each answers for both
        with httpx.Client(timeout=10) as c:
            r = c.get(f"{base}/metrics", headers=auth)
            assert r.status_code == 200, r.text
            scrapes.add(_health_count(r.text))
    assert scrapes == {float(n)}, scrapes
    r = httpx.get(f"{metrics_port}/metrics", timeout=10)  # the supervisor's tokenless port agrees
    assert r.status_code == 200 and _health_count(r.text) == n
    assert "crimelens_ingest_rows_total" in r.text  # with the store's series


def test_bad_metrics_bind_is_one_line_exit_2(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "crimelens.cli.app", "serve", "--db", str(tmp_path / "x.duckdb"),
                        "--metrics-bind", "nonsense"], capture_output=True, text=True, timeout=60,
                       env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --metrics-bind must be HOST:PORT (e.g. 127.0.0.1:9464), got 'nonsense'"]
