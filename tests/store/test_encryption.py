"""Encryption at rest of the DuckDB store (issue 17 part 4): DuckDB's database encryption with the
key from ``CRIMELENS_DB_KEY`` or ``CRIMELENS_DB_KEY_FILE``.

The same Madison file (personal fields: suspect, victim, narrative) is ingested by the CLI into a
plain and an encrypted store; the plain file holds the names in clear (so the byte grep can fail)
and the encrypted one does not. A wrong, missing or needless key is one line, exit 2, and the file
is byte-for-byte unchanged. Where DuckDB's ``httpfs`` extension (OpenSSL) is not installed, as on
an offline machine, writing uses ``CRIMELENS_DB_CRYPTO=mbedtls-unsafe`` and the test says so.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from tests.conftest import TEST_KEY
from tests.service.conftest import MADISON_HEADER, SECRET_NAME, madison_rows, write_rows

KEY = "correct horse battery staple 2026"
NAMES = (SECRET_NAME.encode(), b"Suspect Person 3", b"Victim Person 7", b"bicycle taken")


def _httpfs() -> bool:
    try:
        duckdb.connect().execute("LOAD httpfs")
    except duckdb.Error:
        return False
    return True


HTTPFS = _httpfs()
CRYPTO = "openssl" if HTTPFS else "mbedtls-unsafe"


def cli(*args: str, **env: str | None) -> subprocess.CompletedProcess[str]:
    """Run ``crimelens ARGS`` with the test key and the given variables (None: unset)."""
    base = {**os.environ, "CRIMELENS_PSEUDONYM_KEY": TEST_KEY.decode(), "CRIMELENS_DB_CRYPTO": CRYPTO}
    for name in ("CRIMELENS_DB_KEY", "CRIMELENS_DB_KEY_FILE"):
        base.pop(name, None)
    for name, value in env.items():
        if value is None:
            base.pop(name, None)
        else:
            base[name] = value
    return subprocess.run([sys.executable, "-m", "crimelens.cli.app", *args], env=base, capture_output=True,
                          text=True, timeout=120)


def digest(path: Path) -> tuple[str, list[str]]:
    """The file's SHA-256 and the names beside it (a WAL would show up here)."""
    return hashlib.sha256(path.read_bytes()).hexdigest(), sorted(p.name for p in path.parent.iterdir())


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("enc")
    src = write_rows(d / "madison.csv", madison_rows(30), MADISON_HEADER)
    plain, enc = d / "plain" / "store.duckdb", d / "enc" / "store.duckdb"
    for db, key in ((plain, None), (enc, KEY)):
        db.parent.mkdir()
        r = cli("ingest", str(src), "--preset", "madison", "--db", str(db), CRIMELENS_DB_KEY=key)
        assert r.returncode == 0, r.stderr
    return plain, enc


def test_encrypted_file_holds_no_plaintext_names(stores: tuple[Path, Path]) -> None:
    plain, enc = stores
    clear = plain.read_bytes()
    assert all(name in clear for name in NAMES)  # the grep finds them when they are there
    cipher = b"".join(p.read_bytes() for p in enc.parent.iterdir())  # the file and anything beside it
    assert not [name for name in NAMES if name in cipher]
    assert b"Main St" not in cipher and b"madison" not in cipher
    con = duckdb.connect()
    con.execute(f"ATTACH '{enc}' AS s (READ_ONLY, ENCRYPTION_KEY '{KEY}')")
    assert con.execute("SELECT encrypted FROM duckdb_databases() WHERE database_name = 's'").fetchone() == (True,)


def test_the_key_reads_the_personal_table_back(stores: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from crimelens.store.duckdb import DuckDBStore

    monkeypatch.setenv("CRIMELENS_DB_KEY", KEY)
    store = DuckDBStore(stores[1], read_only=True)
    try:
        frame = store.incidents(include_personal=True)
        assert len(frame) == 30 and SECRET_NAME in set(frame["victim"])
        cur = store.cursor()  # a cursor (the service's read views) sees the same catalog
        assert cur.execute("SELECT count(*) FROM incident_personal").fetchone() == (30,)
    finally:
        store.close()
    r = cli("info", "--db", str(stores[1]), "--json", CRIMELENS_DB_KEY=KEY)
    assert r.returncode == 0, r.stderr
    assert "30" in r.stdout


@pytest.mark.parametrize(("env", "message"), [
    ({"CRIMELENS_DB_KEY": "a wrong key of some length"}, "wrong encryption key (from CRIMELENS_DB_KEY)"),
    ({}, "is encrypted: set CRIMELENS_DB_KEY or CRIMELENS_DB_KEY_FILE to its key"),
    ({"CRIMELENS_DB_KEY": "short"}, "CRIMELENS_DB_KEY: the store key must be at least 16 characters"),
], ids=["wrong", "missing", "short"])
def test_bad_key_is_one_line_and_leaves_the_store_as_it_was(stores: tuple[Path, Path], env: dict[str, str],
                                                           message: str, tmp_path: Path) -> None:
    enc = stores[1]
    before = digest(enc)
    src = write_rows(tmp_path / "more.csv", madison_rows(3), MADISON_HEADER)
    runs = [("info", "--db", str(enc))]
    if "wrong" in message:  # a write attempt too
        runs.append(("ingest", str(src), "--preset", "madison", "--db", str(enc)))
    for args in runs:
        r = cli(*args, **env)
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0], lines
        assert "Traceback" not in r.stderr and KEY not in r.stderr
    assert digest(enc) == before


def test_a_key_for_a_plain_store_is_refused(stores: tuple[Path, Path]) -> None:
    plain = stores[0]
    before = digest(plain)
    r = cli("info", "--db", str(plain), CRIMELENS_DB_KEY=KEY)
    assert r.returncode == 2 and "is not encrypted but CRIMELENS_DB_KEY is set" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert digest(plain) == before


def test_key_file(stores: tuple[Path, Path], tmp_path: Path) -> None:
    key_file = tmp_path / "db.key"
    key_file.write_text(KEY + "\n", encoding="utf-8")
    key_file.chmod(0o644)
    r = cli("info", "--db", str(stores[1]), CRIMELENS_DB_KEY_FILE=str(key_file))
    assert r.returncode == 2 and "readable by group or others; chmod 600 it" in r.stderr
    key_file.chmod(0o600)
    assert cli("info", "--db", str(stores[1]), CRIMELENS_DB_KEY_FILE=str(key_file)).returncode == 0
    both = cli("info", "--db", str(stores[1]), CRIMELENS_DB_KEY_FILE=str(key_file), CRIMELENS_DB_KEY=KEY)
    assert both.returncode == 2 and "not both" in both.stderr


@pytest.mark.skipif(HTTPFS, reason="DuckDB's httpfs extension is installed here, so OpenSSL writes work")
def test_writing_without_openssl_needs_an_explicit_choice(tmp_path: Path) -> None:
    src = write_rows(tmp_path / "m.csv", madison_rows(3), MADISON_HEADER)
    db = tmp_path / "new.duckdb"
    r = cli("ingest", str(src), "--preset", "madison", "--db", str(db), CRIMELENS_DB_KEY=KEY,
            CRIMELENS_DB_CRYPTO=None)
    assert r.returncode == 2 and "needs DuckDB's httpfs extension (OpenSSL)" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    assert not db.exists()  # nothing was written


def test_service_runs_on_an_encrypted_store(stores: tuple[Path, Path], tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("fastapi")
    from crimelens.service.runtime import Runtime
    from tests.service.conftest import service_settings

    db = tmp_path / "svc.duckdb"
    db.write_bytes(stores[1].read_bytes())
    monkeypatch.setenv("CRIMELENS_DB_KEY", KEY)
    monkeypatch.setenv("CRIMELENS_DB_CRYPTO", CRYPTO)
    rt = Runtime(service_settings(db))
    try:
        assert rt.query("SELECT count(*) FROM incidents") == [(30,)]  # on a read view's cursor
    finally:
        rt.close()
    assert SECRET_NAME.encode() not in db.read_bytes()  # the service's own tables went in encrypted too


@pytest.mark.parametrize("key", [None, KEY], ids=["plain", "encrypted"])
def test_a_second_load_of_the_same_source(key: str | None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The second load of a source asks a second cursor for the committed ids (on the store's catalog)."""
    from crimelens.ingest import ingest_file
    from crimelens.sources.mapping import load_preset
    from crimelens.store.duckdb import DuckDBStore

    if key is not None:
        monkeypatch.setenv("CRIMELENS_DB_KEY", key)
    monkeypatch.setenv("CRIMELENS_DB_CRYPTO", CRYPTO)
    rows = madison_rows(30)
    first = write_rows(tmp_path / "a.csv", rows[:20], MADISON_HEADER)
    second = write_rows(tmp_path / "b.csv", rows[10:], MADISON_HEADER)  # 10 seen before, 10 new
    store = DuckDBStore(tmp_path / "two.duckdb")
    try:
        ingest_file(store, first, key=TEST_KEY, mapping=load_preset("madison"))
        report = ingest_file(store, second, key=TEST_KEY, mapping=load_preset("madison"))
        assert (report.stored, report.duplicates) == (10, 10)
        assert store.con.execute("SELECT count(*) FROM incidents").fetchall() == [(30,)]
    finally:
        store.close()
