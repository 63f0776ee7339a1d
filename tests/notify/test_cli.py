"""``crimelens alerts scan | rules | list | ack`` against a store file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app
from crimelens.store.duckdb import DuckDBStore

from .conftest import canonical_city, load

runner = CliRunner()
KEYS = {"area", "category", "window_start", "window_end", "observed", "expected", "p_value", "severity"}


@pytest.fixture
def db(tmp_path: Path) -> tuple[str, object]:
    frame, spike = canonical_city(seed=9)
    path = tmp_path / "c.duckdb"
    store = DuckDBStore(path)
    load(store, frame, "b1")
    store.close()
    return str(path), spike


def run(*args: str) -> object:
    return runner.invoke(app, list(args))


def test_scan_prints_alerts_with_the_required_fields(db: tuple[str, object]) -> None:
    path, spike = db
    res = run("alerts", "scan", "--db", path, "--json")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    alerts = json.loads(res.stdout)  # type: ignore[attr-defined]
    assert isinstance(alerts, list) and alerts
    assert all(set(a) >= KEYS for a in alerts)
    assert any(a["area"] == spike.area and a["category"] == spike.category for a in alerts)  # type: ignore[attr-defined]
    again = json.loads(run("alerts", "scan", "--db", path, "--json").stdout)  # type: ignore[attr-defined]
    assert again == []  # stored and de-duplicated
    listed = json.loads(run("alerts", "list", "--db", path, "--json").stdout)  # type: ignore[attr-defined]
    assert {a["alert_id"] for a in listed} == {a["alert_id"] for a in alerts}


def test_scan_filters_and_retrospective_scans(db: tuple[str, object]) -> None:
    path, spike = db
    one = run("alerts", "scan", "--db", path, "--category", spike.category, "--area", spike.area,  # type: ignore[attr-defined]
              "--no-save", "--json")
    got = json.loads(one.stdout)  # type: ignore[attr-defined]
    assert got and {(a["area"], a["category"]) for a in got} == {(spike.area, spike.category)}  # type: ignore[attr-defined]
    retro = run("alerts", "scan", "--db", path, "--from", "2023-01-02", "--to", "2023-03-01", "--json")
    assert retro.exit_code == 0, retro.output  # type: ignore[attr-defined]
    for a in json.loads(retro.stdout):  # type: ignore[attr-defined]
        assert "2023-01-09" <= a["window_end"][:10] <= "2023-03-01"
    assert json.loads(run("alerts", "list", "--db", path, "--json").stdout) == []  # type: ignore[attr-defined]
    bad = run("alerts", "scan", "--db", path, "--method", "magic")
    assert bad.exit_code != 0 and "method" in bad.output  # type: ignore[attr-defined]


def test_ack_resolve_and_precision(db: tuple[str, object]) -> None:
    path, _ = db
    alerts = json.loads(run("alerts", "scan", "--db", path, "--json").stdout)  # type: ignore[attr-defined]
    first = alerts[0]["alert_id"]
    res = run("alerts", "ack", first[:8], "--db", path, "--json")
    assert json.loads(res.stdout)["status"] == "acknowledged"  # type: ignore[attr-defined]
    res = run("alerts", "ack", first, "--label", "true", "--db", path, "--json")
    assert json.loads(res.stdout)["status"] == "resolved"  # type: ignore[attr-defined]
    assert json.loads(run("alerts", "list", "--db", path, "--status", "resolved", "--json").stdout)[0][  # type: ignore[attr-defined]
        "alert_id"] == first
    prec = json.loads(run("alerts", "list", "--db", path, "--precision", "--json").stdout)  # type: ignore[attr-defined]
    assert prec[0]["precision"] == "1.0"
    assert run("alerts", "ack", "nope", "--db", path).exit_code != 0  # type: ignore[attr-defined]


def test_rules_command_checks_and_runs_a_rule_book(db: tuple[str, object], tmp_path: Path) -> None:
    path, _ = db
    book = tmp_path / "rules.toml"
    book.write_text('[[rule]]\nname = "homicides"\ntype = "watch"\ncategories = ["homicide"]\n'
                    '[[subscription]]\nname = "desk"\nemail = ["desk@example.org"]\n')
    res = run("alerts", "rules", "--rules", str(book), "--run", "--db", path, "--json")
    assert res.exit_code == 0, res.output  # type: ignore[attr-defined]
    out = json.loads(res.stdout)  # type: ignore[attr-defined]
    assert out["rules"][0]["name"] == "homicides" and all(a["kind"] == "watch" for a in out["alerts"])
    book.write_text('[[rule]]\nname = "x"\ntype = "watch"\ncategories = ["homicde"]\n')
    bad = run("alerts", "rules", "--rules", str(book))
    assert bad.exit_code == 2 and "homicde" in bad.output  # type: ignore[attr-defined]
