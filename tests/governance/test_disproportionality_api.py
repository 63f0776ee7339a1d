"""``POST /api/v1/fairness/stops``: the dashboard's disproportionality table from the service."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from crimelens.ingest import ingest_file
from crimelens.store import connect
from tests.conftest import TEST_KEY, chicago_row, write_csv
from tests.service.conftest import PASSWORDS, service_settings
from tests.sources.kinds_files import STOPS_HEADER, stop_row, write

POPULATION = [{"group": "White", "population": 50_000}, {"group": "Black", "population": 10_000}]


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    from crimelens.service.app import create_app
    from crimelens.service.auth import Accounts, Role
    from crimelens.service.runtime import Runtime

    db = tmp_path / "s.duckdb"
    rows = [stop_row(i, ethnicity="Black" if i % 3 == 0 else "White", linked="True" if i % 4 == 0 else "False")
            for i in range(90)]
    with connect(str(db)) as store:
        ingest_file(store, write(tmp_path / "stops.csv", STOPS_HEADER, rows), key=TEST_KEY)
        ingest_file(store, write_csv(tmp_path / "crimes.csv", [chicago_row(i) for i in range(10)]), key=TEST_KEY)
    settings = service_settings(db)
    rt = Runtime(settings)
    acc = Accounts(rt)
    acc.create("analyst", Role.analyst, PASSWORDS["analyst"])
    acc.create("viewer", Role.viewer, PASSWORDS["viewer"])
    rt.close()
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        yield c


def _auth(client: TestClient, name: str) -> dict[str, str]:
    r = client.post("/api/v1/auth/login", json={"username": name, "password": PASSWORDS[name]})
    assert r.status_code == 200, r.text
    return {"Authorization": f"Bearer {r.json()['access_token']}"}


def test_stops_table_for_analysts(client: TestClient) -> None:
    r = client.post("/api/v1/fairness/stops", json={"population": POPULATION}, headers=_auth(client, "analyst"))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["kinds"] == ["stop"] and doc["records"] == 90 and doc["reference"] == "White"
    black = next(g for g in doc["groups"] if g["group"] == "Black")
    assert black["records"] == 30 and black["rate_per_1000"] == pytest.approx(3.0)
    assert black["rate_ratio"] == pytest.approx(3.0 / (60 / 50))  # 30/10k against 60/50k
    assert black["rate_ratio_ci"][0] < black["rate_ratio"] < black["rate_ratio_ci"][1]
    assert client.post("/api/v1/fairness/stops", json={"population": POPULATION},
                       headers=_auth(client, "viewer")).status_code == 403
    assert client.post("/api/v1/fairness/stops", json={"population": POPULATION}).status_code == 401


def test_bad_requests_are_422(client: TestClient) -> None:
    h = _auth(client, "analyst")
    assert client.post("/api/v1/fairness/stops", json={"population": POPULATION, "extra": 1}, headers=h
                       ).status_code == 422
    assert client.post("/api/v1/fairness/stops", json={"population": [{"group": "x", "population": -1}]},
                       headers=h).status_code == 422
    r = client.post("/api/v1/fairness/stops", json={"population": POPULATION, "reference": "Nobody"}, headers=h)
    assert r.status_code == 422 and "reference group" in r.text
    # no arrests at all: zero counts and unbounded intervals come back as JSON nulls, not a 500
    r = client.post("/api/v1/fairness/stops", json={"population": POPULATION, "kinds": ["arrest"]}, headers=h)
    assert r.status_code == 200 and r.json()["groups"][1]["rate_ratio_ci"] == [0.0, None]
