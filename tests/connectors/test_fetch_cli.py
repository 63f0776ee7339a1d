"""``crimelens fetch`` end to end against the local HTTPS server."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest
from typer.testing import CliRunner

from crimelens.cli import fetch_cmds
from crimelens.cli.app import app
from crimelens.connectors.fetch import Fetcher
from crimelens.settings import Settings
from tests.connectors.conftest import Server
from tests.connectors.test_portals import ROWS, socrata_route

runner = CliRunner()


@pytest.fixture
def test_factory(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    """The test hook: trust the test CA and reach 127.0.0.1, with the hosts the CLI resolved."""
    def factory(hosts: Sequence[str], settings: Settings) -> Fetcher:
        built = fetch_cmds.default_fetcher(hosts, settings)
        return server.fetcher(hosts=tuple(built.allow_hosts), max_bytes=built.max_bytes, timeout_s=built.timeout_s)

    monkeypatch.setattr(fetch_cmds, "fetcher_factory", factory)


@pytest.mark.usefixtures("test_factory")
def test_fetch_socrata_cli_json_and_noop(server: Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    server.routes["/resource/ijzp-q8t2.json"] = socrata_route(ROWS)
    monkeypatch.setenv("CRIMELENS_SOCRATA_APP_TOKEN", "TOKEN-123")
    db = str(tmp_path / "f.duckdb")
    args = ["fetch", "socrata", server.url("/resource/ijzp-q8t2.json"), "--preset", "chicago_socrata",
            "--page-size", "10", "--allow-host", "localhost", "--db", db, "--json"]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout)
    assert out["pages"] == 3 and out["records_fetched"] == 25 and out["read"] == 25 and out["stored"] == 25
    assert out["read"] == out["stored"] + out["updated"] + out["duplicates"] + out["quarantined"]
    assert "TOKEN-123" not in res.output and server.seen[0].headers["x-app-token"] == "TOKEN-123"
    again = json.loads(runner.invoke(app, args).stdout)
    assert again["skipped"] is True and again["stored"] == 0
    keep = tmp_path / "kept.csv"
    human = runner.invoke(app, [*args[:-1], "--keep", str(keep), "--limit", "5"])
    assert human.exit_code == 0 and "5 records in 1 pages" in human.stdout and keep.exists()
    # the allow-list can come from the environment instead of --allow-host
    monkeypatch.setenv("CRIMELENS_FETCH_ALLOW_HOSTS", "example.org, localhost")
    env = runner.invoke(app, [a for a in args if a not in ("--allow-host", "localhost")])
    assert env.exit_code == 0 and json.loads(env.stdout)["skipped"] is True


@pytest.mark.usefixtures("test_factory")
def test_fetch_refused_host_exits_2(server: Server, tmp_path: Path) -> None:
    server.routes["/resource/ijzp-q8t2.json"] = socrata_route(ROWS)
    res = runner.invoke(app, ["fetch", "socrata", server.url("/resource/ijzp-q8t2.json"), "--preset",
                              "chicago_socrata", "--db", str(tmp_path / "r.duckdb")])
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "localhost is not on the fetch allow-list" in res.stderr and not server.seen
    assert not (tmp_path / "r.duckdb").exists()  # refused before the store is opened


def test_production_fetcher_refuses_loopback_and_http(server: Server, tmp_path: Path) -> None:
    db = str(tmp_path / "p.duckdb")
    res = runner.invoke(app, ["fetch", "socrata", server.url("/resource/ijzp-q8t2.json"), "--allow-host",
                              "localhost", "--db", db])
    assert res.exit_code == 2 and "not a public address" in res.stderr and not server.seen
    res = runner.invoke(app, ["fetch", "arcgis", "http://example.org/arcgis/rest/services/X/FeatureServer/0",
                              "--allow-host", "example.org", "--db", db])
    assert res.exit_code == 2 and "only https://" in res.stderr
    res = runner.invoke(app, ["fetch", "police-uk", "--force", "west-yorkshire", "--month", "2024-1", "--db", db])
    assert res.exit_code == 2 and "YYYY-MM" in res.stderr
    res = runner.invoke(app, ["fetch", "police-uk", "--force", "west-yorkshire", "--month", "2024-01",
                              "--base-url", "https://169.254.169.254/api", "--allow-host", "169.254.169.254",
                              "--db", db])
    assert res.exit_code == 2 and "169.254.169.254, which is not a public address" in res.stderr
