"""``crimelens text classify|topics|redact`` on a small ingested store of Madison-style reports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from crimelens.cli.classify_cmds import register
from tests.conftest import TEST_KEY
from tests.text.conftest import needs_nlp

TYPES = {
    "Residential Burglary": "burglary house window door garage forced entry stolen laptop jewelry",
    "Robbery": "robbery handgun clerk register cash gunpoint wallet demanded masked pistol",
    "Traffic Incident": "crash driver vehicle intersection collision motorist rollover speed lane",
}


@pytest.fixture(scope="module")
def madison_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from crimelens.ingest import ingest_file
    from crimelens.sources.mapping import load_preset
    from crimelens.store import connect

    tmp = tmp_path_factory.mktemp("madison")
    rng = np.random.default_rng(4)
    rows = []
    for i in range(120):
        kind = list(TYPES)[i % 3]
        words = " ".join(rng.choice(TYPES[kind].split(), 8))
        rows.append({
            "IncidentID": 1000 + i, "IncidentType": kind, "CaseNumber": f"2023-{i}",
            "IncidentDate": f"2023/03/{1 + i % 28:02d} 10:00:00+00", "Suspect": "", "Arrested": "",
            "Address": "100 block of Main St", "Victim": "",
            "Details": f"Officers responded to a report. {words}. Jane Doe can be reached at 608-555-0100.",
            "ReleasedBy": "PIO", "DateModified": "2023/03/30 10:00:00+00",
        })
    path = tmp / "reports.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    db = tmp / "m.duckdb"
    store = connect(str(db))
    try:
        ingest_file(store, path, key=TEST_KEY, mapping=load_preset("madison"))
    finally:
        store.close()
    return db


def run(*args: str) -> tuple[int, str]:
    app = typer.Typer()
    register(app)
    res = CliRunner().invoke(app, list(args))
    return res.exit_code, res.output


def last_json(out: str) -> dict:  # type: ignore[type-arg]
    return json.loads(out.strip().splitlines()[-1])


def test_text_classify_and_topics(madison_db: Path) -> None:
    code, out = run("text", "classify", "--db", str(madison_db), "--min-count", "10", "--json")
    assert code == 0, out
    res = last_json(out)
    assert res["types"] == 3 and res["macro_f1"] > 0.8
    code, out = run("text", "topics", "--db", str(madison_db), "--topics", "3", "--terms", "5", "--json")
    assert code == 0, out
    topics = json.loads(out.strip().splitlines()[-1])
    assert len(topics) == 3 and all(len(t["terms"]) == 5 for t in topics)


@needs_nlp
def test_text_redact(madison_db: Path) -> None:
    code, out = run("text", "redact", "--db", str(madison_db), "--limit", "2", "--json")
    assert code == 0, out
    res = last_json(out)
    assert res["n"] == 2 and res["spans"] >= 2
    assert all("555-0100" not in r["redacted"] for r in res["rows"])
    code, out = run("text", "redact", "--text", "Call Jane Doe at 608-555-0100.", "--json")
    assert code == 0, out
    assert "<PHONE_NUMBER>" in last_json(out)["text"]
