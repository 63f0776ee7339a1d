"""The Python API (no CLI) against a real NATS JetStream server and real DuckDB stores."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")

from crimelens.sources.mapping import load_preset
from crimelens.store import connect
from crimelens.stream import Message, StreamError, StreamOptions, consume, load_batch
from tests.conftest import TEST_KEY
from tests.stream.conftest import BAD_MESSAGES, JetStream, bodies, socrata_record

pytestmark = pytest.mark.service
SOCRATA = load_preset("chicago_socrata")


def _options(js: JetStream, **kw: object) -> StreamOptions:
    args: dict[str, object] = {"url": js.url, "batch": 50, "max_wait": 0.3, "idle_exit": 0.0}
    args.update(kw)
    return StreamOptions(js.name, js.subject, **args)  # type: ignore[arg-type]


def test_consume_loads_micro_batches_and_quarantines_bad_messages(jetstream: JetStream, tmp_path: Path) -> None:
    seqs = jetstream.publish(bodies([socrata_record(i) for i in range(120)]))
    bad_seqs = jetstream.publish([b for b, _ in BAD_MESSAGES])
    seen: list[tuple[int, int]] = []
    store = connect(str(tmp_path / "s.duckdb"))
    try:
        summary = consume(store, SOCRATA, _options(jetstream), key=TEST_KEY,
                          on_batch=lambda r, m: seen.append((r.read, len(m))))
        assert summary.balanced() and summary.stopped_by == "idle"
        assert summary.stored == 120 and summary.quarantined == 6 and summary.read == 126
        assert summary.by_reason == {"bad_json": 2, "not_an_object": 2, "bad_date": 1, "missing_id": 1}
        assert summary.messages == 125 and summary.batches == len(seen) >= 3
        assert (summary.first_seq, summary.last_seq) == (seqs[0], bad_seqs[-1])
        assert all(n <= 50 for _, n in seen)
        assert len(store.incidents(columns=["incident_id"])) == 120
        q = store.quarantine()
        expected = sorted((s, r) for s, (_, reasons) in zip(bad_seqs, BAD_MESSAGES, strict=True) for r in reasons)
        assert sorted(zip(q["line"], q["reason"], strict=True)) == expected
        assert q["file"].str.startswith(f"nats:{jetstream.name}#").all()
    finally:
        store.close()
    info = jetstream.consumer()
    assert info.num_pending == 0 and info.num_ack_pending == 0 and info.ack_floor.stream_seq == bad_seqs[-1]


def test_a_redelivered_batch_counts_as_duplicates(jetstream: JetStream, tmp_path: Path) -> None:
    msgs = [Message(i + 1, b) for i, b in enumerate(bodies([socrata_record(i) for i in range(30)]))]
    store = connect(str(tmp_path / "r.duckdb"))
    try:
        first = load_batch(store, SOCRATA, msgs, key=TEST_KEY, stream=jetstream.name)
        before = store.incidents(columns=["incident_id", "row_hash", "batch_id"])
        # the same messages again, in other micro-batches, one of them with extra null fields
        again = load_batch(store, SOCRATA, msgs[:10], key=TEST_KEY, stream=jetstream.name)
        changed = bodies([socrata_record(i, extra_null=None) for i in range(10, 30)])
        third = load_batch(store, SOCRATA, [Message(100 + i, b) for i, b in enumerate(changed)], key=TEST_KEY,
                           stream=jetstream.name)
        after = store.incidents(columns=["incident_id", "row_hash", "batch_id"])
    finally:
        store.close()
    assert (first.stored, first.duplicates) == (30, 0)
    assert (again.stored, again.updated, again.duplicates) == (0, 0, 10)
    assert (third.stored, third.updated, third.duplicates) == (0, 0, 20)
    assert before.sort_values("incident_id").reset_index(drop=True).equals(
        after.sort_values("incident_id").reset_index(drop=True))


@pytest.mark.parametrize("broken", ["read_only", "closed"])
def test_a_failing_load_acks_nothing_and_a_rerun_stores_everything(
    jetstream: JetStream, tmp_path: Path, broken: str
) -> None:
    path = str(tmp_path / "f.duckdb")
    connect(path).close()
    jetstream.publish(bodies([socrata_record(i) for i in range(80)]))
    if broken == "read_only":
        bad = connect(path, read_only=True)
    else:
        bad = connect(path)
        bad.close()  # a real store whose connection is gone: the load raises inside the batch
    with pytest.raises(StreamError, match=r"acknowledged|read-only"):
        consume(bad, SOCRATA, _options(jetstream), key=TEST_KEY)
    bad.close()
    info = jetstream.consumer()
    assert info.ack_floor.stream_seq == 0  # nothing acknowledged
    store = connect(path)
    try:
        assert store.info()["incidents"] == 0
        summary = consume(store, SOCRATA, _options(jetstream), key=TEST_KEY)
        assert summary.balanced() and summary.stored == 80 and summary.read == 80
        assert store.info()["incidents"] == 80
    finally:
        store.close()
    assert jetstream.consumer().ack_floor.stream_seq == 80


def test_missing_stream_and_unreachable_server_raise_stream_error(jetstream: JetStream, tmp_path: Path) -> None:
    store = connect(str(tmp_path / "m.duckdb"))
    try:
        with pytest.raises(StreamError, match=r"stream .NO_SUCH_STREAM_X. not found"):
            consume(store, SOCRATA, StreamOptions("NO_SUCH_STREAM_X", "x.y", url=jetstream.url, idle_exit=0),
                    key=TEST_KEY)
        with pytest.raises(StreamError, match=r"cannot reach NATS at nats://127\.0\.0\.1:1 ") as err:
            consume(store, SOCRATA, StreamOptions(jetstream.name, jetstream.subject, url="nats://u:secret@127.0.0.1:1",
                                                  idle_exit=0, connect_timeout=0.5), key=TEST_KEY)
        assert "secret" not in str(err.value)  # credentials never appear in messages
    finally:
        store.close()


def test_a_durable_bound_to_another_subject_is_refused(jetstream: JetStream, tmp_path: Path) -> None:
    store = connect(str(tmp_path / "d.duckdb"))
    try:
        consume(store, SOCRATA, _options(jetstream), key=TEST_KEY)
        with pytest.raises(StreamError, match="give another --durable"):
            consume(store, SOCRATA, StreamOptions(jetstream.name, jetstream.subject + ".other", url=jetstream.url,
                                                  idle_exit=0), key=TEST_KEY)
    finally:
        store.close()
