"""Message bodies → raw chunks and quarantine rows (pure; no server needed)."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("nats", reason="nats-py is not installed (pip install 'crimelens[stream]')")

from crimelens.stream.records import Message, decode, flatten, rejected_table, to_chunks
from tests.stream.conftest import socrata_record


def test_object_array_and_ndjson_bodies_become_records() -> None:
    a, b, c = socrata_record(1), socrata_record(2), socrata_record(3)
    msgs = [
        Message(7, json.dumps(a).encode()),
        Message(8, json.dumps([b, c]).encode()),
        Message(9, (json.dumps(a) + "\n" + json.dumps(b) + "\n").encode()),
    ]
    out = decode(msgs)
    assert [seq for seq, _ in out.records] == [7, 8, 8, 9, 9] and not out.rejections
    assert out.records[0][1]["arrest"] == "false" and out.records[0][1]["domestic"] == "true"
    assert json.loads(out.records[0][1]["location"])["type"] == "Point"


def test_unusable_messages_are_rejected_with_their_sequence() -> None:
    msgs = [Message(1, b"{oops"), Message(2, b"\xff\xfe"), Message(3, b"[1, {\"id\": \"x\"}]"), Message(4, b"42"),
            Message(5, b"{\"id\": \"a\"}\nnot json\n"), Message(6, b"")]
    out = decode(msgs)
    assert [(r.seq, r.reason) for r in out.rejections] == [
        (1, "bad_json"), (2, "bad_json"), (3, "not_an_object"), (4, "not_an_object"), (5, "bad_json"), (6, "bad_json")]
    assert [seq for seq, _ in out.records] == [3, 5]
    table = rejected_table(out.rejections, source="s", file="nats:X#1-6", batch_id="b")
    assert table.column("line").to_pylist() == [1, 2, 3, 4, 5, 6]
    assert json.loads(table.column("raw")[0].as_py()) == {"_message": "{oops"}
    assert json.loads(table.column("raw")[2].as_py()) == {"_value": 1}


def test_flatten_spells_values_like_a_csv_reader() -> None:
    assert flatten({"a": 1, "b": 2.5, "c": True, "d": None, "e": {"y": 1, "x": [1, 2]}, "f": "  s "}) == {
        "a": "1", "b": "2.5", "c": "true", "e": '{"x":[1,2],"y":1}', "f": "  s "}


def test_a_records_raw_row_does_not_depend_on_its_batch() -> None:
    rec = flatten(socrata_record(5))
    other = flatten(socrata_record(6, note="x", ward=None))
    alone = to_chunks([(1, rec)], ["id", "date", "ward", "x_coordinate"])
    mixed = to_chunks([(9, other), (10, rec), (11, dict(rec))], ["id", "date", "ward", "x_coordinate"])
    assert len(alone) == 1 and len(mixed) == 2  # grouped by the fields present
    same = mixed[1]
    assert same.table.column_names == alone[0].table.column_names
    assert same.table.slice(0, 1).equals(alone[0].table)
    assert same.records.tolist() == [10, 11]
    # the mapping's columns a record lacks are present as nulls
    assert mixed[0].table.column("ward").null_count == 1
