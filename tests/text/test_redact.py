"""Personal-data redaction: offline, pattern types, and recall on the hand-labelled sample."""

from __future__ import annotations

import hashlib
import json
import socket
from collections.abc import Iterator

import pandas as pd
import pytest

from crimelens.text.redact import Redactor, Span, clean_with_offsets, merge_spans, score_redaction
from tests.text.conftest import GOLD, MADISON, needs_madison, needs_nlp


@pytest.fixture(scope="module")
def redactor() -> Iterator[Redactor]:
    yield Redactor()


@pytest.fixture()
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("redaction tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_merge_and_score_spans() -> None:
    merged = merge_spans([Span(0, 5, "PERSON", 0.9), Span(3, 9, "ADDRESS", 0.6), Span(20, 25, "PERSON")])
    assert [(s.start, s.end, s.entity) for s in merged] == [(0, 9, "ADDRESS"), (20, 25, "PERSON")]
    gold = [[Span(0, 10, "PERSON"), Span(20, 30, "ADDRESS")]]
    pred = [[Span(0, 8, "PERSON"), Span(40, 45, "PERSON")]]
    s = score_redaction(gold, pred)
    assert s.recall == 0.5 and s.precision == 0.5 and s.recall_by_type == {"ADDRESS": 0.0, "PERSON": 1.0}
    assert s.char_recall == pytest.approx(8 / 20)


def test_clean_with_offsets_maps_back() -> None:
    raw = "Call<br />\n&nbsp; Jane   Doe at 555-123-4567."
    clean, off = clean_with_offsets(raw)
    assert "<br" not in clean and "&nbsp;" not in clean
    i = clean.index("Jane Doe")
    assert raw[off[i]: off[i + len("Jane Doe") - 1] + 1] == "Jane   Doe"


@needs_nlp
def test_finds_each_type_offline(redactor: Redactor, no_network: None) -> None:
    text = ("Officer Maria Lopez arrested John Q. Smith at 1400 block of W. Main St. on Tuesday. "
            "Smith, DOB 04/12/1990, drove a car with Wisconsin plate ABC-1234. Tips: (608) 555-0142 "
            "or tips@example.org.")
    r = redactor.redact(text)
    kinds = {s.entity for s in r.spans}
    assert {"PERSON", "ADDRESS", "DATE_OF_BIRTH", "LICENSE_PLATE", "PHONE_NUMBER", "EMAIL_ADDRESS"} <= kinds
    for secret in ("Lopez", "Smith", "Main St", "04/12/1990", "ABC-1234", "555-0142", "tips@example.org"):
        assert secret not in r.text
    assert "<PERSON>" in r.text and "Tuesday" in r.text  # a weekday is not personal
    assert redactor.redact("").text == "" and redactor.analyze(None) == []


@needs_nlp
@needs_madison
@pytest.mark.real_data
def test_recall_on_labelled_madison_sample(redactor: Redactor) -> None:
    gold = json.loads(GOLD.read_text())
    raw = pd.read_csv(MADISON, encoding="utf-8-sig").set_index("IncidentID")["Details"]
    texts = []
    for g in gold["narratives"]:
        text = raw[g["incident_id"]]
        assert hashlib.sha256(text.encode()).hexdigest() == g["sha256"], "dataset changed under the labels"
        texts.append(text)
    spans = [[Span(s, e, lab) for s, e, lab in g["spans"]] for g in gold["narratives"]]
    scores = score_redaction(spans, [redactor.analyze(t) for t in texts])
    assert scores.gold >= 100
    assert scores.recall >= 0.9, scores
    assert scores.precision >= 0.7, scores
    assert scores.recall_by_type["PERSON"] >= 0.9 and scores.recall_by_type["PHONE_NUMBER"] >= 0.9
