"""A real Prometheus server (Debian's ``prometheus``) scrapes a running service and sees a counter move.

The service runs as ``crimelens serve`` in a subprocess (uvicorn, JSON logs) on a free loopback
port; Prometheus gets a temporary config that scrapes ``/metrics`` every second with the bearer
token, and the test reads the counter back through Prometheus's HTTP API. Skips when
``/usr/bin/prometheus`` is absent. The service's log is then checked for personal data (AUD-06).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import TEST_KEY
from tests.service.conftest import SECRET_NAME

PROMETHEUS = os.environ.get("CRIMELENS_TEST_PROMETHEUS", "/usr/bin/prometheus")
TOKEN = "prometheus-scrape-token-0123456789"
HEALTH = 'crimelens_http_requests_total{route="/api/v1/health",status="200"}'


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait(url: str, proc: subprocess.Popen[str], deadline_s: float = 40) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise AssertionError(f"{proc.args[0]} exited early: {proc.stdout.read() if proc.stdout else ''}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {deadline_s} s")


def _stop(proc: subprocess.Popen[str]) -> str:
    proc.terminate()
    try:
        out, _ = proc.communicate(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    return out or ""


class Served:
    """``crimelens serve`` in a subprocess; :meth:`stop` ends it and returns its log."""

    def __init__(self, proc: subprocess.Popen[str], base: str) -> None:
        self.proc, self.base, self.log = proc, base, ""

    def stop(self) -> str:
        if self.proc.poll() is None:
            self.log = _stop(self.proc)
        return self.log


@pytest.fixture
def service(template_store: Path, tmp_path: Path) -> Iterator[Served]:
    db = tmp_path / "store.duckdb"
    shutil.copy(template_store, db)
    port = _free_port()
    env = {**os.environ, "CRIMELENS_METRICS_TOKEN": TOKEN, "CRIMELENS_LOG_FORMAT": "json",
           "CRIMELENS_PSEUDONYM_KEY": TEST_KEY.decode(), "CRIMELENS_ARGON2_TIME_COST": "1",
           "CRIMELENS_ARGON2_MEMORY_KIB": "1024"}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    proc = subprocess.Popen([sys.executable, "-m", "crimelens.cli.app", "serve", "--db", str(db), "--port", str(port)],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    served = Served(proc, f"http://127.0.0.1:{port}")
    try:
        _wait(f"{served.base}/livez", proc)
        yield served
    finally:
        served.stop()


@pytest.fixture
def prometheus(service: Served, tmp_path: Path) -> Iterator[str]:
    if not Path(PROMETHEUS).exists():
        pytest.skip(f"no Prometheus server at {PROMETHEUS} (Debian package prometheus; make system-deps)")
    target = service.base.removeprefix("http://")
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
        "scrape_configs:\n  - job_name: crimelens\n    metrics_path: /metrics\n"
        f"    authorization:\n      type: Bearer\n      credentials: {TOKEN}\n"
        f"    static_configs:\n      - targets: ['{target}']\n", encoding="utf-8")
    port = _free_port()
    proc = subprocess.Popen([PROMETHEUS, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{port}"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        _wait(f"{base}/-/ready", proc)
        yield base
    finally:
        _stop(proc)


def _query(prom: str, expr: str) -> float | None:
    r = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5).json()
    assert r["status"] == "success", r
    result = r["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def _until(prom: str, expr: str, ok: object, deadline_s: float = 30) -> float:
    end = time.monotonic() + deadline_s
    value = None
    while time.monotonic() < end:
        value = _query(prom, expr)
        if value is not None and ok(value):  # type: ignore[operator]
            return value
        time.sleep(0.5)
    raise AssertionError(f"{expr} = {value} after {deadline_s} s")


@pytest.mark.slow
def test_prometheus_scrapes_the_service_and_sees_the_counter_move(service: Served, prometheus: str) -> None:
    base = service.base
    _until(prometheus, 'up{job="crimelens"}', lambda v: v == 1)  # scraped, with the token
    assert httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200  # the series exists from now on
    before = _until(prometheus, HEALTH, lambda v: v >= 1)
    for _ in range(5):
        assert httpx.get(f"{base}/api/v1/health", timeout=5).status_code == 200
    after = _until(prometheus, HEALTH, lambda v: v >= before + 5)
    assert after >= before + 5
    stored = _until(prometheus, 'crimelens_ingest_rows_total{outcome="stored"}', lambda v: v > 0)
    assert stored == 2430  # the template store: 2,400 Chicago and 30 Madison incidents
    from tests.service.test_metrics import dashboard_exprs

    for expr in dashboard_exprs():  # the example Grafana dashboard's queries parse and run
        if expr.startswith("label_values("):  # Grafana's template function: its series selector
            expr = expr.removeprefix("label_values(").rsplit(",", 1)[0]
        r = httpx.get(f"{prometheus}/api/v1/query", params={"query": expr.replace("$job", "crimelens")}, timeout=5)
        assert r.json()["status"] == "success", (expr, r.text)


def test_service_json_log_has_no_personal_data(service: Served) -> None:
    base = service.base
    assert httpx.get(f"{base}/api/v1/incidents", params={"q": SECRET_NAME}, timeout=5).status_code == 401
    httpx.get(f"{base}/api/v1/health", params={"victim": SECRET_NAME}, timeout=5)
    assert SECRET_NAME not in httpx.get(f"{base}/metrics", headers={"Authorization": f"Bearer {TOKEN}"},
                                        timeout=5).text
    log = service.stop()
    lines = [json.loads(line) for line in log.splitlines() if line.startswith("{")]
    access = [x for x in lines if x["logger"] == "uvicorn.access"]
    assert {"/api/v1/incidents", "/api/v1/health", "/livez"} <= {x["path"] for x in access}
    assert all(set(x) <= {"ts", "level", "logger", "msg", "method", "path", "status"} for x in access)
    assert "Zebulon" not in log and "Quartermaine" not in log
