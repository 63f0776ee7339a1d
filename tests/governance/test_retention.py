"""Retention and erasure on a real store (DuckDB, and PostgreSQL with the personal fields
encrypted), under a frozen clock: what is past its period
goes, from every table; nothing younger does; erasures are logged as ids and audited."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.governance.retention import RetentionPolicy, due_fields
from crimelens.ingest import ingest_file
from crimelens.registry import ModelRegistry
from crimelens.service.erasure import Eraser, training_exclusions
from crimelens.service.ops_jobs import OpsJobs
from crimelens.service.runtime import Runtime
from crimelens.settings import Settings
from crimelens.sources.mapping import load_preset
from crimelens.store import connect
from tests.conftest import TEST_KEY, write_csv

HEADER = ["IncidentID", "IncidentDate", "IncidentType", "Address", "Suspect", "Victim", "Details", "Latitude",
          "Longitude"]
NOW = datetime(2026, 1, 15, 12, 0, tzinfo=UTC)
SECRET = "Ottoline Vandersloot"
POLICY = RetentionPolicy(default_days=365, categories={"homicide": 3650}, roles={"narrative": 180})


def _rows() -> list[dict[str, str]]:
    rows = []
    for i in range(40):  # one incident every 20 days back from NOW, alternating theft / homicide
        when = NOW - timedelta(days=20 * i + 3)
        kind = "Murder" if i % 4 == 0 else "Theft"
        rows.append({"IncidentID": f"R{i}", "IncidentDate": when.strftime("%Y/%m/%d %H:%M:%S") + "+00",
                     "IncidentType": kind, "Address": f"{i} Elm St", "Suspect": f"Suspect {i}",
                     "Victim": SECRET if i in (2, 30) else f"Victim {i}", "Details": f"Narrative {i}",
                     "Latitude": f"{43.07 + i * 1e-3:.4f}", "Longitude": "-89.40"})
    return rows


_MADISON = load_preset("madison")
MAPPING = dataclasses.replace(_MADISON, fields={**_MADISON.fields, "lat": ("Latitude",), "lon": ("Longitude",)})
PG_KEY = "postgres personal field key 2026"


@pytest.fixture(params=["duckdb", "postgres"])
def db(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The same file ingested into a DuckDB store, or into a PostgreSQL schema with the personal
    fields encrypted (AES-GCM, ``CRIMELENS_DB_KEY``): erasure must find the names through the cipher."""
    schema = ""
    if request.param == "postgres":
        from tests.service.conftest import PG_SERVER, pg_or_skip

        pg_or_skip()
        schema = f"t_ret_{uuid.uuid4().hex[:10]}"
        url = f"{PG_SERVER}?schema={schema}"
        monkeypatch.setenv("CRIMELENS_DB_KEY", PG_KEY)
    else:
        url = str(tmp_path / "ret.duckdb")
    store = connect(url)
    bad = {**_rows()[0], "IncidentID": "Q1", "IncidentDate": "not a date", "Victim": SECRET}  # quarantined
    try:
        ingest_file(store, write_csv(tmp_path / "m.csv", [*_rows(), bad], HEADER), key=TEST_KEY,
                    mapping=MAPPING)
    finally:
        store.close()
    yield url
    if schema:
        import psycopg

        from tests.service.conftest import PG_SERVER

        with psycopg.connect(PG_SERVER, autocommit=True) as con:
            server = repr(con.execute(f"SELECT * FROM {schema}.incident_personal").fetchall())
            con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        assert SECRET not in server and "Suspect 1" not in server  # the server held ciphertext only


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def _personal(rt: Runtime) -> dict[str, dict[str, object]]:
    rows = rt.query("SELECT i.incident_id, i.category, i.occurred_at, i.suspect_ref, i.victim_ref, p.suspect, "
                    "p.victim, p.narrative FROM incidents i LEFT JOIN incident_personal p USING (source, incident_id)")
    cols = ["category", "occurred_at", "suspect_ref", "victim_ref", "suspect", "victim", "narrative"]
    return {r[0]: dict(zip(cols, r[1:], strict=True)) for r in rows}


def test_schedule_parses_and_picks_the_shorter_period() -> None:
    p = RetentionPolicy.from_toml('default_days = 100\n[categories]\nhomicide = 1000\n[roles]\nvictim = 50\n'
                                  '[overrides.homicide]\nvictim = 900\n')
    assert p.days("theft", "suspect") == 100 and p.days("theft", "victim") == 50
    assert p.days("homicide", "suspect") == 1000 and p.days("homicide", "victim") == 900
    with pytest.raises(ValueError, match="unknown role"):
        RetentionPolicy.from_toml("[roles]\nwitness = 3\n")
    with pytest.raises(ValueError, match="days >= 0"):
        RetentionPolicy.from_toml("default_days = -1\n")


def test_time_travel_nothing_younger_is_removed(db: str) -> None:
    clock = Clock(NOW)
    rt = Runtime(Settings(db=str(db)), clock=clock)
    try:
        before = _personal(rt)
        eraser = Eraser(rt)
        dry = eraser.enforce(POLICY, apply=False)
        assert _personal(rt) == before  # a report changes nothing
        out = eraser.enforce(POLICY)
        assert out["fields"] == dry["fields"] > 0
        after = _personal(rt)
        for iid, row in before.items():
            age = NOW - row["occurred_at"]  # type: ignore[operator]
            limit = 3650 if row["category"] == "homicide" else 365
            for role, cols in (("suspect", ("suspect", "suspect_ref")), ("victim", ("victim", "victim_ref")),
                               ("narrative", ("narrative",))):
                days = min(limit, 180) if role == "narrative" else limit
                for c in cols:
                    if age > timedelta(days=days):
                        assert after[iid][c] is None, (iid, c)
                    else:
                        assert after[iid][c] == row[c], (iid, c)  # younger: untouched
        # a month later, exactly the fields that crossed their cut-off in that month go
        clock.now = NOW + timedelta(days=30)
        expected = len(due_fields(eraser.personal_records(), POLICY, clock.now))
        assert eraser.enforce(POLICY)["fields"] == expected
        events = [r["event"] for r in eraser.audit.rows()]
        assert events.count("retention.enforce") == 2
    finally:
        rt.close()


def _attempts(rt: Runtime) -> dict[tuple[str, ...], float]:
    """The ``crimelens_erasure_attempts`` series /metrics reads from this store."""
    from crimelens.service.metrics import StoreCollector

    return {tuple(s.labels.values()): s.value for fam in StoreCollector(rt.query, clock=rt.clock).collect()
            if fam.name == "crimelens_erasure_attempts" for s in fam.samples}


def test_erase_person_everywhere_and_logged_as_ids(db: str, tmp_path: Path) -> None:
    rt = Runtime(Settings(db=str(db)), clock=Clock(NOW))
    try:
        before = _personal(rt)
        pseudonym = str(before["R2"]["victim_ref"])
        assert before["R30"]["victim_ref"] == pseudonym
        assert rt.query("SELECT count(*) FROM quarantine WHERE strpos(raw, ?) > 0", [SECRET])[0][0] == 1
        out = Eraser(rt).erase(persons=[pseudonym], reason="request 42", actor="dpo")
        assert out["incidents"] == 2 and out["quarantine_rows"] == 1
        after = _personal(rt)
        for iid in ("R2", "R30"):
            assert after[iid]["victim"] is None and after[iid]["victim_ref"] is None
            assert after[iid]["narrative"] is None
            assert after[iid]["suspect"] == before[iid]["suspect"]  # another person's data stays
        assert {k: v for k, v in after.items() if k not in ("R2", "R30")} == \
            {k: v for k, v in before.items() if k not in ("R2", "R30")}
        assert rt.query("SELECT count(*) FROM quarantine WHERE strpos(raw, ?) > 0", [SECRET])[0][0] == 0
        for table in ("svc_erasures", "svc_audit"):
            dump = json.dumps([list(map(str, r)) for r in rt.query(f"SELECT * FROM {table}")])
            assert SECRET not in dump and "Victim 2" not in dump
        logged = json.loads(rt.query("SELECT ids FROM svc_erasures")[0][0])
        assert logged["pseudonyms"] == [pseudonym] and len(logged["incidents"]) == 2
        assert any(r["event"] == "erasure.person" for r in Eraser(rt).audit.rows())
        assert _attempts(rt) == {("erasure.person", "ok"): 1.0}  # what /metrics reports, read from the log
        assert {i for _, i in training_exclusions(rt)} == {"R2", "R30"}
        training = set(OpsJobs(rt, ModelRegistry(tmp_path / "models")).frame(None, NOW)["incident_id"])
        assert training == set(before) - {"R2", "R30"}  # the next retraining leaves them out
    finally:
        rt.close()


def test_erase_cli(db: str) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["erase", "--incident", "R5", "--db", str(db), "--json"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["incidents"] == 1 and out["personal_rows"] == 3
    rt = Runtime(Settings(db=db))
    try:
        assert rt.query("SELECT count(*) FROM incident_personal WHERE incident_id = 'R5'")[0][0] == 0
        assert rt.query("SELECT suspect_ref, victim_ref FROM incidents WHERE incident_id = 'R5'") == [(None, None)]
    finally:
        rt.close()
    bad = runner.invoke(app, ["erase", "--incident", "NOPE", "--db", str(db)])
    assert bad.exit_code == 2 and "no incident 'NOPE'" in bad.output and "Traceback" not in bad.output
    none = runner.invoke(app, ["erase", "--db", str(db)])
    assert none.exit_code == 2
    report = runner.invoke(app, ["retention", "--db", str(db), "--json"])
    assert report.exit_code == 0 and json.loads(report.stdout)["applied"] is False


@pytest.mark.parametrize("key", [None, "another key entirely 0123"])
def test_erase_without_the_right_key_changes_nothing(db: str, key: str | None,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    if "postgresql" not in db:
        pytest.skip("application-side field encryption is PostgreSQL's (DuckDB encrypts the whole file)")
    rt = Runtime(Settings(db=db), clock=Clock(NOW))
    try:
        before = _personal(rt)
        quarantined = rt.query("SELECT count(*) FROM quarantine")[0][0]
    finally:
        rt.close()
    if key is None:
        monkeypatch.delenv("CRIMELENS_DB_KEY")
    else:
        monkeypatch.setenv("CRIMELENS_DB_KEY", key)
    res = CliRunner().invoke(app, ["erase", "--person", str(before["R2"]["victim_ref"]), "--db", db])
    assert res.exit_code == 2 and "Traceback" not in res.output
    assert ("set CRIMELENS_DB_KEY" if key is None else "wrong key") in res.output
    monkeypatch.setenv("CRIMELENS_DB_KEY", PG_KEY)
    rt = Runtime(Settings(db=db), clock=Clock(NOW))
    try:
        assert _personal(rt) == before  # rolled back: every field still there
        assert rt.query("SELECT count(*) FROM quarantine")[0][0] == quarantined
        assert rt.query("SELECT count(*) FROM svc_erasures")[0][0] == 0
        # the failed attempt is in the audit log (its error class only, no values), and /metrics counts it
        tried = [r for r in Eraser(rt).audit.rows() if r["event"].startswith("erasure.")]
        assert [(r["event"], r["outcome"]) for r in tried] == [("erasure.person", "failed")]
        assert json.loads(tried[0]["detail"]) == {"error": "StoreError"}
        assert _attempts(rt) == {("erasure.person", "failed"): 1.0}
    finally:
        rt.close()
