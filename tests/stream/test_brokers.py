"""MQTT (Mosquitto) and AMQP (RabbitMQ) through the same consumer loop, against the real brokers.

The exactly-once test kills the consumer process (SIGKILL) while it works through micro-batches,
restarts it, and checks that the store holds each published record exactly once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.sources.mapping import load_preset
from crimelens.store import connect
from crimelens.stream import StreamError, StreamOptions, consume
from tests.conftest import TEST_KEY
from tests.stream.conftest import BAD_MESSAGES, AmqpQueue, MqttTopic, bodies, socrata_record

pytestmark = pytest.mark.service
SOCRATA = load_preset("chicago_socrata")
runner = CliRunner()


@pytest.fixture(params=["mqtt", "amqp"])
def broker(request: pytest.FixtureRequest) -> MqttTopic | AmqpQueue:
    """Each broker in turn (skipped where it is not running)."""
    return request.getfixturevalue("mqtt_topic" if request.param == "mqtt" else "amqp_queue")  # type: ignore[no-any-return]


def _durable(b: MqttTopic | AmqpQueue) -> str:
    return b.durable if isinstance(b, MqttTopic) else "crimelens"


def _scheme(b: MqttTopic | AmqpQueue) -> str:
    return "mqtt" if isinstance(b, MqttTopic) else "amqp"


def _where(b: MqttTopic | AmqpQueue) -> str:
    return b.topic if isinstance(b, MqttTopic) else b.name


def test_batches_load_and_bad_or_oversized_messages_are_quarantined(broker: MqttTopic | AmqpQueue,
                                                                    tmp_path: Path) -> None:
    broker.publish(bodies([socrata_record(i) for i in range(150)]))
    broker.publish([b for b, _ in BAD_MESSAGES] + [b"{" + b" " * 5000 + b"}"])
    store = connect(str(tmp_path / "b.duckdb"))
    try:
        opts = StreamOptions(url=broker.url, durable=_durable(broker), batch=40, max_wait=0.5, idle_exit=1.0,
                             max_bytes=4096)
        summary = consume(store, SOCRATA, opts, key=TEST_KEY)
        assert summary.balanced() and summary.stopped_by == "idle"
        assert (summary.read, summary.stored, summary.quarantined, summary.messages) == (157, 150, 7, 156)
        assert summary.by_reason == {"bad_json": 2, "not_an_object": 2, "bad_date": 1, "missing_id": 1,
                                     "too_large": 1}
        assert summary.batches >= 4
        assert len(store.incidents(columns=["incident_id"])) == 150
        q = store.quarantine()
        assert q["file"].str.startswith(f"{_scheme(broker)}:{_where(broker)}#").all()
        assert q["line"].notna().all() and (q["line"] > 0).all()  # the broker position of each message
        big = q[q["reason"] == "too_large"]
        assert len(big) == 1 and json.loads(big["raw"].iloc[0])["_bytes"] == 5002
    finally:
        store.close()
    # everything was acknowledged: a second run finds nothing
    again = connect(str(tmp_path / "b2.duckdb"))
    try:
        rerun = consume(again, SOCRATA, StreamOptions(url=broker.url, durable=_durable(broker), batch=40,
                                                      max_wait=0.3, idle_exit=0.5), key=TEST_KEY)
    finally:
        again.close()
    assert rerun.read == 0 and rerun.messages == 0


def _cli(b: MqttTopic | AmqpQueue, db: Path, *extra: str) -> list[str]:
    return [sys.executable, "-c", "from crimelens.cli.app import main; main()", "stream", "--url", b.url,
            "--durable", _durable(b), "--preset", "chicago_socrata", "--db", str(db), "--max-wait", "0.2", *extra]


def _loads(db: Path) -> list[dict[str, Any]]:
    store = connect(str(db), read_only=True)
    try:
        frame = store.execute("SELECT report FROM files")  # type: ignore[attr-defined]
    finally:
        store.close()
    return [json.loads(r) for r in frame["report"]]


@pytest.mark.parametrize("kills", [3])
def test_sigkill_mid_batch_then_restart_stores_each_message_exactly_once(
    broker: MqttTopic | AmqpQueue, tmp_path: Path, kills: int
) -> None:
    n = 400
    db = tmp_path / "k.duckdb"
    connect(str(db)).close()
    broker.publish(bodies([socrata_record(i) for i in range(n)]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed_after: list[int] = []
    for k in range(kills):
        proc = subprocess.Popen(_cli(broker, db, "--batch", "20", "--idle-exit", "30"), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            assert proc.stdout is not None
            for _ in range(k + 1):  # let a few batches commit, then kill while the next one is in hand
                line = proc.stdout.readline()
                assert line.startswith("batch seq "), line + (proc.stderr.read() if proc.stderr else "")
            proc.send_signal(signal.SIGKILL)
            proc.wait(timeout=30)
        finally:
            if proc.poll() is None:
                proc.kill()
        killed_after.append(len(_loads(db)))
        time.sleep(0.3)  # the broker notices the dropped connection
    assert killed_after[-1] > 0
    store = connect(str(db), read_only=True)
    held = store.info()["incidents"]
    store.close()
    assert 0 < held < n  # the kills interrupted the stream part-way
    res = subprocess.run(_cli(broker, db, "--batch", "100", "--idle-exit", "2", "--json"), capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    final = json.loads(res.stdout)
    store = connect(str(db), read_only=True)
    try:
        ids = store.incidents(columns=["incident_id"])["incident_id"]
    finally:
        store.close()
    expected = {str(13_000_000 + i) for i in range(n)}
    assert len(ids) == n and set(ids) == expected  # each message exactly once
    loads = _loads(db)
    assert sum(r["stored"] for r in loads) == n
    assert all(r["read"] == r["stored"] + r["updated"] + r["duplicates"] + r["quarantined"] for r in loads)
    assert final["stored"] == n - held
    # what the broker handed out again after the kills was recognised, never stored twice
    assert sum(r["read"] for r in loads) == n + sum(r["duplicates"] for r in loads)


def test_unreachable_broker_and_missing_topic_exit_2_with_one_line(tmp_path: Path) -> None:
    db = str(tmp_path / "e.duckdb")
    for url, text in [("mqtt://127.0.0.1:1/t", "cannot reach MQTT at mqtt://127.0.0.1:1 "),
                      ("amqp://guest:secret@127.0.0.1:1/q", "cannot reach AMQP at amqp://127.0.0.1:1 "),
                      ("mqtt://127.0.0.1:1883", "give the MQTT topic"),
                      ("amqp://127.0.0.1:5672", "give the AMQP queue"),
                      ("kafka://127.0.0.1:9092/x", "unknown broker URL scheme")]:
        res = runner.invoke(app, ["stream", "--url", url, "--preset", "chicago_socrata", "--db", db, "--once"])
        assert res.exit_code == 2, (url, res.output)
        assert res.stderr.count("\n") == 1 and text in res.stderr, (url, res.stderr)
        assert "secret" not in res.stderr
    res = runner.invoke(app, ["stream", "--preset", "chicago_socrata", "--db", db, "--once"])
    assert res.exit_code == 2 and "NATS needs --stream and --subject" in res.stderr


def test_an_invalid_mqtt_topic_is_refused(mqtt_topic: MqttTopic, tmp_path: Path) -> None:
    store = connect(str(tmp_path / "t.duckdb"))
    try:
        with pytest.raises(StreamError, match=r"invalid topic|refused"):
            consume(store, SOCRATA, StreamOptions(url=mqtt_topic.base + "/a/#/b", durable=mqtt_topic.durable + "x",
                                                  idle_exit=0), key=TEST_KEY)
    finally:
        store.close()


def test_sigint_finishes_the_batch_and_a_restart_stores_the_rest(broker: MqttTopic | AmqpQueue,
                                                                 tmp_path: Path) -> None:
    n = 200
    db = tmp_path / "sig.duckdb"
    broker.publish(bodies([socrata_record(i) for i in range(n)]))
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(_cli(broker, db, "--batch", "5", "--idle-exit", "60"), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)
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
    batch_lines = [first, *[ln for ln in rest.splitlines() if ln.startswith("batch seq ")]]
    stored_by_run = sum(int(ln.split("stored ")[1].split()[0]) for ln in batch_lines)
    store = connect(str(db), read_only=True)
    held = store.info()["incidents"]
    store.close()
    assert 0 < held < n and held == stored_by_run  # stopped after whole batches
    res = subprocess.run(_cli(broker, db, "--batch", "100", "--idle-exit", "2", "--json"), capture_output=True,
                         text=True, env=env, timeout=120)
    assert res.returncode == 0, res.stderr
    out = json.loads(res.stdout)
    assert out["stored"] == n - held and out["stopped_by"] == "idle"
    store = connect(str(db), read_only=True)
    try:
        ids = store.incidents(columns=["incident_id"])["incident_id"]
    finally:
        store.close()
    assert len(ids) == n and ids.nunique() == n
