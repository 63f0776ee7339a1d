"""Fixtures for the service tests: a small store built once per session by ingesting generated
Chicago-format and Madison-format files (the latter with personal fields), four accounts, and
a controllable clock. Each test gets its own copy of the store file."""

from __future__ import annotations

import csv
import random
import shutil
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


def service_settings(db: Path, **over: object):  # type: ignore[no-untyped-def]
    from crimelens.settings import Settings

    base: dict[str, object] = dict(db=str(db), pseudonym_key=TEST_KEY.decode(), argon2_time_cost=1,
                                   argon2_memory_kib=1024, rate_login_per_minute=1000,
                                   rate_search_per_minute=10_000, rate_export_per_minute=100,
                                   upload_dir=db.parent / "uploads")
    base.update(over)
    return Settings(**base)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def template_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with ~2,400 Chicago incidents, 30 Madison incidents with personal fields, 4 accounts."""
    from crimelens.ingest import ingest_file
    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime
    from crimelens.sources.mapping import load_preset
    from crimelens.store import connect

    d = tmp_path_factory.mktemp("svc")
    db = d / "template.duckdb"
    store = connect(str(db))
    rows = chicago_rows(2400, seed=7)
    rows[5]["Primary Type"] = "=HYPERLINK(\"http://x\")"  # formula-injection probe (SEC-16)
    ingest_file(store, write_rows(d / "chicago.csv", rows, CHICAGO_HEADER), key=TEST_KEY,
                mapping=load_preset("chicago"))
    ingest_file(store, write_rows(d / "madison.csv", madison_rows(30), MADISON_HEADER), key=TEST_KEY,
                mapping=load_preset("madison"))
    store.close()
    rt = Runtime(service_settings(db))
    acc = Accounts(rt)
    acc.create("admin", Role.admin, PASSWORDS["admin"])
    acc.create("analyst", Role.analyst, PASSWORDS["analyst"], can_export=True)
    acc.create("viewer", Role.viewer, PASSWORDS["viewer"])
    acc.create("scoped", Role.analyst, PASSWORDS["scoped"], sources=("madison",))
    rt.close()
    return db


@dataclass
class Env:
    """One app on a private copy of the template store."""

    app: FastAPI
    client: TestClient
    clock: FakeClock
    db: Path

    def login(self, name: str, **extra: str) -> str:
        r = self.client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORDS[name], **extra})
        assert r.status_code == 200, r.text
        token: str = r.json()["access_token"]
        return token

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.login(name)}"}


def make_env(template: Path, tmp: Path, **over: object) -> Iterator[Env]:
    from crimelens.service.app import create_app

    db = tmp / "store.duckdb"
    shutil.copy(template, db)
    clock = FakeClock()
    app = create_app(service_settings(db, **over), clock=clock)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(app, client, clock, db)


@pytest.fixture
def env(template_store: Path, tmp_path: Path) -> Iterator[Env]:
    yield from make_env(template_store, tmp_path)
