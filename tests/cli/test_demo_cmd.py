"""`crimelens demo --no-serve` runs the whole chain on a small synthetic city."""

import json
from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from crimelens.cli.app import app


def test_demo_generates_ingests_and_publishes_a_leaderboard(tmp_path: Path) -> None:
    pytest.importorskip("fastapi", reason="the [server] extra is not installed")
    res = CliRunner().invoke(app, ["demo", "--dir", str(tmp_path), "--incidents", "4000", "--days", "200",
                                   "--no-serve"])
    assert res.exit_code == 0, res.output
    assert "quarantined" in res.output and "best PAI" in res.output
    con = duckdb.connect(str(tmp_path / "crimelens.duckdb"), read_only=True)
    try:
        n = con.execute("SELECT count(*) FROM incidents").fetchone()[0]  # type: ignore[index]
        rows = con.execute("SELECT kind, name, payload FROM svc_products").fetchall()
    finally:
        con.close()
    assert 3800 < n <= 4000  # the demo file carries some dirt: duplicates and bad dates are not stored
    kinds = {(k, name) for k, name, _ in rows}
    assert ("leaderboard", "latest") in kinds and ("forecast", "retro_count") in kinds
    board = next(json.loads(p) for k, _, p in rows if k == "leaderboard")
    assert {r["model"] for r in board["rows"]} >= {"retro_count", "prospective", "oracle"}
    assert all(r["pai"] >= 0 for r in board["rows"])
