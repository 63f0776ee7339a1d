"""On PostgreSQL the personal table's values are encrypted by the application (AES-256-GCM, key
from ``CRIMELENS_DB_KEY``, never in the database): the server's own view of ``incident_personal``
holds no name, the store reads them back with the key, refuses without it or with a wrong one, and
a ciphertext moved to another row fails authentication. Skips without a PostgreSQL server."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import TEST_KEY
from tests.service.conftest import MADISON_HEADER, PG_SERVER, SECRET_NAME, madison_rows, pg_or_skip, write_rows

psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")

KEY = "postgres personal field key 2026"


@pytest.fixture
def loaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, str]]:
    pg_or_skip()
    from crimelens.ingest import ingest_file
    from crimelens.sources.mapping import load_preset
    from crimelens.store import connect

    schema = f"t_enc_{uuid.uuid4().hex[:10]}"
    url = f"{PG_SERVER}?schema={schema}"
    monkeypatch.setenv("CRIMELENS_DB_KEY", KEY)
    store = connect(url)
    try:
        src = write_rows(tmp_path / "madison.csv", madison_rows(30), MADISON_HEADER)
        ingest_file(store, src, key=TEST_KEY, mapping=load_preset("madison"))
        again = write_rows(tmp_path / "changed.csv", [{**r, "Details": r["Details"] + " (amended)"}
                                                      for r in madison_rows(5)], MADISON_HEADER)
        ingest_file(store, again, key=TEST_KEY, mapping=load_preset("madison"))  # the staged (update) path
    finally:
        store.close()
    yield url, schema
    with psycopg.connect(PG_SERVER, autocommit=True) as con:
        con.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def _server_rows(schema: str) -> list[tuple[str, str, str | None, str | None, str | None]]:
    with psycopg.connect(PG_SERVER) as con:
        return con.execute(f"SELECT source, incident_id, suspect, victim, narrative FROM {schema}.incident_personal "
                           "ORDER BY incident_id").fetchall()


def test_the_server_holds_ciphertext_only(loaded: tuple[str, str]) -> None:
    rows = _server_rows(loaded[1])
    assert len(rows) == 30
    text = repr(rows)
    assert SECRET_NAME not in text and "Victim Person" not in text and "Suspect Person" not in text
    assert "amended" not in text and "bicycle" not in text
    values = [v for r in rows for v in r[2:] if v is not None]
    assert values and all(v.startswith("enc:v1:") for v in values)
    assert len(set(values)) == len(values)  # a fresh nonce per value: equal names do not show


def test_the_key_reads_them_back(loaded: tuple[str, str]) -> None:
    from crimelens.store import connect

    store = connect(loaded[0], read_only=True)
    try:
        frame = store.incidents(include_personal=True)
    finally:
        store.close()
    assert len(frame) == 30 and "_row_source" not in frame.columns
    assert SECRET_NAME in set(frame["victim"])
    amended = frame[frame["narrative"].fillna("").str.endswith("(amended)")]
    assert len(amended) == 5


def test_no_key_or_a_wrong_key_is_refused(loaded: tuple[str, str], monkeypatch: pytest.MonkeyPatch) -> None:
    from crimelens.exceptions import StoreError
    from crimelens.store import connect

    before = _server_rows(loaded[1])
    for key, message in ((None, "incident_personal holds encrypted values: set CRIMELENS_DB_KEY"),
                         ("another key entirely 0123", "wrong key (from CRIMELENS_DB_KEY)")):
        if key is None:
            monkeypatch.delenv("CRIMELENS_DB_KEY")
        else:
            monkeypatch.setenv("CRIMELENS_DB_KEY", key)
        store = connect(loaded[0], read_only=True)
        try:
            with pytest.raises(StoreError, match=message.replace("(", r"\(").replace(")", r"\)")):
                store.incidents(include_personal=True)
            assert len(store.incidents()) == 30  # the non-personal columns need no key
        finally:
            store.close()
    assert _server_rows(loaded[1]) == before


def test_a_ciphertext_moved_to_another_row_fails(loaded: tuple[str, str]) -> None:
    from crimelens.exceptions import StoreError
    from crimelens.store.fieldcrypt import FieldCipher
    from crimelens.store.keys import StoreKey

    rows = _server_rows(loaded[1])
    cipher = FieldCipher(StoreKey(KEY, "test"))
    src, iid, _, victim, _ = rows[0]
    assert victim is not None
    assert cipher.decrypt(victim, src, iid, "victim").startswith(("Victim Person", SECRET_NAME))
    with pytest.raises(StoreError):
        cipher.decrypt(victim, src, rows[1][1], "victim")  # another incident
    with pytest.raises(StoreError):
        cipher.decrypt(victim, src, iid, "suspect")  # another column
