"""Stream messages → the raw-table form the file readers give, plus quarantine rows for the rest.

Pure functions (no network): the consumer hands them ``(sequence, body)`` pairs.

A message body is UTF-8 JSON holding one incident record as an object in the source's own
field names (``{"id": "13311263", "date": "2024-01-15T23:30:00.000", ...}``), a JSON array of
such objects, or NDJSON (one object per line). Values become the strings a CSV reader would
give: strings as they are, numbers in JSON spelling, booleans as ``true``/``false``, nested
objects and arrays as compact JSON, ``null`` as a missing value.

A body that is not valid JSON, a JSON value that is not an object, and a body over the size
limit cannot be cleaned: each becomes one quarantine row (reason ``bad_json``, ``not_an_object``
or ``too_large``, the latter keeping only the first bytes) whose "line" is the message's broker
position (NATS stream sequence, MQTT packet id, AMQP delivery tag). Records that parse are
cleaned like file rows; the rows cleaning rejects are quarantined with the same position as their
line.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import pyarrow as pa

from crimelens.schema import QUARANTINE_SCHEMA
from crimelens.sources.readers import RawChunk

#: Quarantine reasons for messages refused before cleaning, with their messages.
REASONS = {
    "bad_json": "message is not valid UTF-8 JSON",
    "not_an_object": "JSON value is not an object (one incident record)",
    "too_large": "message is larger than the size limit (first bytes kept)",
}

#: Default largest message body decoded (bytes); larger bodies are quarantined as ``too_large``.
MAX_BYTES = 1_048_576
#: Bytes of an oversized body kept in its quarantine row.
_KEEP = 256


@dataclass(frozen=True, slots=True)
class Message:
    """One broker message: its position (stream sequence, packet id, delivery tag) and its body.

    ``handle`` is the broker's own delivery object (to acknowledge it); it takes no part in
    equality.
    """

    seq: int
    data: bytes
    handle: Any = field(default=None, compare=False, repr=False)


@dataclass(frozen=True, slots=True)
class Rejection:
    """A message (or an element of one) that holds no record; ``raw`` is a JSON object."""

    seq: int
    reason: str
    raw: str


@dataclass(slots=True)
class Decoded:
    """The records of a batch of messages, each with its sequence, and the rejections."""

    records: list[tuple[int, dict[str, str]]]
    rejections: list[Rejection]


def decode(messages: Iterable[Message], *, max_bytes: int | None = MAX_BYTES) -> Decoded:
    """Parse message bodies into flat string records (see the module docstring).

    Bodies longer than ``max_bytes`` (None: no limit) are rejected as ``too_large``.
    """
    out = Decoded([], [])
    for msg in messages:
        if max_bytes is not None and len(msg.data) > max_bytes:
            head = msg.data[:_KEEP].decode("utf-8", errors="replace")
            raw = json.dumps({"_message_head": head, "_bytes": len(msg.data)}, ensure_ascii=False)
            out.rejections.append(Rejection(msg.seq, "too_large", raw))
            continue
        try:
            text = msg.data.decode("utf-8")
        except UnicodeDecodeError:
            out.rejections.append(_bad_json(msg.seq, msg.data.decode("utf-8", errors="replace")))
            continue
        try:
            values = _values(json.loads(text))
        except json.JSONDecodeError:
            lines = [ln for ln in text.splitlines() if ln.strip()]
            if len(lines) < 2:
                out.rejections.append(_bad_json(msg.seq, text))
                continue
            values = []
            for line in lines:  # NDJSON: each line stands alone
                try:
                    values.append(json.loads(line))
                except json.JSONDecodeError:
                    out.rejections.append(_bad_json(msg.seq, line))
        for value in values:
            if isinstance(value, dict):
                out.records.append((msg.seq, flatten(value)))
            else:
                raw = json.dumps({"_value": value}, ensure_ascii=False)
                out.rejections.append(Rejection(msg.seq, "not_an_object", raw))
    return out


def _values(doc: Any) -> list[Any]:
    return list(doc) if isinstance(doc, list) else [doc]


def _bad_json(seq: int, text: str) -> Rejection:
    return Rejection(seq, "bad_json", json.dumps({"_message": text}, ensure_ascii=False))


def flatten(record: dict[str, Any]) -> dict[str, str]:
    """A JSON object as the strings a CSV reader would give; ``null`` values are left out."""
    out: dict[str, str] = {}
    for k, v in record.items():
        if v is None:
            continue
        if isinstance(v, str):
            out[str(k)] = v
        elif isinstance(v, bool):
            out[str(k)] = "true" if v else "false"
        elif isinstance(v, int):
            out[str(k)] = str(v)  # json.dumps(v) spells ints the same, three times slower
        elif isinstance(v, float):
            out[str(k)] = repr(v) if math.isfinite(v) else json.dumps(v)  # JSON's spelling: 0.5, 1e-07, NaN
        else:
            out[str(k)] = json.dumps(v, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return out


def to_chunks(records: Sequence[tuple[int, dict[str, str]]], columns: Iterable[str]) -> list[RawChunk]:
    """Raw chunks of string columns, one per set of fields present, each with every ``columns`` name.

    Records are grouped by the fields they carry and each group's columns are sorted, padded
    with null columns for the mapping's ``columns`` a record lacks. A record's raw row (and so
    its row hash) then depends on the record alone, never on the other records of its batch:
    a redelivered or republished record is recognised as a duplicate.
    """
    wanted = list(columns)
    groups: dict[tuple[str, ...], list[tuple[int, dict[str, str]]]] = {}
    for seq, rec in records:
        groups.setdefault(tuple(sorted(rec)), []).append((seq, rec))
    chunks = []
    for keys, rows in groups.items():
        have = {k.strip().lower() for k in keys}
        names = sorted({*keys, *(c for c in wanted if c.strip().lower() not in have)})
        table = pa.table({name: pa.array([rec.get(name) for _, rec in rows], type=pa.string()) for name in names})
        chunks.append(RawChunk(table, pd.Series([seq for seq, _ in rows], dtype="int64")))
    return chunks


def rejected_table(rejections: Sequence[Rejection], *, source: str, file: str, batch_id: str) -> pa.Table:
    """Quarantine rows (``QUARANTINE_SCHEMA``) for messages refused before cleaning."""
    n = len(rejections)
    return pa.table(
        {
            "source": [source] * n,
            "file": [file] * n,
            "line": pa.array([r.seq for r in rejections], type=pa.int64()),
            "reason": [r.reason for r in rejections],
            "message": [REASONS[r.reason] for r in rejections],
            "raw": [r.raw for r in rejections],
            "batch_id": [batch_id] * n,
        },
        schema=QUARANTINE_SCHEMA,
    )


def batch_sha256(messages: Iterable[Message]) -> str:
    """SHA-256 over the sequences and bodies of a batch (recorded in the store's load log)."""
    h = hashlib.sha256()
    for msg in messages:
        h.update(msg.seq.to_bytes(8, "big", signed=False))
        h.update(len(msg.data).to_bytes(8, "big", signed=False))
        h.update(msg.data)
    return h.hexdigest()
