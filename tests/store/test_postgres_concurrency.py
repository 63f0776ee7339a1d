"""Loads into one PostgreSQL store from several processes: two ingests of the same source at once
neither lose nor double a row (the per-source advisory lock), and a load killed with SIGKILL leaves
all of its rows or none. Runs against $CRIMELENS_TEST_PG (default 127.0.0.1:5432); skips without it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import CHICAGO_HEADER, TEST_KEY, chicago_row, write_csv
from tests.service.conftest import PG_SERVER, pg_or_skip

psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")

SCRIPT = """
import json, sys
from crimelens.ingest import ingest_file
from crimelens.store import connect
s = connect(sys.argv[2])
print("started", flush=True)
r = ingest_file(s, sys.argv[1], key=sys.argv[3].encode(), chunk_rows=5_000)
s.close()
print(json.dumps(r.to_dict()), flush=True)
"""
ENV = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}


@pytest.fixture
def url() -> Iterator[str]:
    pg_or_skip()
    schema = f"t_conc_{uuid.uuid4().hex[:10]}"
    yield f"{PG_SERVER}?schema={schema}"
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _counts(url: str) -> tuple[int, int, int, int]:
    from crimelens.store.postgres import split_schema

    conninfo, schema = split_schema(url)
    with psycopg.connect(conninfo) as con:
        row = con.execute(
            f"SELECT (SELECT count(*) FROM {schema}.incidents), (SELECT count(DISTINCT incident_id) "
            f"FROM {schema}.incidents), (SELECT count(*) FROM {schema}.files), "
            f"(SELECT count(*) FROM {schema}.quarantine)").fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2]), int(row[3])


def _start(src: Path, url: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), url, TEST_KEY.decode()], env=ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_two_processes_ingest_one_source_at_once(url: str, tmp_path: Path) -> None:
    import json

    from crimelens.store.postgres import PostgresStore

    PostgresStore(url).close()  # the schema exists before both start, as on a server
    n = 20_000
    a = write_csv(tmp_path / "a.csv", [chicago_row(i) for i in range(n)], header=CHICAGO_HEADER)
    # b overlaps a by half and changes the overlapping rows (an update wherever it lands second)
    b = write_csv(tmp_path / "b.csv", [chicago_row(i, Arrest="true") for i in range(n // 2, n + n // 2)],
                  header=CHICAGO_HEADER)
    procs = [_start(a, url), _start(b, url)]
    outs = [p.communicate(timeout=300) for p in procs]
    for p, (_out, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err[-2000:]
    reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outs]
    for r in reports:
        assert r["read"] == r["stored"] + r["updated"] + r["duplicates"] + r["quarantined"]
    total, distinct, files, _ = _counts(url)
    assert (total, distinct, files) == (n + n // 2, n + n // 2, 2)
    assert sum(r["stored"] for r in reports) == n + n // 2  # every id stored once, by one of the two
    assert sum(r["updated"] for r in reports) == n // 2  # the overlap is an update in whichever came second


@pytest.mark.slow
def test_sigkill_during_postgres_ingest_leaves_all_or_nothing(url: str, tmp_path: Path) -> None:
    from crimelens.store.postgres import PostgresStore

    PostgresStore(url).close()
    n = 40_000
    rows = [chicago_row(i, Date=f"01/{1 + i % 28:02d}/2024 {1 + i % 12:02d}:{i % 60:02d}:00 PM") for i in range(n)]
    rows[7]["Date"] = "garbage"
    src = write_csv(tmp_path / "big.csv", rows, header=CHICAGO_HEADER)
    outcomes = []
    for delay in (0.5, 1.5, 3.0):
        proc = _start(src, url)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == "started"
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        time.sleep(0.3)  # the server notices the dropped connection and rolls its transaction back
        got = _counts(url)
        assert got in {(0, 0, 0, 0), (n - 1, n - 1, 1, 1)}, got
        outcomes.append("all" if got[2] else "none")
        if got[2]:
            break
    done = _start(src, url)
    _out, err = done.communicate(timeout=300)
    assert done.returncode == 0, err[-2000:]
    assert _counts(url) == (n - 1, n - 1, 1, 1)
    assert outcomes and outcomes[0] == "none"  # killed half a second in, nothing of it is visible
