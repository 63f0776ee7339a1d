"""Every store backend passes the same checks: accounting, idempotence, updates, counts, isolation of
personal data. PostgreSQL runs against the server at $CRIMELENS_TEST_PG (default 127.0.0.1:5432) and
skips with a reason when none is reachable."""

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from crimelens.filters import IncidentFilter
from crimelens.ingest import ingest_file
from crimelens.store.duckdb import DuckDBStore
from tests.conftest import TEST_KEY, chicago_row, write_csv

PG_URL = os.environ.get("CRIMELENS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _pg_or_skip(schema: str):  # type: ignore[no-untyped-def]
    psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    try:
        psycopg.connect(PG_URL, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at {PG_URL}: {str(exc).splitlines()[0]}")
    from crimelens.store.postgres import PostgresStore

    return PostgresStore(PG_URL, schema=schema)


@pytest.fixture(params=["duckdb", "postgres"])
def any_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[object]:
    if request.param == "duckdb":
        s = DuckDBStore(tmp_path / "c.duckdb")
        yield s
        s.close()
        return
    schema = f"t_{uuid.uuid4().hex[:12]}"
    s = _pg_or_skip(schema)
    yield s
    s.conn.execute(f"DROP SCHEMA {schema} CASCADE")
    s.close()


def load(store, path):  # type: ignore[no-untyped-def]
    r = ingest_file(store, path, key=TEST_KEY, now=pd.Timestamp("2024-06-01", tz="UTC"))
    assert r.balanced()
    return r


def test_accounting_updates_duplicates_and_noop(any_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a = load(any_store, write_csv(tmp_path / "a.csv", [chicago_row(i) for i in range(5)] + [chicago_row(99, Date="x")]))
    assert (a.stored, a.quarantined) == (5, 1)
    rows = [chicago_row(i) for i in range(3, 8)] + [chicago_row(7, Arrest="true"), chicago_row(7, Arrest="true")]
    rows[0]["Arrest"] = "true"
    b = load(any_store, write_csv(tmp_path / "b.csv", rows))
    assert (b.read, b.stored, b.updated, b.duplicates) == (7, 3, 2, 2)
    assert load(any_store, tmp_path / "b.csv").skipped
    inc = any_store.incidents().set_index("incident_id")
    assert len(inc) == 8 and bool(inc.loc["10000003", "arrest"]) and bool(inc.loc["10000007", "arrest"])
    assert len(any_store.quarantine()) == 1
    info = any_store.info()
    assert info["incidents"] == 8 and info["files"] == 2


def test_counts_filters_and_timestamps(any_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    rows = [chicago_row(i, Date=f"01/{10 + i % 3}/2024 10:00:00 AM") for i in range(9)]
    rows[0]["Primary Type"], rows[0]["Description"] = "THEFT", "OVER $500"
    load(any_store, write_csv(tmp_path / "a.csv", rows))
    assert any_store.counts(["day"])["count"].tolist() == [3, 3, 3]
    hours = any_store.counts(["hour", "weekday"])
    assert hours["hour"].tolist() == [10, 10, 10] and hours.attrs["timezone"] == "America/Chicago"
    assert any_store.counts(["hour"], tz="UTC")["hour"].tolist() == [16]
    prop = any_store.counts(["category"], IncidentFilter(categories=("property",)))
    assert prop.to_dict("records") == [{"category": "theft", "count": 1}]
    first = any_store.incidents(IncidentFilter(start=pd.Timestamp("2024-01-11", tz="UTC")), limit=1)
    assert first["occurred_at"].iloc[0] == pd.Timestamp("2024-01-11 16:00", tz="UTC")
    assert int(any_store.counts(["cell:250"])["count"].sum()) == 9


def test_personal_data_kept_apart(any_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    p = tmp_path / "m.csv"
    p.write_text('IncidentID,IncidentType,CaseNumber,IncidentDate,Suspect,Arrested,Address,Victim,Details,ReleasedBy,'
                 'DateModified\n1,Robbery,C1,2023/05/01 10:00:00+00,John Doe,,100 block Main St,,"said ""hi""\n'
                 'twice",Sgt,2023/05/02\n')
    load(any_store, p)
    plain = any_store.incidents()
    assert "narrative" not in plain.columns and plain["suspect_ref"].iloc[0].startswith("p")
    full = any_store.incidents(include_personal=True)
    assert full["narrative"].iloc[0] == 'said "hi"\ntwice' and full["suspect"].iloc[0] == "John Doe"


@pytest.mark.parametrize("prior", [False, True])
def test_repeats_across_chunks_keep_the_files_last_version(any_store, tmp_path: Path, prior: bool) -> None:  # type: ignore[no-untyped-def]
    """Chunks of 10 rows: id 3 twice in the first chunk, then changed in the third; id 12 in the
    second chunk and changed in the fourth. The file's last version of each must be stored,
    whether the source was empty before or not."""
    if prior:
        load(any_store, write_csv(tmp_path / "old.csv", [chicago_row(900), chicago_row(12)]))
    rows = [chicago_row(i) for i in range(40)]
    rows[5] = chicago_row(3)
    rows[25] = chicago_row(3, Arrest="true")
    rows[35] = chicago_row(12, Arrest="true")
    r = ingest_file(any_store, write_csv(tmp_path / "rep.csv", rows), key=TEST_KEY,
                    now=pd.Timestamp("2024-06-01", tz="UTC"), chunk_rows=10)
    assert r.balanced()
    # without a prior load: 37 distinct ids stored, id 3 and id 12 each updated once, one
    # duplicate of id 3; with one, id 12 was stored already, so it is one more update
    assert (r.read, r.stored, r.updated, r.duplicates) == ((40, 37, 2, 1) if not prior else (40, 36, 3, 1))
    inc = any_store.incidents().set_index("incident_id")
    assert inc.index.is_unique and len(inc) == 37 + (1 if prior else 0)
    assert bool(inc.loc["10000003", "arrest"]) and bool(inc.loc["10000012", "arrest"])
