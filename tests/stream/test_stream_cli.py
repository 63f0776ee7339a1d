"""``crimelens stream`` against a real NATS JetStream server, into temporary DuckDB stores."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.store import connect
from tests.stream.conftest import BAD_MESSAGES, JetStream, bodies, socrata_record

pytestmark = pytest.mark.service
runner = CliRunner()


def stream_cmd(js: JetStream, db: Path, *extra: str) -> list[str]:
    return ["stream", "--url", js.url, "--stream", js.name, "--subject", js.subject, "--preset", "chicago_socrata",
            "--db", str(db), "--max-wait", "0.3", *extra]


def test_drain_then_republish_counts_duplicates_and_leaves_the_store_unchanged(
    jetstream: JetStream, tmp_path: Path
) -> None:
    db = tmp_path / "s.duckdb"
    records = bodies([socrata_record(i) for i in range(200)])
    jetstream.publish(records)
    bad_seqs = jetstream.publish([b for b, _ in BAD_MESSAGES])
    res = runner.invoke(app, stream_cmd(jetstream, db, "--once", "--batch", "64", "--json"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["read"] == out["stored"] + out["updated"] + out["duplicates"] + out["quarantined"] == 206
    assert (out["stored"], out["quarantined"], out["batches"]) == (200, 6, 4)
    assert out["by_reason"] == {"bad_json": 2, "not_an_object": 2, "bad_date": 1, "missing_id": 1}
    assert res.stderr.count("batch seq ") == 4  # per-batch lines go to stderr with --json
    store = connect(str(db), read_only=True)
    before = store.incidents(columns=["incident_id", "row_hash", "batch_id"]).sort_values("incident_id")
    lines = sorted(zip(store.quarantine()["line"], store.quarantine()["reason"], strict=True))
    store.close()
    assert len(before) == 200
    assert lines == sorted((s, r) for s, (_, reasons) in zip(bad_seqs, BAD_MESSAGES, strict=True) for r in reasons)

    jetstream.publish(records)  # the same records again, as new messages
    res = runner.invoke(app, stream_cmd(jetstream, db, "--idle-exit", "0.5", "--batch", "500"))
    assert res.exit_code == 0, res.output
    assert "read 200  stored 0  updated 0  duplicates 200  quarantined 0" in res.stdout
    store = connect(str(db), read_only=True)
    after = store.incidents(columns=["incident_id", "row_hash", "batch_id"]).sort_values("incident_id")
    store.close()
    assert after.reset_index(drop=True).equals(before.reset_index(drop=True))


def test_unreachable_server_and_missing_stream_exit_2_with_one_line(jetstream: JetStream, tmp_path: Path) -> None:
    db = str(tmp_path / "e.duckdb")
    res = runner.invoke(app, ["stream", "--url", "nats://127.0.0.1:1", "--stream", "X", "--subject", "x",
                              "--preset", "chicago_socrata", "--db", db, "--once"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "cannot reach NATS" in res.stderr
    res = runner.invoke(app, ["stream", "--url", jetstream.url, "--stream", "NO_SUCH_STREAM_Y", "--subject", "x",
                              "--preset", "chicago_socrata", "--db", db, "--once"])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1 and "stream 'NO_SUCH_STREAM_Y' not found" in res.stderr
    res = runner.invoke(app, ["stream", "--stream", "X", "--subject", "x", "--db", db])
    assert res.exit_code == 2 and "--preset or --mapping" in res.stderr


def test_sigint_finishes_the_batch_and_leaves_the_store_consistent(jetstream: JetStream, tmp_path: Path) -> None:
    db = tmp_path / "sig.duckdb"
    jetstream.publish(bodies([socrata_record(i) for i in range(200)]))
    cmd = [sys.executable, "-c", "from crimelens.cli.app import main; main()",
           *stream_cmd(jetstream, db, "--batch", "5", "--idle-exit", "60")]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"})
    try:
        assert proc.stdout is not None
        first = proc.stdout.readline()
        assert first.startswith("batch seq "), first + (proc.stderr.read() if proc.stderr else "")
        proc.send_signal(signal.SIGINT)
        started = time.monotonic()
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 30  # not the 60 s idle exit
    summary = rest.strip().splitlines()
    batch_lines = [first, *[ln for ln in summary if ln.startswith("batch seq ")]]
    stored_by_run = sum(int(ln.split("stored ")[1].split()[0]) for ln in batch_lines)
    store = connect(str(db), read_only=True)
    n = store.info()["incidents"]
    loads = store.execute("SELECT report FROM files")  # type: ignore[attr-defined]
    store.close()
    reports = [json.loads(r) for r in loads["report"]]
    assert 0 < n < 200  # stopped part-way, after whole batches
    assert n == stored_by_run == sum(r["stored"] for r in reports)
    assert all(r["read"] == r["stored"] + r["updated"] + r["duplicates"] + r["quarantined"] for r in reports)
    info = jetstream.consumer()
    assert info.num_ack_pending == 0 and info.ack_floor.stream_seq == n  # every committed batch acked, no more

    res = runner.invoke(app, stream_cmd(jetstream, db, "--once", "--json"))
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["stored"] == 200 - n and out["duplicates"] == 0 and out["stopped_by"] == "idle"
    store = connect(str(db), read_only=True)
    assert store.info()["incidents"] == 200
    store.close()
