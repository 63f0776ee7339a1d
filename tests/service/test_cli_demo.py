"""``crimelens users ...``, ``crimelens serve --help`` and the demo admin."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from tests.service.conftest import service_settings

runner = CliRunner()


@pytest.fixture
def db(template_store: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    path = tmp_path / "cli.duckdb"
    shutil.copy(template_store, path)
    monkeypatch.setenv("CRIMELENS_ARGON2_TIME_COST", "1")
    monkeypatch.setenv("CRIMELENS_ARGON2_MEMORY_KIB", "1024")
    return str(path)


def test_users_add_list_disable_reset(db: str) -> None:
    r = runner.invoke(app, ["users", "add", "casey", "--role", "analyst", "--password-stdin", "--db", db],
                      input="river stone lantern 8\n")
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["users", "list", "--db", db, "--json"])
    users = {u["username"]: u for u in json.loads(r.stdout)}
    assert users["casey"]["role"] == "analyst" and "password_hash" not in users["casey"]
    assert runner.invoke(app, ["users", "disable", "casey", "--db", db]).exit_code == 0
    r = runner.invoke(app, ["users", "list", "--db", db, "--json"])
    assert {u["username"]: u for u in json.loads(r.stdout)}["casey"]["disabled"] is True
    r = runner.invoke(app, ["users", "reset", "casey", "--password-stdin", "--db", db], input="a fresh passphrase 2\n")
    assert r.exit_code == 0
    assert runner.invoke(app, ["users", "enable", "casey", "--db", db]).exit_code == 0


def test_users_add_refuses_bad_input(db: str) -> None:
    weak = runner.invoke(app, ["users", "add", "kim", "--role", "viewer", "--password-stdin", "--db", db],
                         input="password1234\n")
    assert weak.exit_code == 2 and "common" in weak.output
    role = runner.invoke(app, ["users", "add", "kim", "--role", "boss", "--password-stdin", "--db", db], input="x\n")
    assert role.exit_code == 2
    no_stdin = runner.invoke(app, ["users", "add", "kim", "--role", "viewer", "--db", db])
    assert no_stdin.exit_code == 2 and "--password-stdin" in no_stdin.output


def test_serve_has_help() -> None:
    r = runner.invoke(app, ["serve", "--help"])
    assert r.exit_code == 0 and "--port" in r.output and "--host" in r.output


def test_demo_admin_gets_a_random_password_that_works(db: str) -> None:
    from fastapi.testclient import TestClient

    from crimelens.service.app import create_app
    from crimelens.service.demo import DEMO_USER, create_demo_admin

    s = service_settings(Path(db))
    pw1 = create_demo_admin(s)
    pw2 = create_demo_admin(s)
    assert pw1 != pw2 and len(pw2) >= 12
    with TestClient(create_app(s)) as c:
        r = c.post("/api/v1/auth/login", json={"username": DEMO_USER, "password": pw2})
        assert r.status_code == 200 and r.json()["role"] == "admin"
        assert c.post("/api/v1/auth/login", json={"username": DEMO_USER, "password": pw1}).status_code == 401
