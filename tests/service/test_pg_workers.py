"""``crimelens serve --workers 2`` against one PostgreSQL database, over real HTTP: sessions, jobs
and the audit chain are shared by the workers, an upload loaded by one worker is seen by every
worker's cached aggregates within a second, and concurrent audited requests keep one unbroken
chain. DuckDB refuses more than one worker. Skips with a reason without a PostgreSQL server."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import CHICAGO_HEADER, TEST_KEY
from tests.service.conftest import PASSWORDS, PgTemplate, chicago_rows, pg_admin, pg_url, write_rows

httpx = pytest.importorskip("httpx")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path), "CRIMELENS_PSEUDONYM_KEY": TEST_KEY.decode(),
            "CRIMELENS_ARGON2_TIME_COST": "1", "CRIMELENS_ARGON2_MEMORY_KIB": "1024",
            "CRIMELENS_RATE_LOGIN_PER_MINUTE": "1000", "CRIMELENS_RATE_SEARCH_PER_MINUTE": "100000",
            "CRIMELENS_UPLOAD_DIR": str(tmp / "uploads")}


@contextmanager
def serving(url: str, tmp: Path, workers: int, *extra: str) -> Iterator[str]:
    """``crimelens serve --workers N [EXTRA]`` on ``url`` in a subprocess; yields its base URL once it answers."""
    port = _free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "crimelens.cli.app", "serve", "--db", url, "--port", str(port),
         "--workers", str(workers), *extra], env=_env(tmp), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        end = time.time() + 60
        while time.time() < end:
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert proc.poll() is None, proc.stdout.read() if proc.stdout else ""
            time.sleep(0.2)
        else:
            raise AssertionError("the service did not start")
        time.sleep(1.0)  # every worker up
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture
def served(pg_template: PgTemplate, tmp_path: Path) -> Iterator[str]:
    name = f"svc_w_{uuid.uuid4().hex[:12]}"
    pg_admin(f"CREATE DATABASE {name} TEMPLATE {pg_template.database}")
    try:
        with serving(pg_url(name), tmp_path, 2) as base:
            yield base
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _total(client: Any, base: str, h: dict[str, str]) -> int:
    body = client.get(f"{base}/api/v1/aggregates/categories", headers=h).json()
    return sum(int(r["count"]) for r in body["rows"])


def test_two_workers_share_sessions_jobs_caches_and_the_audit_chain(served: str, tmp_path: Path) -> None:
    base = served
    with httpx.Client(timeout=30) as c:
        r = c.post(f"{base}/api/v1/auth/login", json={"username": "analyst", "password": PASSWORDS["analyst"]})
        assert r.status_code == 200, r.text
        h = {"Authorization": f"Bearer {r.json()['access_token']}"}
        pids = {c.get(f"{base}/api/v1/aggregates/categories", headers=h).status_code for _ in range(20)}
        assert pids == {200}  # the session made by one worker is honoured by both
        before = _total(c, base, h)
        path = write_rows(tmp_path / "new.csv", chicago_rows(40, seed=5, start_id=88_000_000), CHICAGO_HEADER)
        r = c.post(f"{base}/api/v1/ingest", headers=h, data={"preset": "chicago"},
                   files={"file": (path.name, path.read_bytes(), "text/csv")})
        assert r.status_code == 202, r.text
        job = r.json()["id"]
        end = time.time() + 60
        while c.get(f"{base}/api/v1/jobs/{job}", headers=h).json()["status"] not in ("done", "failed"):
            assert time.time() < end
            time.sleep(0.1)
        assert c.get(f"{base}/api/v1/jobs/{job}", headers=h).json()["status"] == "done"
        time.sleep(1.0)  # past the poll interval of every worker
        totals = {_total(c, base, h) for _ in range(20)}  # spread over both workers' caches
        assert totals == {before + 40}, (before, totals)

    def login(_: int) -> int:
        with httpx.Client(timeout=30) as cc:
            return cc.post(f"{base}/api/v1/auth/login",
                           json={"username": "admin", "password": PASSWORDS["admin"]}).status_code

    with ThreadPoolExecutor(8) as pool:  # audited logins land on both workers at once
        assert set(pool.map(login, range(24))) == {200}
    with httpx.Client(timeout=30) as c:
        r = c.post(f"{base}/api/v1/auth/login", json={"username": "admin", "password": PASSWORDS["admin"]})
        ha = {"Authorization": f"Bearer {r.json()['access_token']}"}
        v = c.get(f"{base}/api/v1/audit/verify", headers=ha).json()
        assert v["ok"] and v["first_bad"] is None and v["rows"] >= 26, v


def test_duckdb_refuses_more_than_one_worker(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "crimelens.cli.app", "serve", "--db", str(tmp_path / "x.duckdb"),
                        "--workers", "2"], env=_env(tmp_path), capture_output=True, text=True, timeout=60)
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "error: --workers > 1 needs a PostgreSQL store (a DuckDB file has a single writing process)"]
