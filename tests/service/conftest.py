"""Fixtures for the service tests: a small store built once per session by ingesting generated
Chicago-format and Madison-format files (the latter with personal fields), four accounts, and
a controllable clock. Each test gets its own copy of the store file.

``env`` (and the fixtures built on ``store_template``) run every test twice: on a DuckDB file
and on PostgreSQL (the server at $CRIMELENS_TEST_PG, default 127.0.0.1:5432), where the
template is a database built the same way and each test gets a copy of it
(``CREATE DATABASE ... TEMPLATE``, dropped afterwards). PostgreSQL runs skip with a reason when
no server answers."""

from __future__ import annotations

import csv
import os
import random
import shutil
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

pytest.importorskip("fastapi")

from fastapi import FastAPI
from fastapi.testclient import TestClient

from tests.conftest import CHICAGO_HEADER, TEST_KEY

PASSWORDS = {"admin": "tangerine kettle drum 41", "analyst": "violet harbour lamp 17",
             "viewer": "copper meadow fox 29", "scoped": "silent orchard bell 53"}
MADISON_HEADER = ["IncidentID", "IncidentDate", "IncidentType", "Address", "Suspect", "Victim", "Details"]
SECRET_NAME = "Zebulon Quartermaine"
SECRET_NARRATIVE = "Witness Zebulon Quartermaine saw the bicycle taken"
OFFENCES = [("THEFT", "OVER $500", "0810", "06"), ("BATTERY", "SIMPLE", "0460", "08B"),
            ("BURGLARY", "FORCIBLE ENTRY", "0610", "05"), ("ROBBERY", "ARMED: HANDGUN", "031A", "03"),
            ("CRIMINAL DAMAGE", "TO VEHICLE", "1320", "14"), ("MOTOR VEHICLE THEFT", "AUTOMOBILE", "0910", "07"),
            ("NARCOTICS", "POSS: CANNABIS", "1811", "18"), ("ASSAULT", "SIMPLE", "0560", "08A")]
END = datetime(2024, 6, 30, tzinfo=UTC)


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, now: datetime | None = None) -> None:
        self.now = now or datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def chicago_rows(n: int, *, seed: int, start_id: int = 20_000_000, days: int = 540,
                 end: datetime = END) -> list[dict[str, str]]:
    """Plausible Chicago portal rows clustered around a few hot spots."""
    rng = random.Random(seed)
    centres = [(41.88, -87.63), (41.79, -87.60), (41.95, -87.70), (41.75, -87.66)]
    rows = []
    for i in range(n):
        spread = (rng.uniform(41.70, 41.98), rng.uniform(-87.78, -87.56))
        lat0, lon0 = rng.choice(centres) if rng.random() < 0.7 else spread
        lat, lon = lat0 + rng.gauss(0, 0.01), lon0 + rng.gauss(0, 0.012)
        t = end - timedelta(days=rng.uniform(0, days), hours=0)
        pt, desc, iucr, fbi = rng.choice(OFFENCES)
        district = f"{int((lat - 41.6) * 40) % 25 + 1:03d}"
        rows.append({
            "ID": str(start_id + i), "Case Number": f"JB{start_id + i}", "Date": t.strftime("%m/%d/%Y %I:%M:%S %p"),
            "Block": f"0{rng.randint(10, 99)}XX W MADISON ST", "IUCR": iucr, "Primary Type": pt, "Description": desc,
            "Location Description": rng.choice(["STREET", "APARTMENT", "SIDEWALK"]), "Arrest": "false",
            "Domestic": "false", "Beat": district[1:] + "1", "District": district, "Ward": "42", "Community Area": "32",
            "FBI Code": fbi, "X Coordinate": "", "Y Coordinate": "", "Year": str(t.year),
            "Updated On": end.strftime("%m/%d/%Y %I:%M:%S %p"), "Latitude": f"{lat:.6f}", "Longitude": f"{lon:.6f}",
            "Location": f"({lat:.6f}, {lon:.6f})",
        })
    return rows


def write_rows(path: Path, rows: list[dict[str, str]], header: list[str]) -> Path:
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=header)
        w.writeheader()
        w.writerows(rows)
    return path


def madison_rows(n: int) -> list[dict[str, str]]:
    return [{"IncidentID": f"M{i}", "IncidentDate": f"2024/05/{1 + i % 28:02d} 10:00:00+00",
             "IncidentType": "Theft", "Address": f"{100 + i} Main St", "Suspect": f"Suspect Person {i}",
             "Victim": SECRET_NAME if i == 0 else f"Victim Person {i}",
             "Details": SECRET_NARRATIVE if i == 0 else f"Narrative {i}"} for i in range(n)]


def service_settings(db: Path | str, **over: object):  # type: ignore[no-untyped-def]
    from crimelens.settings import Settings

    base: dict[str, object] = dict(db=str(db), pseudonym_key=TEST_KEY.decode(), argon2_time_cost=1,
                                   argon2_memory_kib=1024, rate_login_per_minute=1000,
                                   rate_search_per_minute=10_000, rate_export_per_minute=100)
    if isinstance(db, Path):
        base["upload_dir"] = db.parent / "uploads"
    base.update(over)
    return Settings(**base)  # type: ignore[arg-type]


PG_SERVER = os.environ.get("CRIMELENS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def pg_url(database: str) -> str:
    """The test server's URL for ``database``."""
    return PG_SERVER.rsplit("/", 1)[0] + "/" + database


def pg_admin(sql: str) -> None:
    """Run one statement on the test server's maintenance database (CREATE/DROP DATABASE)."""
    import psycopg

    with psycopg.connect(PG_SERVER, autocommit=True, connect_timeout=3) as con:
        con.execute(sql)


def pg_or_skip() -> None:
    """Skip the test with a reason when no PostgreSQL server answers."""
    psycopg = pytest.importorskip("psycopg", reason="the [postgres] extra is not installed")
    try:
        psycopg.connect(PG_SERVER, connect_timeout=3).close()
    except psycopg.Error as exc:
        pytest.skip(f"no PostgreSQL at {PG_SERVER}: {str(exc).splitlines()[0]}")


@dataclass(frozen=True)
class PgTemplate:
    """A template database on the test server."""

    database: str


def build_template(url: str, d: Path) -> None:
    """Fill the store at ``url``: ~2,400 Chicago incidents, 30 Madison incidents with personal
    fields, 4 accounts."""
    from crimelens.ingest import ingest_file
    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime
    from crimelens.sources.mapping import load_preset
    from crimelens.store import connect

    store = connect(url)
    rows = chicago_rows(2400, seed=7)
    rows[5]["Primary Type"] = "=HYPERLINK(\"http://x\")"  # formula-injection probe (SEC-16)
    ingest_file(store, write_rows(d / "chicago.csv", rows, CHICAGO_HEADER), key=TEST_KEY,
                mapping=load_preset("chicago"))
    ingest_file(store, write_rows(d / "madison.csv", madison_rows(30), MADISON_HEADER), key=TEST_KEY,
                mapping=load_preset("madison"))
    store.close()
    rt = Runtime(service_settings(url, upload_dir=d / "uploads"))
    acc = Accounts(rt)
    acc.create("admin", Role.admin, PASSWORDS["admin"])
    acc.create("analyst", Role.analyst, PASSWORDS["analyst"], can_export=True)
    acc.create("viewer", Role.viewer, PASSWORDS["viewer"])
    acc.create("scoped", Role.analyst, PASSWORDS["scoped"], sources=("madison",))
    rt.close()


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The DuckDB template store (see :func:`build_template`)."""
    d = tmp_path_factory.mktemp("svc")
    db = d / "template.duckdb"
    build_template(str(db), d)
    return db


@pytest.fixture(scope="session")
def pg_template(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PgTemplate]:
    """The PostgreSQL template database (see :func:`build_template`), dropped after the session."""
    pg_or_skip()
    name = f"svc_tpl_{uuid.uuid4().hex[:10]}"
    pg_admin(f"CREATE DATABASE {name}")
    try:
        build_template(pg_url(name), tmp_path_factory.mktemp("svcpg"))
        yield PgTemplate(name)
    finally:
        pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(params=["duckdb", "postgres"])
def store_template(request: pytest.FixtureRequest) -> Path | PgTemplate:
    """The template of each backend in turn."""
    if request.param == "postgres":
        pg: PgTemplate = request.getfixturevalue("pg_template")
        return pg
    path: Path = request.getfixturevalue("template_store")
    return path


@dataclass
class Env:
    """One app on a private copy of the template store."""

    app: FastAPI
    client: TestClient
    clock: FakeClock
    db: Path
    url: str = ""

    def login(self, name: str, **extra: str) -> str:
        r = self.client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORDS[name], **extra})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(name)}"}


def make_env(template: Path | PgTemplate, tmp: Path, **over: object) -> Iterator[Env]:
    """An app on a private copy of ``template`` (a DuckDB file or a PostgreSQL template database)."""
    from crimelens.service.app import create_app

    db = tmp / "store.duckdb"
    clock = FakeClock()
    if isinstance(template, PgTemplate):
        name = f"svc_t_{uuid.uuid4().hex[:12]}"
        pg_admin(f"CREATE DATABASE {name} TEMPLATE {template.database}")
        url = pg_url(name)
        try:
            app = create_app(service_settings(url, upload_dir=tmp / "uploads", **over), clock=clock)
            with TestClient(app, raise_server_exceptions=False) as client:
                yield Env(app, client, clock, db, url)
        finally:
            pg_admin(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        return
    shutil.copy(template, db)
    app = create_app(service_settings(db, **over), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(app, client, clock, db, str(db))


@pytest.fixture
def env(store_template: Path | PgTemplate, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(store_template, tmp_path)
